"""What `stats` shows of a container, as docker computes it: CPU from the cgroup's CPU time over
wall time (100% = one core busy), memory usage less the reclaimable page cache against the limit
(the host's memory when unlimited), PIDs, network bytes from the container's own network namespace
(/proc/<PID 1>/net/dev, loopback left out) and block I/O bytes from the cgroup (v1 blkio, v2 io.stat).
Works with either cgroup version: the recorded paths say which driver reads them."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from composer.runtime.container import state as st

TYPE_CHECKING = False
if TYPE_CHECKING:
    from composer.runtime.container.containers import ContainerInfo, Runtime


@dataclass(frozen=True)
class Sample:
    """One reading of a container's counters (counters are totals since it started)."""

    id: str
    name: str
    running: bool
    at: float  # time.monotonic() of the reading
    cpu_ns: int = 0
    memory: int = 0
    memory_limit: int = 0
    pids: int = 0
    net_rx: int = 0
    net_tx: int = 0
    block_read: int = 0
    block_write: int = 0

    @property
    def memory_percent(self) -> float:
        return 100.0 * self.memory / self.memory_limit if self.memory_limit else 0.0


def cpu_percent(before: Sample | None, after: Sample) -> float:
    """CPU use between two readings, in percent of one core (docker's CPU %)."""
    if before is None or not after.running or after.at <= before.at or after.cpu_ns < before.cpu_ns:
        return 0.0
    return 100.0 * (after.cpu_ns - before.cpu_ns) / ((after.at - before.at) * 1e9)


def sample(rt: Runtime, info: ContainerInfo) -> Sample:
    """Read the container's counters now; a container that is not running reads as zeros."""
    now = time.monotonic()
    if info.status not in ("running", "paused") or not info.pid:
        return Sample(info.id, info.name, False, now)
    state = st.read(rt.paths(info.id).state)
    cpu = memory = pids = 0
    limit = None
    block = (0, 0)
    if state.get("cgroup"):
        from composer.runtime.cgroups.base import CgroupPaths, driver_for

        paths = CgroupPaths.from_dict(state["cgroup"])
        s = driver_for(paths).stats(paths)
        cpu = s.cpu_ns or 0
        usage = s.memory_bytes or 0
        memory = usage - s.memory_inactive_file if s.memory_inactive_file < usage else usage
        limit = s.memory_limit
        pids = s.pids_current or 0
        block = (s.block_read or 0, s.block_write or 0)
    rx, tx = net_bytes(info.pid)
    return Sample(info.id, info.name, True, now, cpu, memory, limit or host_memory(), pids, rx, tx, *block)


def net_bytes(pid: int) -> tuple[int, int]:
    """(received, sent) bytes of every interface but lo in the netns of pid."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return 0, 0
    for line in lines:
        name, _, counters = line.partition(":")
        fields = counters.split()
        if name.strip() == "lo" or len(fields) < 9:
            continue
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


_HOST_MEMORY: list[int] = []


def host_memory() -> int:
    """MemTotal in bytes (docker's limit for a container without one)."""
    if not _HOST_MEMORY:
        total = 0
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemTotal:"):
                        total = int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
        _HOST_MEMORY.append(total)
    return _HOST_MEMORY[0]


def online_cpus() -> int:
    return len(os.sched_getaffinity(0))


class Meter:
    """Readings of a changing set of containers with each one's CPU % since the previous reading
    (the first reading of a container waits `first` seconds for a second one, as docker's first
    figure already covers a span)."""

    def __init__(self, rt: Runtime, containers, first: float = 0.5) -> None:
        self.rt, self.containers, self.first = rt, containers, first
        self.last: dict[str, Sample] = {}

    def read(self) -> list[tuple[Sample, float]]:
        infos = list(self.containers())
        fresh = [i for i in infos if i.id not in self.last and i.status in ("running", "paused")]
        if fresh:
            for info in fresh:
                self.last[info.id] = sample(self.rt, info)
            time.sleep(self.first)
        out = []
        for info in infos:
            try:
                now = sample(self.rt, info)
            except FileNotFoundError:  # removed meanwhile
                continue
            out.append((now, cpu_percent(self.last.get(info.id), now)))
            self.last[info.id] = now
        return out
