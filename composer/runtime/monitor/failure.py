"""What a lean runtime process leaves behind when it dies of an unexpected exception.

The launcher, its fork template, the monitors (Python, and the Python half that cmp-pump execs back)
and a monitor's stdin forwarder catch everything at their top and exit 1: nothing above them would
read an exception anyway, and an exception unwinding out of a forked child would run its parent's
code. Their fd 2 is the launcher's log (`$STATE/launcher.log`, opened by `launcher.spawn`), so
`report` writes the traceback there, under one line with the time, the role, the pid and the
container, and for a monitor records `monitor_error` in the container's state.json (an optional
field: older states lack it, older readers ignore it), which `ps` and `container inspect` show.

Lean like its callers: os and time only; `traceback` is imported on the failure path alone."""

from __future__ import annotations

import os
import time

def inject(point: str) -> None:
    """TEST-ONLY. composer.faults.point: with $COMPOSER_FAULT=monitor.finish:raise a monitor fails
    deterministically (tests/integration/test_monitor_failure.py). The variable reaches monitors
    through the launcher's environment, i.e. that of the CLI that started the launcher."""
    from composer.faults import point as fault_point

    fault_point(point)


def log_path() -> str | None:
    """The file fd 2 writes to (the launcher's log), None when it is not a regular file."""
    try:
        if os.fstat(2).st_mode & 0o170000 != 0o100000:
            return None
        path = os.readlink("/proc/self/fd/2")
    except OSError:
        return None
    return path if path.startswith("/") and not path.endswith(" (deleted)") else None


def report(role: str, container_id: str | None = None, state_dir: str | None = None, pid1: int = 0) -> None:
    """Call in an `except` block: the traceback to fd 2 and, with state_dir, `monitor_error` in
    the container's state (only while that state is this monitor's run: pid1, or our own pid as the
    recorded monitor). Never raises: the caller exits next."""
    summary = "unknown error"
    try:
        import sys
        import traceback

        exc = sys.exc_info()[1]
        if exc is not None:
            summary = traceback.format_exception_only(type(exc), exc)[-1].strip().replace("\n", " ")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        who = f"{role} pid {os.getpid()}" + (f" container {container_id}" if container_id else "")
        _write_all(2, f"{stamp} {who} died: {summary}\n{traceback.format_exc()}".encode("utf-8", "replace"))
    except BaseException:  # noqa: BLE001 - reporting must not hide the exit
        pass
    if state_dir:
        try:
            _record(state_dir, pid1, {"message": f"{role} died: {summary}"[:500], "log": log_path(),
                                      "pid": os.getpid(), "time": time.time()})
        except BaseException:  # noqa: BLE001
            pass


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _record(state_dir: str, pid1: int, error: dict) -> None:
    import fcntl

    from composer.runtime.monitor.facts import LOCK_FILE, _read_state, _write_state

    try:
        lock = os.open(os.path.join(state_dir, LOCK_FILE), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # removed meanwhile
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = _read_state(state_dir)
        if state and ((pid1 and state.get("pid") == pid1) or state.get("monitor_pid") == os.getpid()):
            state["monitor_error"] = error
            _write_state(state_dir, state)
    finally:
        os.close(lock)


def summary(state: dict) -> str | None:
    """The one line `ps` and `inspect` show for a state's monitor_error ("monitor died: X (traceback
    in LOG)"), None without one."""
    error = state.get("monitor_error")
    if not isinstance(error, dict):
        return None
    where = f" (traceback in {error['log']})" if error.get("log") else ""
    return f"{error.get('message') or 'monitor died'}{where}"
