"""Start-up overlap: take the kernel's one slow step of a container start off the critical path.

Moving a process into a cgroup (writing cgroup.procs, v1 or v2) takes the global
cgroup_threadgroup_rwsem for writing, and the first such write after a quiet spell waits for a
full RCU grace period (rcu_sync_enter): measured here 5-32 ms by load, while every write that
follows within about one grace period takes ~0.1 ms. So commands that will start containers
begin by writing our own pid into the cgroup we are already in (a move to where we are: nothing
changes) from a background thread, every 10 ms while the command runs (at most MAX_SECONDS): the
grace period passes while the CLI imports and reads the stack, and the container's real move
finds the fast path. A cgroup layout where that write fails just ends the thread."""

from __future__ import annotations

import os
import threading
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


def _poke(path: str, stop: threading.Event) -> None:
    pid = str(os.getpid()).encode()
    rounds = int(MAX_SECONDS / PERIOD)
    for _ in range(rounds):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        except OSError:
            return
        if stop.wait(PERIOD):
            return


def start() -> threading.Event | None:
    """Begin warming (root only; a no-op elsewhere). Set the returned event to stop early."""
    if os.geteuid() != 0 or os.environ.get("COMPOSER_NO_WARMUP"):
        return None
    path = own_procs_file()
    if path is None:
        return None
    stop = threading.Event()
    threading.Thread(target=_poke, args=(path, stop), name="composer-warmup", daemon=True).start()
    return stop
