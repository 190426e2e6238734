"""Capabilities: names, docker's default set, and the drop done in the container child just before
exec (bounding set via PR_CAPBSET_DROP, then effective/permitted/inheritable via capset)."""

from __future__ import annotations

from composer.runtime import syscalls as sc

NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)
NUMBERS = {name: i for i, name in enumerate(NAMES)}

# docker (moby) oci/caps/defaults.go
DEFAULT = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)


def _number(name: str) -> int:
    key = name.upper().removeprefix("CAP_")
    if key not in NUMBERS:
        raise ValueError(f"unknown capability {name!r}")
    return NUMBERS[key]


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return len(NAMES) - 1


def available() -> int:
    """Our own bounding set: what we can hand on (a sandboxed host may lack some, e.g. SYS_RESOURCE)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return (1 << (last_cap() + 1)) - 1


def resolve(cap_add: tuple[str, ...] = (), cap_drop: tuple[str, ...] = (), privileged: bool = False) -> int:
    """The capability mask a container keeps, as docker computes it ("ALL" allowed in both); "ALL"
    and privileged mean all that this host lets us have."""
    have = available()
    if privileged:
        return ((1 << (last_cap() + 1)) - 1) & have
    keep = {_number(n) for n in DEFAULT}
    if any(n.upper() == "ALL" for n in cap_add):
        keep = {c for c in range(last_cap() + 1) if have & (1 << c)}
    else:
        for n in cap_add:
            c = _number(n)
            if not have & (1 << c):
                raise ValueError(f"cannot add capability {NAMES[c]}: this host does not grant it to composer "
                                 "(it is missing from our own bounding set)")
            keep.add(c)
    if any(n.upper() == "ALL" for n in cap_drop):
        keep = {_number(n) for n in cap_add if n.upper() != "ALL"}
    else:
        keep -= {_number(n) for n in cap_drop}
    mask = 0
    for c in keep:
        mask |= 1 << c
    return mask & have


def drop_bounding(keep: int, last: int) -> None:
    """Drop every capability not in keep from the bounding set: no exec can get it back."""
    for cap in range(last + 1):
        if not keep & (1 << cap):
            sc.prctl(sc.PR_CAPBSET_DROP, cap)


def set_process_caps(keep: int) -> None:
    """After setuid: a root process keeps exactly `keep`; a non-root one already lost all."""
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    sc.capset(keep, keep, 0)


def names(mask: int) -> list[str]:
    return [NAMES[i] if i < len(NAMES) else str(i) for i in range(64) if mask & (1 << i)]
