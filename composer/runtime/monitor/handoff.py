"""cmp-pump, the compiled idle half of a monitor: when to exec it, what it is given, and `resume`,
the Python monitor again once cmp-pump hands a decision back (PID 1 exited, a healthcheck is due).
Memory is the reason (30 idle containers: ~0.13 MB each instead of ~1 MB of Python heap); policy
(restarts, health, records) stays in Python, in one place."""

from __future__ import annotations

import _signal
import os
import sys as _sys
import time

from composer.runtime import records
from composer.runtime import syscalls as sc
from composer.runtime.monitor.bootcode import boot_code
from composer.runtime.monitor.facts import _read_state, removal_mark
from composer.runtime.monitor.logpump import dumps, loads


def _close(fd: int | None) -> None:
    if fd is not None and fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def _find_pump() -> str | None:
    """The compiled idle half (`./dev setup` builds it); COMPOSER_PUMP=none keeps monitors Python."""
    path = os.environ.get("COMPOSER_PUMP") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "pump",
                                                           "cmp-pump")
    return path if path != "none" and os.access(path, os.X_OK) else None


PUMP = _find_pump()

# What cmp-pump execs to hand a decision back: `python -I -S -c RESUME_BOOT ROOT STATE_DIR INFO EVENT ARG OUT ERR`.
RESUME_BOOT = boot_code("monitor.handoff", "resume")


def resume(argv: list[str]) -> None:
    """The Python monitor again, after cmp-pump: EVENT is `exit CODE` (PID 1 reaped), `wake` (a
    healthcheck is due) or `nopump` (the pump could not run: stay Python). Never returns."""
    code, state_dir, info = 0, None, {}
    try:
        state_dir, info, event = argv[0], loads(argv[1]), argv[2]
        out, err = int(argv[4]), int(argv[5])  # as cmp-pump left them (-1: that stream ended)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        sc.set_name("cmp-mon-" + info["id"][:7])
        req = records.read_dict(os.path.join(state_dir, "monitor.json"))  # damaged: reported, as any failure
        from composer.runtime.monitor.monitor import Monitor

        mon = Monitor(req, [None])
        mon.pid1, mon.netns_fd, mon.delay, mon.oom_seen = info["pid1"], info["netns"], info["delay"], info["oom_seen"]
        mon.held = list(info["hold"])
        mon.no_pump = event == "nopump"
        for fd in (out, err, info["netns"], *mon.held):
            if fd is not None and fd >= 0:
                os.set_inheritable(fd, False)
        if mon.prober is not None:
            mon.prober.restore(_read_state(state_dir).get("health"), info["started"])
        exited = int(argv[3]) if event == "exit" else None
        mon.run((info["pid1"], out, err, exited, info["started"]))
    except BaseException:  # noqa: BLE001 - the launcher's log is our stderr
        code = 1
        from composer.runtime.monitor import failure

        failure.report("monitor", info.get("id"), state_dir, info.get("pid1") or 0)
    os._exit(code)


# A round trip through cmp-pump costs a Python start (~20 ms CPU): with a healthcheck due sooner than
# this (start_interval, short intervals) the monitor stays Python until the probes space out.
MIN_IDLE = 5.0


def may_hand_off(mon) -> bool:
    """Idle means: nobody attached, no probe running or due soon, no restart being claimed."""
    if PUMP is None or mon.no_pump or mon.ctl is not None or mon.attach or mon.lock_fd is not None:
        return False
    p = mon.prober
    return p is None or (p.probe is None and p.due - time.monotonic() >= MIN_IDLE)


def hand_off(mon, pid1: int, pumps: dict) -> None:
    """exec cmp-pump with this run's fds; it execs `resume` back when PID 1 exits or a
    healthcheck is due (or just exits at PID 1's exit when a `down` has marked the run for removal:
    facts.removal_mark). Same pid: still PID 1's parent and subreaper."""
    for p in pumps.values():
        p.flush(final=True)  # a partial line becomes its own record
    fds = {p.stream: fd for fd, p in pumps.items()}
    out, err = fds.get("stdout", -1), fds.get("stderr", -1)
    hold = [fd for fd in ((mon.stdio.in_w,) if mon.stdio is not None else ()) if fd is not None]
    hold += mon.held
    for fd in (out, err, mon.netns_fd, *hold):
        if fd is not None and fd >= 0:
            os.set_inheritable(fd, True)
    path = os.path.join(mon.state_dir, "monitor.json")
    if not os.path.exists(path):
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        os.write(fd, dumps(mon.req).encode())
        os.close(fd)
        os.rename(tmp, path)
    wake = 0
    if mon.prober is not None:
        wake = int((time.time() + max(0.0, mon.prober.due - time.monotonic())) * 1000)
    info = {"pid1": pid1, "netns": mon.netns_fd, "hold": hold, "delay": mon.delay,
            "oom_seen": mon.oom_seen, "started": mon.started_wall, "id": mon.req["id"]}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    log = mon.req.get("log") or "-"
    argv = [PUMP, "cmp-mon-" + mon.req["id"][:7], str(pid1), str(out), str(err), log,
            str(mon.req.get("log_max_size") or 0), str(mon.req.get("log_max_file") or 1), str(wake),
            removal_mark(mon.state_dir, pid1), "--",
            _sys.executable, "-I", "-S", "-c", RESUME_BOOT, root, mon.state_dir, dumps(info)]
    os.execv(PUMP, argv)
