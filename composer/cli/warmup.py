"""Start-up overlap: take the kernel's one slow step of a container start off the critical path.

Moving a process into a cgroup (writing cgroup.procs, v1 or v2) takes the global
cgroup_threadgroup_rwsem for writing, and the first such write after a quiet spell waits for a
full RCU grace period (rcu_sync_enter): measured here 5-32 ms by load, while every write that
follows within about one grace period takes ~0.1 ms. So commands that will start containers
begin by writing our own pid into the cgroup we are already in (a move to where we are: nothing
changes) from a background thread, every 10 ms while the command runs (at most MAX_SECONDS): the
grace period passes while the CLI imports and reads the stack, and the container's real move
finds the fast path. A cgroup layout where that write fails just ends the thread.

That first write also holds cgroup_mutex while it waits, so a cgroup mkdir waits behind it: the
CLI starts warming at the top of cli.main, before its own imports (~15 ms of head start)."""

from __future__ import annotations

import _thread
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

PERIOD = 0.010  # well inside one grace period (the sync state goes idle one GP after the last write)
MAX_SECONDS = 10.0


def own_procs_file() -> str | None:
    """cgroup.procs of the cgroup this process is in: the v2 one if mounted, else a v1 one."""
    try:
        with open("/proc/self/cgroup") as f:
            cgroup = f.read()
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    except OSError:
        return None
    return procs_file(cgroup, mountinfo, os.path.exists)


def procs_file(cgroup: str, mountinfo: str, exists: Callable[[str], bool]) -> str | None:
    entries = [line.split(":", 2) for line in cgroup.splitlines() if line.count(":") >= 2]
    mounts = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" in fields and len(fields) >= fields.index("-") + 4:
            sep = fields.index("-")
            mounts.append((fields[3], fields[4], fields[sep + 1], set(fields[sep + 3].split(","))))
    for _hid, ctrls, path in sorted(entries, key=lambda e: e[1] != ""):  # v2 first
        for root, point, fstype, opts in mounts:
            v2 = ctrls == "" and fstype == "cgroup2"
            v1 = ctrls != "" and fstype == "cgroup" and set(ctrls.split(",")) <= opts
            root = root.rstrip("/")
            if (v2 or v1) and (path + "/").startswith(root + "/"):
                candidate = os.path.join(point, path[len(root):].lstrip("/"), "cgroup.procs")
                if exists(candidate):
                    return candidate
    return None


def _poke(stop: "_thread.LockType") -> None:
    path = own_procs_file()  # here, not in start(): its reads and parsing overlap the imports too
    if path is None:
        return
    pid = str(os.getpid()).encode()
    for _ in range(int(MAX_SECONDS / PERIOD)):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        except OSError:
            return
        if stop.acquire(timeout=PERIOD):  # released by stop()
            return


_stop: "_thread.LockType | None" = None


def start() -> None:
    """Begin warming (root only; a no-op elsewhere, or when already warming). A bare _thread, not
    threading: the CLI starts this before its imports (threading alone costs ~0.5 ms), and the
    thread is a daemon in effect: it never holds up the exit."""
    global _stop
    if _stop is not None or os.geteuid() != 0 or os.environ.get("COMPOSER_NO_WARMUP"):
        return
    _stop = _thread.allocate_lock()
    _stop.acquire()
    _thread.start_new_thread(_poke, (_stop,))


def stop() -> None:
    """End the warming early (the command has moved its containers, or fails)."""
    global _stop
    if _stop is not None:
        _stop.release()
        _stop = None
