"""The monitor: one per container, forked by the launcher, the parent and subreaper of PID 1.

    monitor --fork--> C1: unshare(mnt uts ipc net pid) --fork--> PID 1 (child.main)
                      C1 reports PID 1's pid and exits; PID 1 is reparented to us (subreaper)

Each run starts in runtime.monitor.launch (C1 and the start handshake with the starter, the CLI's
Runtime.start, over a SOCK_SEQPACKET socket: a plain fd, one os.write is one message, one JSON
object each). Here, the rest of a run and what follows it: -> {"exit", "oom", "error"} to the
starter; the stdout/stderr pump into the json-lines log (and to the starter's fds when attached),
healthchecks (runtime.monitor.health), the exit recorded in state.json and the restart policy (docker's
backoff; the network namespace and the cgroup are kept across runs). It survives the starter: when
the socket closes it just stops copying to the attached fds, and once nobody is attached it execs
cmp-pump, its compiled idle half, which execs it back for every decision (runtime.monitor.handoff).

Lean on purpose: imported by the launcher before it forks, it uses only C modules (_json, not json,
which imports re; no socket, no state module, which imports typing), one read buffer, and does
little between fork and idling, because every page it touches after the fork becomes its own copy."""

from __future__ import annotations

import _signal
import fcntl
import gc
import os
import select
import time

from composer.errors import DamagedRecordError
from composer.runtime import records
from composer.runtime import syscalls as sc
from composer.runtime.monitor import handoff, health
from composer.runtime.monitor import launch as monitor_launch
from composer.runtime.monitor import tty
from composer.runtime.monitor.failure import inject as inject_failure, report as report_failure
from composer.runtime.monitor.handoff import _close
from composer.runtime.monitor.logpump import _LogFile, _Pump, dumps, loads  # noqa: F401 - dumps/loads: the launcher's
from composer.runtime.monitor.facts import (LOCK_FILE, STATE_FILE, _oom_check, _read_state, _record, _remove_cgroup,
                                            _restart_wanted, _start_time, _write_state)

class Monitor:
    def __init__(self, req: dict, fds: list[int]) -> None:
        self.req = req
        self.cfg = req["cfg"]
        self.ctl: int | None = fds[0]  # SOCK_SEQPACKET to the starter
        self.attach = fds[1:4] if len(fds) >= 3 else []  # the client's stdout, stderr[, stdin]
        self.stdio: tty.PidOneStdio | None = None  # PID 1's fds 0/1/2 of the current launch
        self.state_dir = req["state_dir"]
        self.pid1 = 0
        self.netns_fd: int | None = None  # held across restarts: veths, addresses and DNAT stay valid
        self.reaped: dict[int, int] = {}  # wait statuses of other children collected by reap
        self.delay = 0.0  # restart backoff, docker's: 100 ms doubling to 1 min, reset after 10 s up
        self.oom_seen = 0  # the cgroup's oom_kill count at the last exit (it survives restarts)
        self.prober = None
        self.log: _LogFile | None = None
        self.lock_fd: int | None = None
        self.held: list[int] = []  # fds kept open for PID 1 across a cmp-pump hand-off (idle stdin)
        self.no_pump = False
        self.started_wall = 0.0
        if req.get("healthcheck"):
            self.prober = health.Prober(req["healthcheck"], req)

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

    def record_health(self, health_state: dict) -> None:
        _record(self.state_dir, self.pid1, {"health": health_state})

    # ------------------------------------------------------------ the life of a container

    def run(self, resumed: tuple | None = None) -> None:
        """Launch, pump, record; again while the restart policy says so. resumed: the run that
        cmp-pump handed back (pid1, out, err, exit code or None, started at)."""
        first = resumed is None
        while True:
            failure = b""
            if resumed is not None:
                pid1, out_r, err_r, exited, started_wall = resumed
                resumed = None
                pidfd = os.pidfd_open(pid1) if exited is None else None
                started = time.monotonic() - max(0.0, time.time() - started_wall)
                self.started_wall = started_wall
                status = self.pump(pid1, pidfd, out_r, err_r, exited)
            else:
                launched = monitor_launch.launch(self, first)
                started = time.monotonic()
                self.started_wall = time.time()
                if launched is None:
                    if first:
                        return  # the starter was told why
                    status, failure = 125, b"125\tcontainer setup failed on restart"
                else:
                    pid1, pidfd, out_r, err_r, failure = launched
                    status = self.pump(pid1, pidfd, out_r, err_r)
            for fd in self.held:  # PID 1 is gone: nobody needs its idle stdin any more
                _close(fd)
            self.held = []
            if not self.finish(status, failure, started):
                return
            first = False

    def pump(self, pid1: int, pidfd: int | None, out_r: int, err_r: int, exited: int | None = None) -> int:
        if self.req.get("log") and self.log is None:
            self.log = _LogFile(self.req["log"], self.req.get("log_max_size"), self.req.get("log_max_file") or 1)
        pumps = {fd: _Pump(fd, name, self.log, self.attach[i] if self.attach else None)
                 for i, (fd, name) in enumerate(((out_r, "stdout"), (err_r, "stderr"))) if fd >= 0}
        poller = select.poll()
        for fd in pumps:
            poller.register(fd, select.POLLIN)
        if pidfd is not None:
            poller.register(pidfd, select.POLLIN)
        if self.ctl is not None:
            poller.register(self.ctl, select.POLLIN)
        prober = self.prober
        status = exited
        deadline = None if exited is None else time.monotonic() + 2.0
        while pumps:
            if prober is not None and status is None:
                prober.tick(pid1, self, poller)  # start or time out a probe (before a hand-off: it waits for it)
            if status is None and handoff.may_hand_off(self):
                handoff.hand_off(self, pid1, pumps)  # never returns
            wake = deadline
            if prober is not None and status is None:
                wake = prober.wake_at()
            timeout = None if wake is None else max(0, int((wake - time.monotonic()) * 1000) + 1)
            events = poller.poll(timeout)
            if not events and deadline is not None and time.monotonic() >= deadline:
                break  # pipes still held open by someone outside: stop waiting for them
            for fd, _ in events:
                if fd in pumps:
                    if not pumps[fd].read():
                        poller.unregister(fd)
                        os.close(fd)
                        del pumps[fd]
                elif fd == pidfd:
                    poller.unregister(pidfd)
                    if prober is not None:
                        prober.abort(self, poller)
                    status = self.reap(pid1)
                    deadline = time.monotonic() + 2.0
                elif self.ctl is not None and fd == self.ctl:
                    poller.unregister(fd)
                    self.recv()  # the starter only ever closes here (or asks nothing)
                    for p in pumps.values():
                        p.out_fd = None
                elif prober is not None:
                    prober.handle(fd, self, poller)
        if status is None:
            if prober is not None:
                prober.abort(self, poller)
            status = self.reap(pid1)
        elif exited is not None:
            self.reap(0, block=False)  # PID 1 was reaped by cmp-pump: only orphans are left
        if pidfd is not None:
            os.close(pidfd)
        return status

    def reap(self, pid1: int, block: bool = True) -> int:
        """Wait for PID 1, then every orphan the subreaper inherited. Returns docker's exit code.
        Other children's statuses (a healthcheck probe) are kept for their owners."""
        code, found = 255, not block
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
            else:
                self.reaped[pid] = status
        return code

    def finish(self, code: int, failure: bytes, started: float) -> bool:
        """Record the exit; True when the restart policy asks for another run (after the backoff)."""
        inject_failure("monitor.finish")  # test-only (no-op unless $COMPOSER_FAULT names it)
        oom, message = False, None
        if failure:
            message = failure.decode("utf-8", "replace").partition("\t")[2]
        cgroup = self.req.get("cgroup")
        if cgroup and code == 137:
            count, limit = _oom_check(cgroup)
            oom, self.oom_seen = count > self.oom_seen, max(count, self.oom_seen)
            if oom:
                from composer.units import format_size

                what = f" (limit {format_size(limit)})" if limit else ""
                message = f"container {self.req['name']} was killed: out of memory{what}"
        decision = []

        def changes(state: dict) -> dict:
            again = _restart_wanted(self.req.get("restart") or {}, code, state)
            decision.append(again)
            if not again and cgroup:  # before the record: a start that follows a stop re-creates it
                _remove_cgroup(cgroup)
            out = dict(finished_at=time.time(), exit_code=code, oom_killed=oom, error=message, paused=False,
                       restarting=again)
            if not again:
                out.update(monitor_pid=None, monitor_start=None)
            return out

        _record(self.state_dir, self.pid1, changes)
        again = bool(decision and decision[0])
        if not decision and cgroup:  # no state left (removed meanwhile): still leave no cgroup
            _remove_cgroup(cgroup)
        self.send(exit=code, oom=oom, error=message)
        if again:
            self._lost_starter()  # as docker run: the attached client leaves at the first exit
            return self._backoff(time.monotonic() - started)
        if self.log is not None:
            self.log.close()
        if self.netns_fd is not None:
            os.close(self.netns_fd)
            self.netns_fd = None
        if self.req.get("auto_remove"):
            if self.ctl is not None:  # the starter removes it itself: it waits for this
                ack = self.recv()
                if ack and ack.get("removing"):
                    return False
            self._auto_remove()
        return False

    def _backoff(self, ran_for: float) -> bool:
        """Sleep docker's restart delay; False (and the record says so) when stopped meanwhile."""
        self.delay = 0.1 if ran_for >= 10 or not self.delay else min(60.0, self.delay * 2)
        until = time.monotonic() + self.delay
        path = os.path.join(self.state_dir, STATE_FILE)
        while True:
            left = until - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, 0.5))
            try:
                if records.read_dict(path).get("stop_requested"):
                    break
            except OSError:
                return False  # removed
            except DamagedRecordError:
                continue  # the CLI's next read rebuilds it
        return self._claim_restart()

    def _claim_restart(self) -> bool:
        """Under the container's lock: still ours to restart? (stop or rm may have come.) The lock
        is held until the new PID 1 runs, so a stop sees either the old exit or the new pid."""
        try:
            self.lock_fd = os.open(os.path.join(self.state_dir, LOCK_FILE), os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        state = _read_state(self.state_dir)
        if state.get("pid") == self.pid1 and state.get("restarting") and not state.get("stop_requested"):
            return True  # record_start releases the lock
        if state.get("pid") == self.pid1:
            _write_state(self.state_dir, dict(state, restarting=False, monitor_pid=None, monitor_start=None))
        if self.req.get("cgroup") and state.get("pid") == self.pid1:
            _remove_cgroup(self.req["cgroup"])
        os.close(self.lock_fd)
        self.lock_fd = None
        return False

    def record_start(self, pid1: int) -> None:
        """After a restart: the new PID 1 in the state, then the claim's lock goes."""
        try:
            state = _read_state(self.state_dir)
            n = int(state.get("restart_count") or 0) + 1
            state.update(pid=pid1, pid_start=_start_time(pid1), started_at=time.time(), finished_at=None,
                         restarting=False, restart_count=n, health=None, paused=False)
            _write_state(self.state_dir, state)
        finally:
            if self.lock_fd is not None:
                os.close(self.lock_fd)
                self.lock_fd = None

    def _auto_remove(self) -> None:
        """--rm with nobody attached: a fresh interpreter does the removal (it needs the cgroup
        and network code this lean process never imported)."""
        import sys

        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
        code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
                "from composer.runtime.container.containers import auto_remove_main as m; sys.exit(m(sys.argv[1:]))")
        args = [sys.executable, "-c", code, root, "--auto-remove", self.req["id"],
                "--state-dir", self.req["runtime_state_dir"], "--data-dir", self.req["runtime_data_dir"]]
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        sc.close_range(3)
        os.execv(sys.executable, args)


def main(req: dict, fds: list[int]) -> None:
    """Entry from the launcher's fork. Never returns."""
    code, mon = 0, None
    try:
        os.setsid()
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
        sc.set_name("cmp-mon-" + req["id"][:7])  # comm holds 15 bytes
        gc.freeze()
        mon = Monitor(req, fds)
        mon.run()
    except BaseException:  # noqa: BLE001 - the traceback goes to the launcher's log, a note to the state
        code = 1
        report_failure("monitor", req.get("id"), req.get("state_dir"), mon.pid1 if mon is not None else 0)
    os._exit(code)
