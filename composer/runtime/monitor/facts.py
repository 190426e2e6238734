"""The monitor's facts on disk: state.json read-modify-writes under the container's lock (the
same files as runtime.container.state, without importing it), the restart rules, and the few cgroup file
operations a monitor needs without the cgroup driver (imported only when they are not enough)."""

from __future__ import annotations

import fcntl
import os

from composer.errors import DamagedRecordError
from composer.runtime import records
from composer.runtime.monitor.logpump import dumps

STATE_FILE, LOCK_FILE = "state.json", "lock"  # as runtime.container.state (not imported: typing, json)


def removal_mark(state_dir: str, pid1: int) -> str:
    """The file that says "this run's container is being removed" (written by a stop for removal,
    `down`): at PID 1's exit, cmp-pump then exits instead of handing the exit back to Python for a
    record nobody will read. Named after PID 1, so a later run of the container is not affected."""
    return os.path.join(state_dir, f"removing-{pid1}")


def _oom_check(cgroup: dict) -> tuple[int, int | None]:
    """(the cgroup's oom_kill count, its memory limit)."""
    try:
        from composer.runtime.cgroups import base as cgroups

        paths = cgroups.CgroupPaths.from_dict(cgroup)
        driver = cgroups.driver_for(paths)
        return driver.oom_kill_count(paths), driver.memory_limit(paths)
    except Exception:  # noqa: BLE001 - a missing cgroup must not lose the exit code
        return 0, None


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


def _read_state(state_dir: str) -> dict:
    """{} when absent or damaged: a monitor records nothing on a state it cannot read (the CLI's next
    read rebuilds it from the host, runtime.container.rebuild)."""
    try:
        return records.read_dict(os.path.join(state_dir, STATE_FILE))
    except (OSError, DamagedRecordError):
        return {}


def _write_state(state_dir: str, state: dict) -> None:
    tmp = os.path.join(state_dir, f".{STATE_FILE}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(dumps(state))
    os.rename(tmp, os.path.join(state_dir, STATE_FILE))


def _record(state_dir: str, pid1: int, changes) -> None:
    """runtime.container.state's locked read-modify-write (same files), unless a newer start owns the state.
    changes: a dict, or a function of the current state returning one."""
    try:
        lock = os.open(os.path.join(state_dir, LOCK_FILE), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # removed meanwhile (rm -f): nothing to record
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = _read_state(state_dir)
        if not state or state.get("pid") != pid1:  # not a newer start's state
            return
        state.update(changes(state) if callable(changes) else changes)
        _write_state(state_dir, state)
    finally:
        os.close(lock)


def _restart_wanted(policy: dict, code: int, state: dict) -> bool:
    """docker's rules; a stop or kill by the user (stop_requested) always wins."""
    name = policy.get("name") or "no"
    if name == "no" or state.get("stop_requested"):
        return False
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure":
        limit = int(policy.get("max_retries") or 0)
        return code != 0 and (limit <= 0 or int(state.get("restart_count") or 0) < limit)
    return False


def _join_cgroup(cgroup: dict | None, pid: int) -> bool:
    """runtime.cgroups.base' attach for a restart (no import: plain writes to cgroup.procs)."""
    for _, d in (cgroup or {}).get("dirs", ()):
        try:
            fd = os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            os.write(fd, b"%d" % pid)
        except OSError:
            return False
        finally:
            os.close(fd)
    return True


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
        from composer.runtime.cgroups import base as cgroups

        paths = cgroups.CgroupPaths.from_dict(cgroup)
        cgroups.driver_for(paths).remove(paths)
    except Exception:  # noqa: BLE001 - rm retries; the exit code matters more
        pass
