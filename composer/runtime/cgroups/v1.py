"""cgroup v1: one directory per hierarchy, `<own cgroup in that hierarchy>/composer/<name>`.

Hierarchies come from detect() as (controllers, own dir); `cpu` and `cpuacct` may be one joint
hierarchy or two, so everything here looks controllers up, never mount paths."""

from __future__ import annotations

import os
import signal

from composer.errors import ContainerError, HostError
from composer.runtime.cgroups import base as cg
from composer.runtime.cgroups.base import CgroupDriver, CgroupPaths, CgroupStats
from composer.runtime.cgroups.limits import CFS_PERIOD_US, Limits, check_cpuset_available, check_name, validate
from composer.runtime.cgroups.devices import DEFAULT_RULES
from composer.runtime.spec import Resources

# Hierarchies a container joins. cpuset only when asked: it costs two extra reads and writes.
USED = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices", "cpuset")
UNLIMITED = 1 << 62  # memory.limit_in_bytes reads 9223372036854771712 when unlimited

# docker's default device rules (devices.DEFAULT_RULES, v2's too), written after
# "devices.deny a". Without them a container with CAP_MKNOD could open the host's disks.
DEVICE_RULES = DEFAULT_RULES


class V1Driver(CgroupDriver):
    version = 1

    def __init__(self, hierarchies: list[tuple[tuple[str, ...], str]]) -> None:
        # (controllers joined as the hierarchy names them, our own dir in it), only those we use
        self._h = [(",".join(c), own) for c, own in hierarchies if set(c) & set(USED)]

    def own_dir(self, controller: str) -> str | None:
        for ctrls, own in self._h:
            if controller in ctrls.split(","):
                return own
        return None

    def base_dirs(self) -> list[str]:
        return [os.path.join(own, cg.COMPOSER_DIR) for _, own in self._h]

    # ------------------------------------------------------------ create

    def plan(self, name: str, resources: Resources) -> CgroupPaths:
        """The paths create() makes, checked and computed without touching the host (a start sends
        them to the monitor, then creates them while it forks)."""
        check_name(name)
        lim = validate(resources)
        self._require(lim)
        return CgroupPaths(1, tuple((c, os.path.join(own, cg.COMPOSER_DIR, name)) for c, own in self._chosen(lim)))

    def _chosen(self, lim: Limits) -> list[tuple[str, str]]:
        return [(c, own) for c, own in self._h if lim.cpuset or "cpuset" not in c.split(",")]

    def create(self, name: str, resources: Resources, supervisor: int | None = None) -> CgroupPaths:
        check_name(name)
        lim = validate(resources)
        self._require(lim)
        chosen = self._chosen(lim)
        made: list[str] = []
        dirs: list[tuple[str, str]] = []
        try:
            for ctrls, own in chosen:
                base = os.path.join(own, cg.COMPOSER_DIR)
                cg.mkdir_base(base)
                if "cpuset" in ctrls.split(","):
                    _cpuset_inherit(own, base)  # an empty cpuset refuses tasks
                d = os.path.join(base, name)
                cg.mkdir_new(d)
                made.append(d)
                dirs.append((ctrls, d))
            paths = CgroupPaths(1, tuple(dirs))
            self._write_limits(paths, lim)
        except BaseException:
            self._undo(made)
            raise
        return paths

    def _require(self, lim: Limits) -> None:
        needs = {
            "memory": lim.memory or lim.reservation or lim.oom_kill_disable,
            "cpu": lim.cfs_quota_us or lim.shares,
            "cpuset": lim.cpuset,
            "pids": lim.pids,
        }
        for ctrl, needed in needs.items():
            if needed and self.own_dir(ctrl) is None:
                raise HostError(f"the {ctrl} cgroup controller is not mounted: cannot apply the {ctrl} limit")

    def _write_limits(self, p: CgroupPaths, lim: Limits) -> None:
        mem = p.dir_for("memory")
        if mem:
            if lim.memory is not None:
                _set(mem, "memory.limit_in_bytes", lim.memory, f"memory limit {lim.memory}")
                if lim.memory_swap is not None and os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes")):
                    _set(mem, "memory.memsw.limit_in_bytes", lim.memory_swap, f"memory+swap limit {lim.memory_swap}")
            if lim.reservation is not None:
                _set(mem, "memory.soft_limit_in_bytes", lim.reservation, f"memory reservation {lim.reservation}")
            if lim.oom_kill_disable:
                _set(mem, "memory.oom_control", 1, "oom_kill_disable")
        cpu = p.dir_for("cpu")
        if cpu:
            if lim.cfs_quota_us is not None:
                _set(cpu, "cpu.cfs_period_us", CFS_PERIOD_US, f"cpus {lim.cfs_quota_us / CFS_PERIOD_US}")
                _set(cpu, "cpu.cfs_quota_us", lim.cfs_quota_us, f"cpus {lim.cfs_quota_us / CFS_PERIOD_US}")
            if lim.shares is not None:
                _set(cpu, "cpu.shares", lim.shares, f"cpu shares {lim.shares}")
        cpuset = p.dir_for("cpuset")
        if cpuset and lim.cpuset:
            parent = os.path.dirname(cpuset)
            check_cpuset_available(lim.cpuset, cg.read_file(os.path.join(parent, "cpuset.cpus")) or "")
            _set(cpuset, "cpuset.mems", cg.read_file(os.path.join(parent, "cpuset.mems")) or "", "cpuset mems")
            _set(cpuset, "cpuset.cpus", lim.cpuset, f"cpuset {lim.cpuset}")
        pids = p.dir_for("pids")
        if pids and lim.pids is not None:
            _set(pids, "pids.max", lim.pids, f"pids limit {lim.pids}")
        dev = p.dir_for("devices")
        if dev:
            _set(dev, "devices.deny", "a", "device rules")
            for rule in lim.devices:
                _set(dev, "devices.allow", str(rule), f"device rule {rule}")

    # ------------------------------------------------------------ queries and control

    def oom_kill_count(self, paths: CgroupPaths) -> int:
        mem = paths.dir_for("memory")
        return (cg.read_keyed(os.path.join(mem, "memory.oom_control"), "oom_kill") or 0) if mem else 0

    def memory_limit(self, paths: CgroupPaths) -> int | None:
        mem = paths.dir_for("memory")
        value = cg.read_int(os.path.join(mem, "memory.limit_in_bytes")) if mem else None
        return value if value is not None and value < UNLIMITED else None

    def _freezer(self, paths: CgroupPaths) -> str:
        d = paths.dir_for("freezer")
        if d is None:
            raise HostError("the freezer cgroup controller is not mounted: cannot pause containers")
        return os.path.join(d, "freezer.state")

    def freeze(self, paths: CgroupPaths) -> None:
        state = self._freezer(paths)
        try:
            cg.write_file(state, "FROZEN")
        except OSError as e:
            raise ContainerError(f"cannot freeze cgroup {os.path.dirname(state)}: {e.strerror}") from None
        # FREEZING until every task has stopped; writing FROZEN again nudges stragglers along.
        if not cg.wait_until(lambda: cg.read_file(state) == "FROZEN" or _nudge(state), 5.0):
            cg.write_file(state, "THAWED")
            raise ContainerError(f"cannot freeze cgroup {os.path.dirname(state)}: tasks did not stop within 5 s")

    def thaw(self, paths: CgroupPaths) -> None:
        state = self._freezer(paths)
        try:
            cg.write_file(state, "THAWED")
        except FileNotFoundError:
            return
        except OSError as e:
            raise ContainerError(f"cannot thaw cgroup {os.path.dirname(state)}: {e.strerror}") from None

    def is_frozen(self, paths: CgroupPaths) -> bool:
        d = paths.dir_for("freezer")
        return d is not None and cg.read_file(os.path.join(d, "freezer.state")) in ("FROZEN", "FREEZING")

    def kill_all(self, paths: CgroupPaths, sig: int = signal.SIGKILL) -> None:
        # A frozen task only acts on its signal once thawed: signal first, then thaw, so that a
        # paused container dies without running another instruction.
        frozen = self.is_frozen(paths)
        cg.kill_pids(self.pids(paths), sig)
        if frozen:
            self.thaw(paths)
        if sig == signal.SIGKILL:  # catch children forked while we signalled
            cg.wait_until(lambda: not _kill_again(self, paths), 1.0)

    def stats(self, paths: CgroupPaths) -> CgroupStats:
        mem, acct, pids = paths.dir_for("memory"), paths.dir_for("cpuacct"), paths.dir_for("pids")
        blkio = paths.dir_for("blkio")
        io = cg.read_io_bytes(os.path.join(blkio, "blkio.throttle.io_service_bytes_recursive")) if blkio else None
        return CgroupStats(
            memory_bytes=cg.read_int(os.path.join(mem, "memory.usage_in_bytes")) if mem else None,
            memory_limit=self.memory_limit(paths),
            cpu_ns=cg.read_int(os.path.join(acct, "cpuacct.usage")) if acct else None,
            pids_current=cg.read_int(os.path.join(pids, "pids.current")) if pids else None,
            memory_inactive_file=(cg.read_keyed(os.path.join(mem, "memory.stat"), "total_inactive_file") or 0)
            if mem else 0,
            block_read=io[0] if io else None, block_write=io[1] if io else None,
        )


def _set(d: str, fname: str, value: object, what: str) -> None:
    try:
        cg.write_file(os.path.join(d, fname), str(value))
    except OSError as e:
        raise ContainerError(f"invalid {what}: the kernel refused it ({fname}: {e.strerror})") from None


def _cpuset_inherit(own: str, base: str) -> None:
    """A new v1 cpuset dir starts with no cpus and no mems; copy the parent's so it can take tasks."""
    for fname in ("cpuset.mems", "cpuset.cpus"):
        if not cg.read_file(os.path.join(base, fname)):
            _set(base, fname, cg.read_file(os.path.join(own, fname)) or "", f"{fname} of {base}")


def _nudge(state: str) -> bool:
    try:
        cg.write_file(state, "FROZEN")
    except OSError:
        pass
    return False


def _kill_again(drv: V1Driver, paths: CgroupPaths) -> bool:
    left = drv.pids(paths)
    cg.kill_pids(left, signal.SIGKILL)
    return bool(left)
