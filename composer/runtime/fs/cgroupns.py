"""What a container sees of cgroups: its cgroup namespace and the filesystem at /sys/fs/cgroup.

docker's defaults: on cgroup v2 a private cgroup namespace (`cgroupns: private`) with cgroup2
mounted read-only at /sys/fs/cgroup, so that the container's own cgroup is the root it sees and
runtimes that size themselves from their limits (the JVM, Go, Node) read them at
/sys/fs/cgroup/memory.max; on v1 the host's cgroup namespace, with a read-only tmpfs at
/sys/fs/cgroup holding a read-only bind of the container's own cgroup in each hierarchy (memory,
cpu,cpuacct, ...; /proc/self/mountinfo gives each bind's root, which is how such runtimes find it).
Compose's `cgroup: host|private` chooses the namespace. A v2 container in the host's namespace gets
the bind of its own cgroup dir, never the host's whole tree.

PID 1 unshares the namespace itself after "go", i.e. once the CLI has moved it into its cgroup:
a cgroup namespace's root is the cgroup its creator is in. Runs in PID 1: os and syscalls only."""

from __future__ import annotations

import os

from composer.runtime import syscalls as sc

MODES = ("", "host", "private")  # "" = docker's default for the host's cgroup version


def config(mode: str, paths: dict) -> dict:
    """The child's cgroup config (from the CLI): the container's cgroup dirs as CgroupPaths.to_dict()
    gives them, and whether PID 1 makes its own namespace."""
    private = mode == "private" or (mode == "" and int(paths["version"]) == 2)
    return {"version": int(paths["version"]), "dirs": [list(d) for d in paths["dirs"]], "private": private}


def enter(cfg: dict | None) -> None:
    """In PID 1, before the root filesystem is built: a namespace of its own when asked."""
    if cfg and cfg.get("private"):
        sc.unshare(sc.CLONE_NEWCGROUP)


def mount_inside(root: str, cfg: dict | None) -> None:
    """/sys/fs/cgroup in the new root (sysfs is mounted there already), read-only."""
    if not cfg:
        return
    target = os.path.join(root, "sys/fs/cgroup")
    if not os.path.isdir(target):
        return
    ro = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY
    dirs = [(ctrls, d) for ctrls, d in cfg.get("dirs", ())]
    if cfg["version"] == 2:
        if cfg.get("private"):
            sc.mount("cgroup2", target, "cgroup2", ro)  # shows the namespace's root: our own cgroup
        elif dirs:
            _bind_ro(dirs[0][1], target)
        return
    sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "mode=755,size=64k")
    for ctrls, d in dirs:
        sub = os.path.join(target, ctrls)
        os.mkdir(sub, 0o755)
        _bind_ro(d, sub)
        for ctrl in ctrls.split(",") if "," in ctrls else ():
            os.symlink(ctrls, os.path.join(target, ctrl))  # as the host: cpu -> cpu,cpuacct
    sc.mount(None, target, None, sc.MS_REMOUNT | ro, "mode=755,size=64k")


def _bind_ro(source: str, target: str) -> None:
    sc.mount(source, target, None, sc.MS_BIND)
    sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
