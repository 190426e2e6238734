"""The container dirs of $DATA/containers that are not (or no longer) whole containers, and how they go.

- A create makes the container's dir under a staging name (`.new-<id>-<pid>`, same filesystem) and
  renames it into place once spec.json is in it; a remove renames it away (`.gone-<id>-<pid>`) before
  deleting it. So `<id>/` always has its spec, and a kill -9 at any point leaves either a whole
  container or a staging dir, which nothing can run from (a start needs the spec in place). Creates
  hold the dir's lock while they stage, so a staging dir seen under that lock has a dead maker:
  `sweep_staging` deletes them (every create, `down`, `system prune`).
- `<id>/` without spec.json (made by older versions, or a hand edit) is reclaimed by `reclaim` once
  nothing runs from it: no live PID 1 in its state, no process in a cgroup named after it, no mount of
  its rootfs in this mount namespace. `container rm -f ID` kills first."""

from __future__ import annotations

import os

from composer.errors import ContainerError
from composer.runtime.container import state as st
from composer.runtime.container.teardown import quiet, rmtree
from composer.runtime.syscalls import is_alive

TYPE_CHECKING = False
if TYPE_CHECKING:
    from composer.runtime.container.containers import Runtime

STAGING, TRASH = ".new-", ".gone-"


def staging_dir(base: str, id: str) -> str:
    return os.path.join(base, f"{STAGING}{id}-{os.getpid()}")


def trash_dir(base: str, id: str) -> str:
    return os.path.join(base, f"{TRASH}{id}-{os.getpid()}")


def leftovers(base: str) -> list[str]:
    """Staging and trash dirs in base (paths)."""
    try:
        return sorted(os.path.join(base, n) for n in os.listdir(base) if n.startswith((STAGING, TRASH)))
    except OSError:
        return []


def _maker_alive(path: str) -> bool:
    """A remove still deleting its trash dir (removes do not take base's lock): leave it to it."""
    name = os.path.basename(path)
    if not name.startswith(TRASH):
        return False  # a staging dir under base's lock: its create is dead
    try:
        os.kill(int(name.rsplit("-", 1)[1]), 0)
        return True
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True


def sweep_staging(base: str) -> list[str]:
    """Delete what creates and removes killed midway left (the caller holds base's lock). Returns them."""
    gone = [p for p in leftovers(base) if not _maker_alive(p)]
    for path in gone:
        rmtree(path)
    return [p for p in gone if not os.path.exists(p)]


def sweep(rt: "Runtime") -> list[str]:
    """sweep_staging under the containers dir's lock, when it is free (a create holds it briefly)."""
    import fcntl

    base = os.path.join(rt.data_dir, "containers")
    if not os.path.isdir(base):
        return []
    fd = os.open(os.path.join(base, st.LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []  # a create is at work: the next sweep gets what a dead one left
        return sweep_staging(base)
    finally:
        os.close(fd)


def specless(rt: "Runtime") -> list[str]:
    """Ids of `<id>/` dirs in $DATA/containers without a spec.json."""
    return [id for id in rt._ids() if not os.path.exists(rt.paths(id).spec)]


def busy(rt: "Runtime", id: str) -> str | None:
    """What still runs from container id's dirs ("process 123", "cgroup X", "mount Y"), None if nothing."""
    from composer.runtime.cgroups import base as cgroups

    p = rt.paths(id)
    s = st.read(p.state) if os.path.isdir(p.state) else {}
    if is_alive(s.get("pid"), s.get("pid_start")):
        return f"process {s['pid']}"
    for d in cgroups.find_leftovers(id):
        for sub in (d, *cgroups._subdirs(d)):  # a systemd scope holds its processes in supervisor/, container/
            if cgroups.read_pids(sub):
                return f"processes in cgroup {sub}"
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and (fields[4] + "/").startswith(p.data + "/"):
                    return f"mount {fields[4]}"
    except OSError:
        pass
    return None


def reclaim(rt: "Runtime", id: str, *, force: bool = False) -> None:
    """Remove a spec-less container dir, its state dir and its cgroups. Without force, ContainerError
    while something runs from it; with force, its processes are killed first."""
    from composer.runtime.cgroups import base as cgroups
    from composer.runtime.container.teardown import kill_wait

    p = rt.paths(id)
    with st.Lock(p.state):
        what = busy(rt, id)
        if what and not force:
            raise ContainerError(f"cannot reclaim container dir {p.data} (no spec.json): {what} still runs from it")
        s = st.read(p.state)
        if s.get("monitor_pid"):
            kill_wait(s["monitor_pid"], s.get("monitor_start"), 5.0)
        if s.get("pid"):
            kill_wait(s["pid"], s.get("pid_start"), 5.0)
        driver = cgroups.default_driver()
        for d in driver.find_leftovers(id):
            driver.remove_dir(d)  # kills what is left in it (a systemd scope: through systemd)
        if s.get("endpoints") or s.get("ports"):
            quiet(rt.network.ports.unpublish, id)
            quiet(rt.network.disconnect_all, id)
        remove_data(rt, id)
        for name in os.listdir(p.state) if os.path.isdir(p.state) else ():
            if name != st.LOCK_FILE:
                quiet(os.unlink, os.path.join(p.state, name))
    rmtree(p.state)


def remove_data(rt: "Runtime", id: str) -> None:
    """The container's data dir gone in one rename, then deleted: never a dir without its spec."""
    p = rt.paths(id)
    trash = trash_dir(os.path.dirname(p.data), id)
    try:
        os.rename(p.data, trash)
    except FileNotFoundError:
        return
    except OSError:
        trash = p.data  # e.g. EXDEV on an odd layout: delete in place
    rmtree(trash)
    if os.path.exists(trash):
        raise ContainerError(f"cannot remove {trash}: it is still there (a mount in it?)")
