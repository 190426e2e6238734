"""The Linux calls Python 3.11's os module lacks (unshare, setns, mount, pivot_root, prctl, capset,
close_range), through ctypes to libc. Imported by the launcher, monitor and container child, so it
stays tiny: os, ctypes and platform-independent constants only; ctypes itself is loaded on first use
(load()), as the CLI imports this module only for is_alive and proc_start_time."""

from __future__ import annotations

import os


class _OnFirstUse:
    """Stands for ctypes / libc until first used: the CLI imports this module for is_alive and
    proc_start_time, which need neither (ctypes costs ~1.8 ms of every start). The launcher calls
    load() before it forks, so monitors and containers share the loaded module."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        load()
        return getattr(globals()[self._name], attr)

    def __call__(self, *args):
        load()
        return globals()[self._name](*args)


def load() -> None:
    global ctypes, _libc, _syscall, _CapHeader, _CapData
    if not isinstance(_libc, _OnFirstUse):
        return
    import ctypes as real

    class _CapHeader(real.Structure):
        _fields_ = [("version", real.c_uint32), ("pid", real.c_int)]

    class _CapData(real.Structure):
        _fields_ = [("effective", real.c_uint32), ("permitted", real.c_uint32), ("inheritable", real.c_uint32)]

    lib = real.CDLL(None, use_errno=True)
    lib.syscall.restype = real.c_long
    ctypes, _libc, _syscall = real, lib, lib.syscall


ctypes = _OnFirstUse("ctypes")
_libc = _OnFirstUse("_libc")
_syscall = _OnFirstUse("_syscall")

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_STRICTATIME = 1 << 24
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_MACHINE = os.uname().machine
# Syscalls without a libc wrapper in every glibc; numbers per architecture (generic table = arm64).
_NR = {
    "x86_64": {"pivot_root": 155, "close_range": 436},
    "aarch64": {"pivot_root": 41, "close_range": 436},
}.get(_MACHINE, {"pivot_root": 41, "close_range": 436})


def _check(ret: int, what: str) -> int:
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    ret = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
    _check(ret, f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_syscall(ctypes.c_long(_NR["pivot_root"]), _b(new_root), _b(put_old)), "pivot_root")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, ctypes.c_size_t(len(raw))), "setdomainname")


def prctl(option: int, arg2: int | bytes = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    a2 = arg2 if isinstance(arg2, bytes) else ctypes.c_ulong(arg2)
    ret = _libc.prctl(ctypes.c_int(option), a2, ctypes.c_ulong(arg3), ctypes.c_ulong(arg4), ctypes.c_ulong(arg5))
    return _check(ret, f"prctl({option})")


def set_name(name: str) -> None:
    """comm name (15 bytes), what ps and /proc/PID/comm show."""
    prctl(PR_SET_NAME, name.encode()[:15] + b"\0")


def close_range(first: int, last: int = 0xFFFFFFFF) -> None:
    """Close every fd in [first, last]; falls back to a loop on kernels before 5.9."""
    if first > last:
        return
    ret = _syscall(ctypes.c_long(_NR["close_range"]), ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(0))
    if ret == -1:
        for fd in _open_fds():
            if first <= fd <= last:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _open_fds() -> list[int]:
    try:
        return [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        return list(range(0, 1024))


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets (64-bit masks)."""
    load()
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(hdr), data), "capset")


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot): with the pid, it names a
    process uniquely, so a reused pid is never mistaken for ours. None if no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    # comm may contain spaces and parentheses: fields start after the LAST ')'
    rest = raw[raw.rfind(b")") + 2:].split()
    if rest[0] == b"Z":  # a zombie has finished: not "alive" for our purposes
        return None
    return int(rest[19])


def is_alive(pid: int | None, start: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    now = proc_start_time(pid)
    return now is not None and (start is None or now == start)
