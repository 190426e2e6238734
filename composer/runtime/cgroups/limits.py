"""Resources checked as docker checks them and converted to kernel units, for both cgroup
versions. Pure: no file is touched, so a bad value fails before any cgroup exists."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from typing import Any

from composer.errors import ContainerError
from composer.runtime.cgroups.devices import rules_for
from composer.runtime.spec import Resources

CFS_PERIOD_US = 100_000
MIN_MEMORY = 6 * 1024 * 1024  # docker refuses smaller limits: the kernel cannot run anything in less
MAX_SHARES = 262_144
MIN_SHARES = 2


@dataclass(frozen=True)
class Limits:
    """Resources validated and converted to kernel units; None = leave the kernel default."""

    memory: int | None = None
    memory_swap: int | None = None  # memory+swap total as docker counts it; -1 = unlimited
    reservation: int | None = None
    cfs_quota_us: int | None = None
    shares: int | None = None
    cpuset: str | None = None
    pids: int | None = None
    oom_kill_disable: bool = False
    devices: tuple = ()  # devices.DeviceRule: the default allow list and the container's own


_CPUSET_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_cpuset(text: str) -> set[int]:
    """'0-2,5' -> {0, 1, 2, 5}; ValueError on bad syntax or reversed range."""
    text = text.strip()
    if not text:
        return set()
    if not _CPUSET_RE.match(text):
        raise ValueError(text)
    cpus: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if a > b:
            raise ValueError(text)
        cpus.update(range(a, b + 1))
    return cpus


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(res: Resources, ncpu: int | None = None) -> Limits:
    """Check `res` as docker does and convert it; ContainerError names the bad value."""
    mem = res.memory or None
    if mem is not None and (not _is_int(mem) or mem < 0):
        raise ContainerError(f"invalid memory limit {mem!r}: must be a positive number of bytes")
    if mem is not None and mem < MIN_MEMORY:
        raise ContainerError(f"invalid memory limit {mem}: minimum memory limit allowed is 6 MiB")
    swap = res.memory_swap or None
    if swap is not None:
        if not _is_int(swap) or swap < -1:
            raise ContainerError(f"invalid memory+swap limit {swap!r}: must be bytes or -1 (unlimited)")
        if mem is None:
            raise ContainerError(f"invalid memory+swap limit {swap}: set a memory limit too")
        if swap != -1 and swap < mem:
            raise ContainerError(
                f"invalid memory+swap limit {swap}: must be at least the memory limit ({mem})")
    elif mem is not None:
        swap = 2 * mem  # docker's default: as much swap as memory
    resv = res.memory_reservation or None
    if resv is not None:
        if not _is_int(resv) or resv < 0:
            raise ContainerError(f"invalid memory reservation {resv!r}: must be a positive number of bytes")
        if resv < MIN_MEMORY:
            raise ContainerError(f"invalid memory reservation {resv}: minimum allowed is 6 MiB")
        if mem is not None and resv > mem:
            raise ContainerError(
                f"invalid memory reservation {resv}: must not exceed the memory limit ({mem})")
    quota = None
    if res.cpus is not None and res.cpus != 0:
        ncpu = ncpu or os.cpu_count() or 1
        cpus = res.cpus
        if not isinstance(cpus, (int, float)) or isinstance(cpus, bool) or not 0.01 <= cpus <= ncpu:
            raise ContainerError(
                f"invalid cpus {cpus!r}: range of CPUs is from 0.01 to {ncpu}.00, "
                f"as there are only {ncpu} CPUs available")
        quota = max(1000, int(round(cpus * CFS_PERIOD_US)))
    shares = res.cpu_shares or None
    if shares is not None:
        if not _is_int(shares) or shares < 0:
            raise ContainerError(f"invalid cpu shares {shares!r}: must be a positive integer")
        shares = min(max(shares, MIN_SHARES), MAX_SHARES)  # the kernel clamps the same way
    cpuset = res.cpuset.strip() if res.cpuset else None
    if cpuset:
        try:
            parse_cpuset(cpuset)
        except ValueError:
            raise ContainerError(f"invalid cpuset {cpuset!r}: expected a list like 0-2,5") from None
    pids = res.pids if res.pids is not None and res.pids > 0 else None  # docker: <= 0 is unlimited
    if res.pids is not None and not _is_int(res.pids):
        raise ContainerError(f"invalid pids limit {res.pids!r}: must be an integer")
    return Limits(mem, swap, resv, quota, shares, cpuset or None, pids, bool(res.oom_kill_disable),
                  rules_for(tuple(res.device_rules)))


def check_cpuset_available(cpuset: str, available: str) -> None:
    if not available.strip():
        return
    missing = parse_cpuset(cpuset) - parse_cpuset(available)
    if missing:
        raise ContainerError(
            f"invalid cpuset {cpuset!r}: requested CPUs are not available - "
            f"requested {cpuset}, available: {available.strip()}")


def check_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name or name != name.strip():
        raise ContainerError(f"invalid cgroup name {name!r}")
