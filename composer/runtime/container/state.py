"""A container's state on disk: `$STATE/containers/<id>/state.json` (written to a temp file, then
renamed) guarded by `lock` (fcntl). The stored words are facts (pid + its start time, finish time,
exit code), and the status is derived from them, so a crashed monitor or a reused pid never makes
a dead container look alive. Imported by the monitor: os and time only, json where a state is read
or written and fcntl where one is locked (the lean `ps`, cli/leanps.py, derives statuses here
without json's re)."""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from typing import Any, Callable

from composer.errors import DamagedRecordError
from composer.runtime import records
from composer.runtime.syscalls import is_alive

STATE_FILE = "state.json"
LOCK_FILE = "lock"


def read(dir_: str) -> dict[str, Any]:
    """The state dict, {} when there is none (never started, or the state dir died in a reboot). A
    damaged file (runtime.records) is rebuilt from the host and said once (runtime.container.rebuild)."""
    try:
        return records.read_dict(os.path.join(dir_, STATE_FILE))
    except FileNotFoundError:
        return {}
    except DamagedRecordError as err:
        from composer.runtime.container import rebuild

        return rebuild.state(dir_, err)


def write(dir_: str, state: dict[str, Any]) -> None:
    import json

    os.makedirs(dir_, exist_ok=True)
    tmp = os.path.join(dir_, f".{STATE_FILE}.{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(state, f, sort_keys=True)
    os.rename(tmp, os.path.join(dir_, STATE_FILE))


def update(dir_: str, **changes: Any) -> dict[str, Any]:
    """Read-modify-write; the caller holds the lock."""
    state = read(dir_)
    state.update(changes)
    write(dir_, state)
    return state


class Lock:
    """flock on the container's lock file; every mutating verb holds it."""

    def __init__(self, dir_: str, create: bool = True) -> None:
        self.dir = dir_
        self.create = create
        self.fd: int | None = None

    def __enter__(self) -> "Lock":
        """FileNotFoundError when create=False and the container's dir is gone (removed)."""
        if self.create:
            os.makedirs(self.dir, exist_ok=True)
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if self.create else 0)
        self.fd = os.open(os.path.join(self.dir, LOCK_FILE), flags, 0o600)
        import fcntl  # here: `ps` derives statuses with this module and takes no lock

        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def now() -> float:
    return time.time()


def derive_status(state: dict[str, Any], alive: Callable[[int | None, int | None], bool] = is_alive) -> str:
    """created | running | paused | restarting | exited, from facts only.

    - no state at all: the state dir is gone (reboot) -> exited
    - never given a pid -> created
    - PID 1 alive with the recorded start time -> running (paused if frozen by us)
    - otherwise -> exited (the monitor records code and time; if it died too, they stay unknown)
    """
    if not state:
        return "exited"
    pid = state.get("pid")
    if not pid:
        return "exited" if state.get("finished_at") else "created"
    if alive(pid, state.get("pid_start")):
        return "paused" if state.get("paused") else "running"
    if state.get("restarting") and not state.get("stop_requested") and monitor_alive(state, alive):
        return "restarting"  # the monitor waits out the backoff, then starts it again
    return "exited"


def health(has_check: bool, state: dict[str, Any], status: str) -> str | None:
    """starting | healthy | unhealthy while a container with a healthcheck runs; None otherwise."""
    if not has_check or status not in ("running", "paused") or not monitor_alive(state):
        return None  # without its monitor, nobody probes: the last result would be stale
    return (state.get("health") or {}).get("status") or "starting"


def monitor_alive(state: dict[str, Any], alive: Callable[[int | None, int | None], bool] = is_alive) -> bool:
    return alive(state.get("monitor_pid"), state.get("monitor_start"))
