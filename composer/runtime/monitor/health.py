"""Healthchecks, run by the container's monitor (so they go on after the CLI has left).

    monitor --fork--> E: join the cgroup and the container's namespaces (runtime.container.execute._enter)
                      --fork--> X: user, caps, env, workdir of the container; exec the test
    E exits with X's code; X's stdout+stderr come back on one pipe (the first 4 KiB are kept).

docker's rules: the first probe runs `interval` after the start (`start_interval` while in the
`start_period`); failures inside the start period do not count until a probe has passed; `retries`
consecutive failures make it unhealthy; a probe over `timeout` is killed and fails (exit -1);
the last 5 results are kept. The monitor polls; this module only ever forks, never blocks.

Lean like the monitor (imported by the launcher before it forks): os, time, _signal and syscalls
here; E imports what it needs after the fork, touching none of the monitor's pages."""

from __future__ import annotations

import os
import time

from composer.runtime import syscalls as sc

MAX_OUTPUT = 4096  # docker keeps this much of a probe's output
KEEP = 5  # results kept in the state, as docker


def _iso(t: float) -> str:
    ns = int((t % 1) * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ns:09d}Z"


class Prober:
    def __init__(self, hc: dict, req: dict) -> None:
        self.test = list(hc["test"])
        self.interval = float(hc.get("interval") or 30.0)
        self.timeout = float(hc.get("timeout") or 30.0)
        self.retries = int(hc.get("retries") or 3)
        self.start_period = float(hc.get("start_period") or 0.0)
        self.start_interval = float(hc.get("start_interval") or 5.0)
        self.req = req
        self.probe: dict | None = None
        self.reset()

    def reset(self) -> None:
        """A new run of the container: health starts over."""
        self.started = time.monotonic()
        self.status, self.streak, self.log = "starting", 0, []
        self.due = self.started + self._next_interval()

    def restore(self, health: dict | None, started_wall: float) -> None:
        """In a monitor resumed from cmp-pump: the state it recorded, and a probe due now."""
        now = time.monotonic()
        self.started = now - max(0.0, time.time() - started_wall)
        h = health or {}
        self.status = h.get("status") or "starting"
        self.streak = int(h.get("failing_streak") or 0)
        self.log = list(h.get("log") or [])
        self.due = now

    def _next_interval(self) -> float:
        in_start = time.monotonic() - self.started < self.start_period
        return self.start_interval if self.status == "starting" and in_start else self.interval

    def wake_at(self) -> float:
        return self.probe["deadline"] if self.probe else self.due

    # ------------------------------------------------------------ driven by the monitor's poll loop

    def tick(self, pid1: int, mon, poller) -> None:
        now = time.monotonic()
        if self.probe is not None:
            if now >= self.probe["deadline"]:
                self._kill()
                self._done(mon, poller, -1, f"Health check exceeded timeout ({self.timeout:g}s)")
        elif now >= self.due:
            self._launch(pid1, poller)

    def handle(self, fd: int, mon, poller) -> None:
        p = self.probe
        if p is None:
            poller.unregister(fd)
            return
        if fd == p["out"]:
            self._read(poller)
        elif fd == p["pidfd"]:
            self._read(poller)  # what is there now; a background child may hold the pipe forever
            status = self._wait(mon)
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
            self._done(mon, poller, code, bytes(p["buf"]).decode("utf-8", "replace"))

    def abort(self, mon, poller=None) -> None:
        """PID 1 is gone: a running probe goes too, unrecorded."""
        if self.probe is None:
            return
        self._kill()
        self._wait(mon)
        self._close(poller)

    # ------------------------------------------------------------ one probe

    def _launch(self, pid1: int, poller) -> None:
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            _probe(pid1, w, self.test, self.req)  # never returns
        os.close(w)
        os.set_blocking(r, False)
        pidfd = os.pidfd_open(pid)
        self.probe = {"pid": pid, "pidfd": pidfd, "out": r, "buf": bytearray(), "t0": time.time(),
                      "deadline": time.monotonic() + self.timeout}
        poller.register(r, 1)  # POLLIN
        poller.register(pidfd, 1)

    def _read(self, poller) -> None:
        p = self.probe
        if p["out"] is None:
            return
        while True:
            try:
                data = os.read(p["out"], 65536)
            except BlockingIOError:
                return
            if not data:
                poller.unregister(p["out"])
                os.close(p["out"])
                p["out"] = None
                return
            room = MAX_OUTPUT - len(p["buf"])
            if room > 0:
                p["buf"] += data[:room]

    def _kill(self) -> None:
        try:
            os.kill(self.probe["pid"], 9)  # X follows: its parent-death signal is SIGKILL
        except ProcessLookupError:
            pass

    def _wait(self, mon) -> int:
        pid = self.probe["pid"]
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:  # collected by the monitor's reaper
            return mon.reaped.pop(pid, 255 << 8)

    def _close(self, poller) -> None:
        p, self.probe = self.probe, None
        for key in ("out", "pidfd"):
            if p[key] is not None:
                if poller is not None:
                    try:
                        poller.unregister(p[key])
                    except KeyError:
                        pass
                os.close(p[key])

    def _done(self, mon, poller, code: int, output: str) -> None:
        p = self.probe
        if code == -1:
            self._wait(mon)
        self._close(poller)
        in_start = time.monotonic() - self.started < self.start_period
        if code == 0:
            self.status, self.streak = "healthy", 0
        elif not (in_start and self.status == "starting"):
            self.streak += 1
            if self.streak >= self.retries:
                self.status = "unhealthy"
        self.log = (self.log + [{"Start": _iso(p["t0"]), "End": _iso(time.time()), "ExitCode": code,
                                 "Output": output}])[-KEEP:]
        self.due = time.monotonic() + self._next_interval()
        mon.record_health({"status": self.status, "failing_streak": self.streak, "log": self.log})


def _probe(pid1: int, w: int, test: list[str], req: dict) -> None:
    """E, in a fresh fork of the monitor. Never returns."""
    code = 126
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, 9)  # the monitor killed (rm -f): the probe goes too
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(w, 1)
        os.dup2(w, 2)
        from types import SimpleNamespace

        from composer.runtime.container import execute
        from composer.runtime.spec import ContainerSpec

        with open(req["spec_path"]) as f:
            spec = ContainerSpec.from_json(f.read())
        # everything X needs is imported and built now: after setns it sees the container's files
        from composer.runtime.cgroups import base as cgroups  # noqa: F401

        program = execute._seccomp_program(spec, req.get("runtime_state_dir"))
        execute._enter(pid1, {"cgroup": req.get("cgroup")})
        x = os.fork()
        if x == 0:
            sc.prctl(sc.PR_SET_PDEATHSIG, 9)  # a timed-out probe: E is killed, X with it
            try:
                execute._process(SimpleNamespace(spec=spec), test, (), None, None, program)
            except BaseException as e:  # noqa: BLE001
                execute._report(e)
        _, status = os.waitpid(x, 0)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    except BaseException as e:  # noqa: BLE001
        try:
            os.write(2, f"healthcheck: {e}\n".encode())
        except OSError:
            pass
    os._exit(code)
