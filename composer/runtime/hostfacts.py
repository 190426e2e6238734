"""What this host offers composer (`composer system doctor`): the cgroup version and controllers and who
delegates them, nft, overlayfs, user namespaces, the pid and inotify limits. Each fact is a (name,
value, ok) row: ok False means a feature composer uses is missing or a limit is low enough to bite."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Fact:
    """One line of what the host offers."""

    name: str
    value: str
    ok: bool = True


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _int(path: str) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def cgroup_facts() -> list[Fact]:
    from composer.errors import ComposerError
    from composer.runtime.cgroups import base as cgroups

    try:
        drv = cgroups.default_driver()
    except ComposerError as e:
        return [Fact("cgroups", str(e), False)]
    layout = drv.layout()
    out = [Fact("cgroup version", f"v{drv.version}" + (" (hybrid: v1 controllers, cgroup2 at /sys/fs/cgroup/unified)"
                                                        if drv.version == 1 and os.path.isdir("/sys/fs/cgroup/unified")
                                                        else "")),
           Fact("cgroup manager", layout.get("manager", "?")),
           Fact("containers' cgroups", layout.get("containers", "?")),
           Fact("delegation", layout.get("delegation", "?"))]
    if drv.version == 1:
        ctrls = sorted({c for c, _ in getattr(drv, "_h", ())})
        out.append(Fact("controllers", " ".join(ctrls) or "none", bool(ctrls)))
    else:
        base = drv.base_dirs()[0] if drv.base_dirs() else ""
        parent = os.path.dirname(base)
        have = (_read(os.path.join(parent, "cgroup.controllers")) or "").split()
        out.append(Fact("controllers", " ".join(have) or "none", {"memory", "pids"} <= set(have)))
    return out


def nft_fact() -> Fact:
    exe = shutil.which("nft")
    if exe is None:
        return Fact("nft", "not installed: published ports use a userspace proxy", False)
    try:
        res = subprocess.run([exe, "list", "tables"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return Fact("nft", f"{exe}: {e}", False)
    if res.returncode != 0:
        return Fact("nft", f"{exe} refused: {res.stderr.strip()[:120]}", False)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    return Fact("nft", version or exe)


def overlay_fact() -> Fact:
    fs = _read("/proc/filesystems") or ""
    ok = any(line.split()[-1] == "overlay" for line in fs.splitlines() if line.split())
    return Fact("overlayfs", "yes" if ok else "not in /proc/filesystems (modprobe overlay?)", ok)


def userns_facts() -> list[Fact]:
    most = _int("/proc/sys/user/max_user_namespaces")
    out = [Fact("user namespaces", "unknown" if most is None else f"max {most}", most is None or most > 0)]
    clone = _int("/proc/sys/kernel/unprivileged_userns_clone")
    if clone is not None:
        out.append(Fact("unprivileged user namespaces", "allowed" if clone else "refused"))
    return out


def limit_facts() -> list[Fact]:
    pid_max = _int("/proc/sys/kernel/pid_max")
    threads = _int("/proc/sys/kernel/threads-max")
    watches = _int("/proc/sys/fs/inotify/max_user_watches")
    instances = _int("/proc/sys/fs/inotify/max_user_instances")
    own = _read("/proc/self/cgroup") or ""
    pids_max = None
    for line in own.splitlines():
        _, ctrls, path = line.split(":", 2)
        if "pids" in ctrls.split(","):
            pids_max = _read(os.path.join("/sys/fs/cgroup/pids", path.lstrip("/"), "pids.max"))
        elif not ctrls and pids_max is None and os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # pure v2
            pids_max = _read(os.path.join("/sys/fs/cgroup", path.lstrip("/"), "pids.max"))
    return [Fact("pid_max", str(pid_max), pid_max is None or pid_max >= 32768),
            Fact("threads-max", str(threads)),
            Fact("pids.max of this cgroup", pids_max or "max"),
            Fact("inotify max_user_watches", str(watches), watches is None or watches >= 8192),
            Fact("inotify max_user_instances", str(instances), instances is None or instances >= 128)]


def host_facts() -> list[Fact]:
    return [*cgroup_facts(), nft_fact(), overlay_fact(), *userns_facts(), *limit_facts()]
