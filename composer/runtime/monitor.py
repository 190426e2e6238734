"""The monitor: one per container, forked by the launcher, the parent and subreaper of PID 1.

    monitor --fork--> C1: unshare(mnt uts ipc net pid) --fork--> PID 1 (child.main)
                      C1 reports PID 1's pid and exits; PID 1 is reparented to us (subreaper)

Talks to the starter (the CLI's Runtime.start) over a SOCK_SEQPACKET socket, one JSON object per
message: -> {"pid", "pid_start", "monitor_pid", "monitor_start"}; <- {"go": true} once cgroup and
network are in place; -> {"started": true} | {"error", "code"}; later -> {"exit", "oom", "error"}.
Then it pumps stdout/stderr into the json-lines log (and to the starter's fds when attached),
records the exit in state.json and leaves. It survives the starter: when the socket closes it just
stops copying to the attached fds.

Lean on purpose (30 of these must fit in a few MB): os, json, select, signal, gc + our syscalls."""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import socket
import time

from composer.runtime import child
from composer.runtime import state as st
from composer.runtime import syscalls as sc

PARTIAL_MAX = 16 * 1024  # docker's json-file splits lines longer than 16 KiB


def _timestamp(t: float) -> str:
    ns = int((t % 1) * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ns:09d}Z"


class _Pump:
    """Copies one pipe to the log (json lines, as docker's json-file) and the attached fd."""

    def __init__(self, fd: int, stream: str, log_fd: int | None, out_fd: int | None) -> None:
        self.fd, self.stream, self.log_fd, self.out_fd = fd, stream, log_fd, out_fd
        self.buf = b""

    def read(self) -> bool:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return True
        if not data:
            self.flush(final=True)
            return False
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
            records.append(json.dumps({"log": line.decode("utf-8", "replace"), "stream": self.stream, "time": t}))
            if not self.buf:
                break
        if records:
            os.write(self.log_fd, ("\n".join(records) + "\n").encode())


class Monitor:
    def __init__(self, req: dict, fds: list[int]) -> None:
        self.req = req
        self.cfg = req["cfg"]
        self.ctl: socket.socket | None = socket.socket(fileno=fds[0])
        self.attach = fds[1:3] if len(fds) >= 3 else []
        self.state_dir = req["state_dir"]
        self.pid1 = 0

    # ------------------------------------------------------------ messages to the starter

    def send(self, **msg) -> None:
        if self.ctl is None:
            return
        try:
            self.ctl.send(json.dumps(msg).encode())
        except OSError:
            self._lost_starter()

    def recv(self) -> dict | None:
        if self.ctl is None:
            return None
        try:
            data = self.ctl.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._lost_starter()
            return None
        return json.loads(data)

    def _lost_starter(self) -> None:
        if self.ctl is not None:
            self.ctl.close()
        self.ctl = None
        for fd in self.attach:
            try:
                os.close(fd)
            except OSError:
                pass
        self.attach = []

    # ------------------------------------------------------------ the life of a container

    def spawn(self) -> tuple[int, int, int, int, int]:
        """Fork C1 and PID 1; returns (pid1, stdout_r, stderr_r, sync_w, err_r)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        sync_r, sync_w = os.pipe()
        perr_r, perr_w = os.pipe2(os.O_CLOEXEC)
        rep_r, rep_w = os.pipe()
        c1 = os.fork()
        if c1 == 0:
            try:
                sc.unshare(self.req["ns_flags"])
                pid1 = os.fork()
                if pid1 == 0:
                    null = os.open("/dev/null", os.O_RDWR)
                    os.dup2(null, 0)
                    os.dup2(out_w, 1)
                    os.dup2(err_w, 2)
                    child.main(self.cfg, sync_r, perr_w)
                os.write(rep_w, str(pid1).encode())
                os._exit(0)
            except BaseException as e:  # noqa: BLE001
                os.write(rep_w, f"E{e}".encode())
                os._exit(1)
        for fd in (out_w, err_w, sync_r, perr_w, rep_w):
            os.close(fd)
        os.waitpid(c1, 0)
        reply = os.read(rep_r, 4096).decode()
        os.close(rep_r)
        if not reply or reply.startswith("E"):
            raise RuntimeError(f"cannot create namespaces: {reply[1:] or 'no reply'}")
        return int(reply), out_r, err_r, sync_w, perr_r

    def run(self) -> None:
        try:
            pid1, out_r, err_r, sync_w, perr_r = self.spawn()
        except Exception as e:  # noqa: BLE001
            self.send(error=str(e), code=125)
            return
        self.pid1 = pid1
        pidfd = os.pidfd_open(pid1)
        netns = os.open(f"/proc/{pid1}/ns/net", os.O_RDONLY | os.O_CLOEXEC)  # kept for restarts
        self.send(pid=pid1, pid_start=sc.proc_start_time(pid1), monitor_pid=os.getpid(),
                  monitor_start=sc.proc_start_time(os.getpid()))
        go = self.recv()
        if not go or not go.get("go"):
            os.close(sync_w)  # PID 1 reads EOF and leaves
            self._reap(pid1)
            return
        os.write(sync_w, b"g")
        os.close(sync_w)
        failure = b""
        while True:
            chunk = os.read(perr_r, 4096)
            if not chunk:
                break
            failure += chunk
        os.close(perr_r)
        if failure:
            code, _, message = failure.decode("utf-8", "replace").partition("\t")
            self.send(error=message, code=int(code))
        else:
            self.send(started=True)
        status = self.pump(pid1, pidfd, out_r, err_r)
        os.close(netns)
        self.finish(status, failure)

    def pump(self, pid1: int, pidfd: int, out_r: int, err_r: int) -> int:
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
        poller.register(pidfd, select.POLLIN)
        if self.ctl is not None:
            poller.register(self.ctl.fileno(), select.POLLIN)
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
                elif self.ctl is not None and fd == self.ctl.fileno():
                    poller.unregister(fd)
                    self.recv()  # the starter only ever closes here (or asks nothing)
                    for p in pumps.values():
                        p.out_fd = None
        if log_fd is not None:
            os.close(log_fd)
        if status is None:
            status = self._reap(pid1)
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
        try:
            with st.Lock(self.state_dir, create=False):
                current = st.read(self.state_dir)
                if current.get("pid") == self.pid1:  # not a newer start's state
                    st.update(self.state_dir, finished_at=st.now(), exit_code=code, oom_killed=oom,
                              error=message, paused=False, monitor_pid=None, monitor_start=None)
        except FileNotFoundError:
            pass  # removed meanwhile (rm -f): nothing to record
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

        code = "import sys; from composer.runtime.containers import auto_remove_main as m; sys.exit(m(sys.argv[1:]))"
        args = [sys.executable, "-c", code, "--auto-remove", self.req["id"],
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


def _remove_cgroup(cgroup: dict) -> None:
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
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
        sc.set_name("cmp-mon-" + req["id"][:7])  # comm holds 15 bytes
        gc.freeze()
        Monitor(req, fds).run()
    except BaseException:  # noqa: BLE001
        code = 1
    os._exit(code)
