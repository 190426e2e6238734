"""The container's root filesystem, built by PID 1 inside its own mount namespace (so every mount
vanishes with the container and nothing is left on the host after a crash): overlay of the image
layers + a private upper, the spec's mounts, /proc, read-only /sys, a minimal /dev, the host-side
hosts/hostname/resolv.conf, docker's masked and read-only paths, then pivot_root.

Runs in a forked child: os and ctypes only, no imports beyond syscalls and composer.paths."""

from __future__ import annotations

import os
import stat

from composer.paths import follow_links
from composer.runtime.fs import cgroupns
from composer.runtime import syscalls as sc

# docker's defaults (moby oci/defaults.go)
MASKED = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
READ_ONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))
MAX_OPTIONS = 4000  # the kernel cuts mount data at one page; misleading errors follow (host-facts)


class SetupError(Exception):
    """A problem the user can fix (bad mount target, unknown user...), reported by PID 1."""

    def __init__(self, message: str, code: int = 125) -> None:
        super().__init__(message)
        self.code = code


def secure_join(root: str, path: str) -> str:
    """`path` inside `root`, following symlinks as if root were /: never leaves root."""

    def readlink(rel: str) -> str | None:
        try:
            return os.readlink(os.path.join(root, rel))
        except OSError:  # not a link (or missing): taken as is
            return None

    parts = follow_links(path, readlink, too_many=lambda: SetupError(f"too many levels of symbolic links in {path}"))
    return os.path.join(root, *parts)


def overlay_options(layers: list[str], upper: str, work: str) -> tuple[str, str]:
    """(directory to chdir to, options) with lower dirs relative to their common parent, so many
    layers fit in one page of mount options. Overlay wants the top-most lower layer first."""
    lowers = list(reversed(layers))
    base = os.path.commonpath(lowers) if len(lowers) > 1 else os.path.dirname(lowers[0])
    rel = [os.path.relpath(p, base) for p in lowers]
    opts = f"lowerdir={':'.join(rel)},upperdir={upper},workdir={work}"
    if len(opts) > MAX_OPTIONS:
        raise SetupError(f"too many image layers for one overlay mount ({len(layers)})")
    return base, opts


def _ensure(path: str, is_dir: bool) -> None:
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if is_dir:
        os.mkdir(path, 0o755)
    else:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def _bind(source: str, target: str, read_only: bool, recursive: bool = True) -> None:
    flags = sc.MS_BIND | (sc.MS_REC if recursive else 0)
    sc.mount(source, target, None, flags)
    if read_only:
        sc.mount(None, target, None, flags | sc.MS_REMOUNT | sc.MS_RDONLY)


def _mount_spec(root: str, m: dict) -> None:
    target = secure_join(root, m["target"])
    if m["type"] == "tmpfs":
        _ensure(target, True)
        opts = ",".join(m.get("options") or ()) or None
        flags = sc.MS_NOSUID | sc.MS_NODEV | (sc.MS_RDONLY if m.get("read_only") else 0)
        sc.mount("tmpfs", target, "tmpfs", flags, opts)
        return
    source = m["source"]
    try:
        is_dir = stat.S_ISDIR(os.stat(source).st_mode)
    except OSError:
        raise SetupError(f"bind source path does not exist: {source}") from None
    _ensure(target, is_dir)
    _bind(source, target, bool(m.get("read_only")))


def _mount_dev(root: str, shm_size: int | None) -> None:
    dev = os.path.join(root, "dev")
    _ensure(dev, True)
    sc.mount("tmpfs", dev, "tmpfs", sc.MS_NOSUID | sc.MS_STRICTATIME, "mode=755,size=65536k")
    old = os.umask(0)
    try:
        for name, major, minor in DEVICES:
            os.mknod(os.path.join(dev, name), stat.S_IFCHR | 0o666, os.makedev(major, minor))
        for name in ("pts", "shm", "mqueue"):
            os.mkdir(os.path.join(dev, name), 0o755)
    finally:
        os.umask(old)
    for name, target in DEV_LINKS:
        os.symlink(target, os.path.join(dev, name))
    sc.mount("devpts", os.path.join(dev, "pts"), "devpts", sc.MS_NOSUID | sc.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    shm = f"mode=1777,size={shm_size or 64 << 20}"
    sc.mount("shm", os.path.join(dev, "shm"), "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, shm)
    sc.mount("mqueue", os.path.join(dev, "mqueue"), "mqueue", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


def _host_network_sysfs(target: str, flags: int) -> None:
    """/sys of a container in the host's netns. A fresh sysfs where the kernel allows it (root in
    the host's user namespace owns the host's netns): it carries none of the host's submounts
    (cgroup, debugfs, tracefs, bpf, securityfs...), which a bind of /sys would, writable: the
    read-only remount of a recursive bind changes its top mount only. Where refused, that bind
    with every submount made read-only one by one."""
    try:
        sc.mount("sysfs", target, "sysfs", flags)
        return
    except OSError:
        pass
    _bind("/sys", target, True)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in points:
        if point.startswith(target + "/"):
            sc.mount(None, point, None, sc.MS_BIND | sc.MS_REMOUNT | flags)


def _make_devices(root: str, devices) -> None:
    """The spec's host devices (their device policy is the cgroup's), replacing what is there."""
    for d in devices:
        path = secure_join(root, d["target"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path):
            os.unlink(path)
        kind = stat.S_IFCHR if d["kind"] == "c" else stat.S_IFBLK
        old = os.umask(0)
        try:
            os.mknod(path, kind | d["mode"], os.makedev(d["major"], d["minor"]))
        finally:
            os.umask(old)
        os.chown(path, d["uid"], d["gid"])


def _mask(root: str) -> None:
    for path in MASKED:
        target = os.path.join(root, path.lstrip("/"))
        if not os.path.lexists(target):
            continue
        if os.path.isdir(target):
            sc.mount("tmpfs", target, "tmpfs", sc.MS_RDONLY, "size=0")
        else:
            sc.mount(os.path.join(root, "dev/null"), target, None, sc.MS_BIND)
    for path in READ_ONLY:
        target = os.path.join(root, path.lstrip("/"))
        if os.path.lexists(target):
            _bind(target, target, True)


def setup(cfg: dict) -> None:
    """Build the root at cfg['rootfs'] and pivot into it. Caller: PID 1, in new mnt+pid ns."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    root = cfg["rootfs"]
    base, opts = overlay_options(cfg["layers"], cfg["upper"], cfg["work"])
    os.chdir(base)
    sc.mount("overlay", root, "overlay", 0, opts)
    for m in cfg.get("mounts", ()):
        _mount_spec(root, m)
    proc = os.path.join(root, "proc")
    _ensure(proc, True)
    sc.mount("proc", proc, "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    sys_ = os.path.join(root, "sys")
    _ensure(sys_, True)
    sysflags = sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY
    if cfg.get("netns", True):
        sc.mount("sysfs", sys_, "sysfs", sysflags)
    else:
        _host_network_sysfs(sys_, sysflags)
    cgroupns.mount_inside(root, cfg.get("cgroup"))
    _mount_dev(root, cfg.get("shm_size"))
    _make_devices(root, cfg.get("devices", ()))
    for target, source in cfg.get("etc_files", {}).items():
        dest = secure_join(root, target)
        _ensure(dest, False)
        _bind(source, dest, False, recursive=False)
    _mask(root)
    if cfg.get("read_only"):
        sc.mount(None, root, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY)
    os.chdir(root)
    sc.pivot_root(".", ".")
    sc.umount2(".", sc.MNT_DETACH)
    os.chdir("/")
