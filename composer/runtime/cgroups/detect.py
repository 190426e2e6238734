"""Which cgroups this host has: `detect()` reads /proc/self/mountinfo and /proc/self/cgroup and
returns a driver for the host's cgroup version, `V1Driver` (one directory per hierarchy, each the
creating process's own cgroup in it) or `V2Driver` (the unified hierarchy). Only a process that
creates containers needs this (cgroups.default_driver); one that handles an existing container's
cgroup gets its driver from the recorded CgroupPaths (cgroups.driver_for) without reading /proc."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from composer.runtime.cgroups.base import CgroupDriver

from composer.errors import HostError


@dataclass(frozen=True)
class Mount:
    """A mounted cgroup hierarchy."""

    root: str  # path inside the hierarchy that is mounted (not "/" in a cgroup namespace or bind)
    mountpoint: str
    fstype: str
    superopts: frozenset[str]


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        sep = fields.index("-")
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        superopts = frozenset(fields[sep + 3].split(",")) if len(fields) > sep + 3 else frozenset()
        mounts.append(Mount(_unescape(fields[3]), _unescape(fields[4]), fstype, superopts))
    return mounts


def parse_proc_cgroup(text: str) -> list[tuple[str, tuple[str, ...], str]]:
    """Lines 'id:ctrl,ctrl:path' -> (id, controllers, path); v2's line has no controllers."""
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        ctrls = tuple(c for c in parts[1].split(",") if c)
        out.append((parts[0], ctrls, parts[2]))
    return out


def mounted_dir(mount: Mount, cgpath: str, root_prefix: str) -> str:
    """The directory, as seen here, of cgroup `cgpath` in the hierarchy `mount` shows."""
    rel = cgpath
    if mount.root != "/" and (cgpath == mount.root or cgpath.startswith(mount.root.rstrip("/") + "/")):
        rel = cgpath[len(mount.root.rstrip("/")):]
    return os.path.normpath(root_prefix + mount.mountpoint + "/" + rel.lstrip("/"))


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def detect(mountinfo_path: str = "/proc/self/mountinfo", cgroup_path: str = "/proc/self/cgroup",
           root_prefix: str = "") -> "CgroupDriver":
    """The driver for this host. Pure v2 when /sys/fs/cgroup is cgroup2, or when no v1 hierarchy
    carries a controller; a controller-less cgroup2 beside v1 hierarchies (hybrid) is ignored."""
    try:
        mounts = parse_mountinfo(_read(mountinfo_path))
        own = parse_proc_cgroup(_read(cgroup_path))
    except OSError as e:
        raise HostError(f"cannot read cgroup information: {e}") from None
    v2_mounts = [m for m in mounts if m.fstype == "cgroup2"]
    v2_line = next((p for hid, c, p in own if hid == "0" and not c), None)
    v1_lines = [(c, p) for hid, c, p in own if c and not any(x.startswith("name=") for x in c)]
    pure_v2 = any(m.mountpoint == "/sys/fs/cgroup" for m in v2_mounts)
    if not pure_v2 and not v1_lines and v2_mounts and v2_line is not None:
        pure_v2 = True
    manager = os.environ.get("COMPOSER_CGROUP_MANAGER", "")
    if manager not in ("", "systemd", "cgroupfs"):
        raise HostError(f"COMPOSER_CGROUP_MANAGER={manager!r} is not a cgroup manager",
                        hint="use systemd or cgroupfs, or unset it to choose by the host")
    if pure_v2:
        from composer.runtime.cgroups.v2 import V2Driver

        mount = next((m for m in v2_mounts if m.mountpoint == "/sys/fs/cgroup"), v2_mounts[0] if v2_mounts else None)
        if mount is None or v2_line is None:
            raise HostError("cgroup v2 is not mounted where /proc/self/cgroup says it is")
        root = mounted_dir(mount, "/", root_prefix)
        if manager != "cgroupfs" and not root_prefix:  # (root_prefix: a test's made-up tree, not this host)
            from composer.runtime.cgroups import systemd

            if systemd.running():
                return systemd.SystemdDriver(root)
            if manager == "systemd":
                raise HostError("COMPOSER_CGROUP_MANAGER=systemd, but systemd is not this host's init system")
        return V2Driver(mounted_dir(mount, v2_line, root_prefix), root)
    if manager == "systemd":
        raise HostError("COMPOSER_CGROUP_MANAGER=systemd needs cgroup v2 (this host has v1 hierarchies)",
                        hint="unset it: on cgroup v1 composer manages the cgroups itself")
    from composer.runtime.cgroups.v1 import V1Driver

    hierarchies: list[tuple[tuple[str, ...], str]] = []
    for ctrls, path in v1_lines:
        mount = _v1_mount_for(mounts, ctrls, path)
        if mount is not None:
            hierarchies.append((ctrls, mounted_dir(mount, path, root_prefix)))
    if not hierarchies:
        raise HostError("no cgroup controllers are mounted (neither cgroup v1 nor v2)")
    return V1Driver(hierarchies)


def _v1_mount_for(mounts: list[Mount], ctrls: tuple[str, ...], path: str) -> Mount | None:
    cands = [m for m in mounts if m.fstype == "cgroup" and set(ctrls) <= m.superopts]
    # Several mounts of one hierarchy (binds): the one whose root holds our cgroup, shortest root.
    cands.sort(key=lambda m: (not (path + "/").startswith(m.root.rstrip("/") + "/"), len(m.root)))
    return cands[0] if cands else None
