"""The monitor: one per container, forked by the launcher, the parent and subreaper of PID 1.

    monitor --fork--> C1: unshare(mnt uts ipc net pid) --fork--> PID 1 (child.main)
                      C1 reports PID 1's pid and exits; PID 1 is reparented to us (subreaper)

Talks to the starter (the CLI's Runtime.start) over a SOCK_SEQPACKET socket (a plain fd: one
os.write is one message), one JSON object per message: -> {"pid", "pid_start", "monitor_pid",
"monitor_start"}; <- {"go": true} once cgroup and network are in place; -> {"started": true} |
{"error", "code"}; later -> {"exit", "oom", "error"}. Then it pumps stdout/stderr into the
json-lines log (and to the starter's fds when attached), records the exit in state.json and
leaves. It survives the starter: when the socket closes it just stops copying to the attached fds.

Lean on purpose (30 of these must fit in a few MB together with their launcher): imported by the
launcher before it forks, it uses only C modules (_json, not json, which imports re; no socket,
no state module, which imports typing), one read buffer, and does little between fork and idling,
because every page it touches after the fork becomes its own copy."""

from __future__ import annotations

import _json
import _signal
import fcntl
import gc
import os
import select
import time

from composer.runtime import child
from composer.runtime import syscalls as sc

PARTIAL_MAX = 16 * 1024  # docker's json-file splits lines longer than 16 KiB
READ_SIZE = 65536
STATE_FILE, LOCK_FILE = "state.json", "lock"  # as runtime.state (not imported: typing, json)


# ---------------------------------------------------------------- JSON through _json alone


class _Ctx:
    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int, parse_constant = float, int, float


def _no_default(o: object) -> object:
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


_scan = _json.make_scanner(_Ctx())
_encode = _json.make_encoder(None, _no_default, _json.encode_basestring_ascii, None, ": ", ", ", True, False, True)


def loads(text: str) -> object:
    try:
        return _scan(text, 0)[0]
    except StopIteration:
        raise ValueError("invalid JSON") from None


def dumps(obj: object) -> str:
    return "".join(_encode(obj, 0))


def _timestamp(t: float) -> str:
    ns = int((t % 1) * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ns:09d}Z"


class _Pump:
    """Copies one pipe to the log (json lines, as docker's json-file) and the attached fd."""

    buffer: bytearray | None = None  # one per monitor, shared by its pumps (one reads at a time)

    def __init__(self, fd: int, stream: str, log_fd: int | None, out_fd: int | None) -> None:
        self.fd, self.stream, self.log_fd, self.out_fd = fd, stream, log_fd, out_fd
        self.buf = b""

    def read(self) -> bool:
        if _Pump.buffer is None:
            _Pump.buffer = bytearray(READ_SIZE)
        try:
            n = os.readv(self.fd, [_Pump.buffer])
        except BlockingIOError:
            return True
        if not n:
            self.flush(final=True)
            return False
        data = bytes(memoryview(_Pump.buffer)[:n])
        if self.out_fd is not None:
            try:
                os.write(self.out_fd, data)
            except OSError:
                self.out_fd = None
        self.buf += data
        self.flush()
        return True

    def flush(self, final: bool = False) -> None:
        if self.log_fd is None:
            self.buf = b""
            return
        records = []
        t = _timestamp(time.time())
        while True:
            nl = self.buf.find(b"\n")
            if nl < 0 and len(self.buf) < PARTIAL_MAX and not (final and self.buf):
                break
            cut = nl + 1 if nl >= 0 else min(len(self.buf), PARTIAL_MAX)
            line, self.buf = self.buf[:cut], self.buf[cut:]
            text = _json.encode_basestring_ascii(line.decode("utf-8", "replace"))
            records.append(f'{{"log": {text}, "stream": "{self.stream}", "time": "{t}"}}')
            if not self.buf:
                break
        if records:
            os.write(self.log_fd, ("\n".join(records) + "\n").encode())


class Monitor:
    def __init__(self, req: dict, fds: list[int]) -> None:
        self.req = req
        self.cfg = req["cfg"]
        self.ctl: int | None = fds[0]  # SOCK_SEQPACKET to the starter
        self.attach = fds[1:3] if len(fds) >= 3 else []
        self.state_dir = req["state_dir"]
        self.pid1 = 0

    # ------------------------------------------------------------ messages to the starter

    def send(self, **msg) -> None:
        if self.ctl is None:
            return
        try:
            os.write(self.ctl, dumps(msg).encode())
        except OSError:
            self._lost_starter()

    def recv(self) -> dict | None:
        if self.ctl is None:
            return None
        try:
            data = os.read(self.ctl, 65536)
        except OSError:
            data = b""
        if not data:
            self._lost_starter()
            return None
        return loads(data.decode())

    def _lost_starter(self) -> None:
        if self.ctl is not None:
            os.close(self.ctl)
        self.ctl = None
        for fd in self.attach:
            try:
                os.close(fd)
            except OSError:
                pass
        self.attach = []

    # ------------------------------------------------------------ the life of a container

    def run(self) -> None:
        """The start handshake runs in C1, not here: C1 exits once the container runs, taking the
        pages that work touched with it (measured: ~120 kB less per idle monitor)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        rep_r, rep_w = os.pipe()
        c1 = os.fork()
        if c1 == 0:
            os.close(rep_r)
            self._c1(out_w, err_w, rep_w)  # never returns
        for fd in (out_w, err_w, rep_w):
            os.close(fd)
        report = b""
        while True:  # until C1 exits: "P<pid1>\n" then S (started) | F<code>\t<message> | N (gave up)
            chunk = os.read(rep_r, 4096)
            if not chunk:
                break
            report += chunk
        os.close(rep_r)
        os.waitpid(c1, 0)
        head, _, outcome = report.partition(b"\n")
        outcome = outcome.lstrip(b"\n")
        if not head.startswith(b"P") or outcome[:1] not in (b"S", b"F"):
            if outcome[:1] != b"N":  # C1 died without a word to the starter
                self.send(error="container setup failed: the start helper died", code=125)
            os.close(out_r)
            os.close(err_r)
            self._reap(0)
            return
        self.pid1 = pid1 = int(head[1:])
        try:
            pidfd = os.pidfd_open(pid1)
        except ProcessLookupError:  # reaped already? we are its only reaper: cannot happen
            pidfd = None
        status = self.pump(pid1, pidfd, out_r, err_r)
        self.finish(status, outcome[1:])

    def _c1(self, out_w: int, err_w: int, rep_w: int) -> None:
        """C1: unshare, fork PID 1, then the whole handshake with the starter. Never returns."""
        try:
            sc.unshare(self.req["ns_flags"])
            sync_r, sync_w = os.pipe()
            perr_r, perr_w = os.pipe2(os.O_CLOEXEC)
            pid1 = os.fork()
            if pid1 == 0:
                null = os.open("/dev/null", os.O_RDWR)
                os.dup2(null, 0)
                os.dup2(out_w, 1)
                os.dup2(err_w, 2)
                child.main(self.cfg, sync_r, perr_w)
            for fd in (out_w, err_w, sync_r, perr_w):
                os.close(fd)
            os.write(rep_w, b"P%d\n" % pid1)
            me = os.getppid()
            self.send(pid=pid1, pid_start=_start_time(pid1), monitor_pid=me, monitor_start=_start_time(me))
            go = self.recv()
            if not go or not go.get("go"):
                os.close(sync_w)  # PID 1 reads EOF and leaves
                os.write(rep_w, b"N")
                os._exit(0)
            os.write(sync_w, b"g")
            os.close(sync_w)
            failure = b""
            while True:
                chunk = os.read(perr_r, 4096)
                if not chunk:
                    break
                failure += chunk
            if failure:
                code, _, message = failure.decode("utf-8", "replace").partition("\t")
                self.send(error=message, code=int(code))
                os.write(rep_w, b"F" + failure)
            else:
                self.send(started=True)
                os.write(rep_w, b"S")
            os._exit(0)
        except BaseException as e:  # noqa: BLE001
            self.send(error=f"cannot create the container: {e}", code=125)
            try:
                os.write(rep_w, b"\nN")
            finally:
                os._exit(1)

    def pump(self, pid1: int, pidfd: int | None, out_r: int, err_r: int) -> int:
        log_fd = None
        if self.req.get("log"):
            log_fd = os.open(self.req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        pumps = {
            out_r: _Pump(out_r, "stdout", log_fd, self.attach[0] if self.attach else None),
            err_r: _Pump(err_r, "stderr", log_fd, self.attach[1] if self.attach else None),
        }
        poller = select.poll()
        for fd in pumps:
            poller.register(fd, select.POLLIN)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        if self.ctl is not None:
            poller.register(self.ctl, select.POLLIN)
        status = None
        deadline = None
        while pumps:
            timeout = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            events = poller.poll(timeout)
            if not events and deadline is not None:
                break  # pipes still held open by someone outside: stop waiting for them
            for fd, _ in events:
                if fd in pumps:
                    if not pumps[fd].read():
                        poller.unregister(fd)
                        os.close(fd)
                        del pumps[fd]
                elif fd == pidfd:
                    poller.unregister(pidfd)
                    status = self._reap(pid1)
                    deadline = time.monotonic() + 2.0
                elif self.ctl is not None and fd == self.ctl:
                    poller.unregister(fd)
                    self.recv()  # the starter only ever closes here (or asks nothing)
                    for p in pumps.values():
                        p.out_fd = None
        if log_fd is not None:
            os.close(log_fd)
        if status is None:
            status = self._reap(pid1)
        if pidfd is not None:
            os.close(pidfd)
        return status

    def _reap(self, pid1: int) -> int:
        """Wait for PID 1, then every orphan the subreaper inherited. Returns docker's exit code."""
        code, found = 255, False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG if found else 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid == 0:
                break
            if pid == pid1:
                found = True
                code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        return code

    def finish(self, code: int, failure: bytes) -> None:
        oom, message = False, None
        if failure:
            message = failure.decode("utf-8", "replace").partition("\t")[2]
        cgroup = self.req.get("cgroup")
        if cgroup and code == 137:
            oom, limit = _oom_check(cgroup)
            if oom:
                from composer.units import format_size

                what = f" (limit {format_size(limit)})" if limit else ""
                message = f"container {self.req['name']} was killed: out of memory{what}"
        if cgroup:  # before the record: a start that follows a stop re-creates this same cgroup
            _remove_cgroup(cgroup)
        _record(self.state_dir, self.pid1, finished_at=time.time(), exit_code=code, oom_killed=oom,
                error=message, paused=False, monitor_pid=None, monitor_start=None)
        self.send(exit=code, oom=oom, error=message)
        if self.req.get("auto_remove"):
            if self.ctl is not None:  # the starter removes it itself: it waits for this
                ack = self.recv()
                if ack and ack.get("removing"):
                    return
            self._auto_remove()

    def _auto_remove(self) -> None:
        """--rm with nobody attached: a fresh interpreter does the removal (it needs the cgroup
        and network code this lean process never imported)."""
        import sys

        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
                "from composer.runtime.containers import auto_remove_main as m; sys.exit(m(sys.argv[1:]))")
        args = [sys.executable, "-c", code, root, "--auto-remove", self.req["id"],
                "--state-dir", self.req["runtime_state_dir"], "--data-dir", self.req["runtime_data_dir"]]
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        sc.close_range(3)
        os.execv(sys.executable, args)


def _oom_check(cgroup: dict) -> tuple[bool, int | None]:
    try:
        from composer.runtime import cgroups

        paths = cgroups.CgroupPaths.from_dict(cgroup)
        driver = cgroups.driver_for(paths)
        return driver.oom_kill_count(paths) > 0, driver.memory_limit(paths)
    except Exception:  # noqa: BLE001 - a missing cgroup must not lose the exit code
        return False, None


def _start_time(pid: int) -> int | None:
    """syscalls.proc_start_time without open()'s io objects."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    return int(raw[raw.rfind(b")") + 2:].split()[19])


def _record(state_dir: str, pid1: int, **changes: object) -> None:
    """runtime.state's locked read-modify-write (same files), unless a newer start owns the state."""
    try:
        lock = os.open(os.path.join(state_dir, LOCK_FILE), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # removed meanwhile (rm -f): nothing to record
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = os.path.join(state_dir, STATE_FILE)
        try:
            with open(path) as f:
                state = loads(f.read())
        except (OSError, ValueError):
            return
        if state.get("pid") != pid1:  # not a newer start's state
            return
        state.update(changes)
        tmp = os.path.join(state_dir, f".{STATE_FILE}.{os.getpid()}")
        with open(tmp, "w") as f:
            f.write(dumps(state))
        os.rename(tmp, path)
    finally:
        os.close(lock)


def _remove_cgroup(cgroup: dict) -> None:
    """rmdir is enough once PID 1 and every orphan are reaped; the full driver (thaw, kill,
    retry) is imported only when it is not."""
    busy = False
    for _, d in cgroup.get("dirs", ()):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass
        except OSError:
            busy = True
    if not busy:
        return
    try:
        from composer.runtime import cgroups

        paths = cgroups.CgroupPaths.from_dict(cgroup)
        cgroups.driver_for(paths).remove(paths)
    except Exception:  # noqa: BLE001 - rm retries; the exit code matters more
        pass


def main(req: dict, fds: list[int]) -> None:
    """Entry from the launcher's fork. Never returns."""
    code = 0
    try:
        os.setsid()
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
        sc.set_name("cmp-mon-" + req["id"][:7])  # comm holds 15 bytes
        gc.freeze()
        Monitor(req, fds).run()
    except BaseException:  # noqa: BLE001
        code = 1
    os._exit(code)
