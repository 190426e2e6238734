"""The cgroup drivers a root test can run on this host: the host's own (`detect()`: v1 here, v2 in
the v2 VM tier) and, on a v1-hybrid host, a `V2Driver` rooted at the controller-less cgroup2 mount
(/sys/fs/cgroup/unified). The latter cannot set limits (no controllers there), but cgroup.procs,
cgroup.freeze, cgroup.kill, cgroup.events and BPF device programs work on it exactly as on a pure
v2 host, so v2's code paths for those run here too. The product keeps using `detect()`."""

from __future__ import annotations

import os

from composer.runtime.cgroups import base as cg


def unified_v2():
    """A V2Driver on the hybrid host's cgroup2 mount, or None on a pure v1 or pure v2 host."""
    from composer.runtime.cgroups.detect import mounted_dir, parse_mountinfo, parse_proc_cgroup
    from composer.runtime.cgroups.v2 import V2Driver

    if cg.default_driver().version != 1:
        return None
    with open("/proc/self/mountinfo") as f:
        mounts = [m for m in parse_mountinfo(f.read()) if m.fstype == "cgroup2"]
    with open("/proc/self/cgroup") as f:
        line = next((p for hid, c, p in parse_proc_cgroup(f.read()) if hid == "0" and not c), None)
    if not mounts or line is None:
        return None
    return V2Driver(mounted_dir(mounts[0], line, ""), mounted_dir(mounts[0], "/", ""))


def kinds() -> list[str]:
    """"host", plus "unified-v2" where the host is hybrid."""
    return ["host"] + (["unified-v2"] if unified_v2() is not None else [])


def make(kind: str):
    if kind == "host":
        from composer.runtime.cgroups.detect import detect

        return detect()
    drv = unified_v2()
    assert drv is not None, f"no {kind} driver on this host"
    return drv


def use_for_runtime(kind: str) -> None:
    """Make this process's Runtime create containers' cgroups with `kind`'s driver."""
    cg._DEFAULT = make(kind)
