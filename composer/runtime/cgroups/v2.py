"""cgroup v2: one unified directory per container, `<base>/composer/<name>`.

The "no internal processes" rule decides <base>: a non-root cgroup that holds processes cannot
hand domain controllers (memory, pids, cpu, cpuset) to its children. Our own cgroup always holds
us (and usually the user's shell), so <base> is the nearest ancestor-or-self that holds no
processes, or the root, which is exempt. Below it `composer/` holds no processes either, only
one leaf per container; processes only ever go into leaves."""

from __future__ import annotations

import errno
import os
import signal

from composer.errors import ContainerError, HostError
from composer.runtime.cgroups import base as cg
from composer.runtime.cgroups import devices
from composer.runtime.cgroups.base import CgroupDriver, CgroupPaths, CgroupStats
from composer.runtime.cgroups.limits import CFS_PERIOD_US, Limits, check_cpuset_available, check_name, validate
from composer.runtime.spec import Resources

OPTIONAL = ("memory", "pids")  # enabled when allowed: OOM counting and stats


class V2Driver(CgroupDriver):
    version = 2

    def __init__(self, own_dir: str, root_dir: str) -> None:
        self._own = own_dir
        self._root = root_dir
        self._base: str | None = None
        self._enabled: set[str] | None = None  # known to be on in composer/'s subtree_control

    def base(self) -> str:
        if self._base is None:
            d = self._own
            while d != self._root and len(d) > len(self._root) and cg.read_pids(d):
                d = os.path.dirname(d)
            self._base = d
        return self._base

    def base_dirs(self) -> list[str]:
        return [os.path.join(self.base(), cg.COMPOSER_DIR)]

    def layout(self) -> dict[str, str]:
        return {**super().layout(), "delegation": "none: composer enables the controllers it needs from the root down"}

    # ------------------------------------------------------------ create

    def plan(self, name: str, resources: Resources) -> CgroupPaths:
        """The paths create() makes, checked and computed without touching the host (a start sends
        them to the monitor, then creates them while it forks)."""
        check_name(name)
        validate(resources)
        return CgroupPaths(2, (("", os.path.join(self.base(), cg.COMPOSER_DIR, name)),))

    def create(self, name: str, resources: Resources, supervisor: int | None = None) -> CgroupPaths:
        check_name(name)
        lim = validate(resources)
        composer = os.path.join(self.base(), cg.COMPOSER_DIR)
        cg.mkdir_base(composer)
        self._enable(composer, _required(lim))
        d = os.path.join(composer, name)
        cg.mkdir_new(d)
        paths = CgroupPaths(2, (("", d),))
        try:
            self._write_limits(d, lim)
            # before any process joins: PID 1 is attached (and execs) only after create()
            devices.attach(d, lim.devices)
        except BaseException:
            self._undo([d])
            raise
        return paths

    def _enable(self, composer: str, required: set[str]) -> None:
        """Make every controller we want available in `composer`'s children: each ancestor from the
        root down must list it in cgroup.subtree_control. Optional ones are skipped when refused."""
        if self._enabled is not None and required <= self._enabled:
            return  # the common case after the first container: nothing to read
        wanted = required | set(OPTIONAL)
        on = set((cg.read_file(os.path.join(composer, "cgroup.subtree_control")) or "").split())
        if wanted <= on:
            self._enabled = on
            return
        chain = [composer]
        while chain[-1] != self._root and len(chain[-1]) > len(self._root):
            chain.append(os.path.dirname(chain[-1]))
        chain.reverse()
        for d in chain:
            on = set((cg.read_file(os.path.join(d, "cgroup.subtree_control")) or "").split())
            avail = set((cg.read_file(os.path.join(d, "cgroup.controllers")) or "").split())
            for ctrl in sorted(wanted - on):
                err = None
                if ctrl not in avail:
                    err = "not available there"
                else:
                    try:
                        cg.write_file(os.path.join(d, "cgroup.subtree_control"), "+" + ctrl)
                        continue
                    except OSError as e:
                        err = e.strerror
                        if e.errno == errno.EBUSY:
                            err = "it holds processes (cgroup v2 allows controllers only above leaves)"
                if ctrl in required:
                    raise HostError(
                        f"cannot enable the {ctrl} cgroup controller in {d}: {err}",
                        hint="run composer in a cgroup of its own, e.g. systemd-run --scope -p Delegate=yes")
                wanted.discard(ctrl)
        self._enabled = set((cg.read_file(os.path.join(composer, "cgroup.subtree_control")) or "").split())

    def _write_limits(self, d: str, lim: Limits) -> None:
        if lim.memory is not None:
            _set(d, "memory.max", lim.memory, f"memory limit {lim.memory}")
            if lim.memory_swap is not None and os.path.exists(os.path.join(d, "memory.swap.max")):
                _set(d, "memory.swap.max", swap_max(lim.memory, lim.memory_swap), f"memory+swap limit {lim.memory_swap}")
        if lim.reservation is not None:
            _set(d, "memory.low", lim.reservation, f"memory reservation {lim.reservation}")
        # oom_kill_disable does not exist in v2; docker ignores it there too.
        if lim.cfs_quota_us is not None:
            _set(d, "cpu.max", f"{lim.cfs_quota_us} {CFS_PERIOD_US}", f"cpus {lim.cfs_quota_us / CFS_PERIOD_US}")
        if lim.shares is not None:
            _set(d, "cpu.weight", shares_to_weight(lim.shares), f"cpu shares {lim.shares}")
        if lim.cpuset:
            parent = os.path.dirname(d)
            check_cpuset_available(lim.cpuset, cg.read_file(os.path.join(parent, "cpuset.cpus.effective")) or "")
            _set(d, "cpuset.cpus", lim.cpuset, f"cpuset {lim.cpuset}")
        if lim.pids is not None:
            _set(d, "pids.max", lim.pids, f"pids limit {lim.pids}")

    # ------------------------------------------------------------ queries and control

    @staticmethod
    def _dir(paths: CgroupPaths) -> str:
        return paths.dirs[0][1]

    def oom_kill_count(self, paths: CgroupPaths) -> int:
        return cg.read_keyed(os.path.join(self._dir(paths), "memory.events"), "oom_kill") or 0

    def memory_limit(self, paths: CgroupPaths) -> int | None:
        return cg.read_int(os.path.join(self._dir(paths), "memory.max"))  # "max" reads as None

    def freeze(self, paths: CgroupPaths) -> None:
        d = self._dir(paths)
        try:
            cg.write_file(os.path.join(d, "cgroup.freeze"), "1")
        except OSError as e:
            raise ContainerError(f"cannot freeze cgroup {d}: {e.strerror}") from None
        events = os.path.join(d, "cgroup.events")
        if not cg.wait_until(lambda: cg.read_keyed(events, "frozen") == 1, 5.0):
            cg.write_file(os.path.join(d, "cgroup.freeze"), "0")
            raise ContainerError(f"cannot freeze cgroup {d}: tasks did not stop within 5 s")

    def thaw(self, paths: CgroupPaths) -> None:
        d = self._dir(paths)
        try:
            cg.write_file(os.path.join(d, "cgroup.freeze"), "0")
        except FileNotFoundError:
            return
        except OSError as e:
            raise ContainerError(f"cannot thaw cgroup {d}: {e.strerror}") from None

    def is_frozen(self, paths: CgroupPaths) -> bool:
        return cg.read_file(os.path.join(self._dir(paths), "cgroup.freeze")) == "1"

    def kill_all(self, paths: CgroupPaths, sig: int = signal.SIGKILL) -> None:
        """Signal every task; for SIGKILL, return once they are gone (up to 1 s, as v1) and the
        cgroup is thawed (cgroup.kill kills frozen tasks but leaves cgroup.freeze at 1)."""
        d = self._dir(paths)
        frozen = self.is_frozen(paths)
        killed = False
        if sig == signal.SIGKILL and os.path.exists(os.path.join(d, "cgroup.kill")):
            try:
                cg.write_file(os.path.join(d, "cgroup.kill"), "1")  # atomic, races no fork
                killed = True
            except FileNotFoundError:
                return
            except OSError:
                pass
        if not killed:
            cg.kill_pids(self.pids(paths), sig)
        if frozen:
            self.thaw(paths)
        if sig == signal.SIGKILL:
            cg.wait_until(lambda: not _kill_again(d), 1.0)

    def stats(self, paths: CgroupPaths) -> CgroupStats:
        d = self._dir(paths)
        usec = cg.read_keyed(os.path.join(d, "cpu.stat"), "usage_usec")
        io = cg.read_io_bytes(os.path.join(d, "io.stat"))
        return CgroupStats(
            memory_bytes=cg.read_int(os.path.join(d, "memory.current")),
            memory_limit=self.memory_limit(paths),
            cpu_ns=usec * 1000 if usec is not None else None,
            pids_current=cg.read_int(os.path.join(d, "pids.current")),
            memory_inactive_file=cg.read_keyed(os.path.join(d, "memory.stat"), "inactive_file") or 0,
            block_read=io[0] if io else None, block_write=io[1] if io else None,
        )


def shares_to_weight(shares: int) -> int:
    """docker/runc's conversion of cpu.shares [2, 262144] to cpu.weight [1, 10000]."""
    return 1 + ((shares - 2) * 9999) // 262142


def swap_max(memory: int, memory_swap: int) -> str:
    """docker counts memory+swap; v2's memory.swap.max is the swap alone."""
    return "max" if memory_swap == -1 else str(max(0, memory_swap - memory))


def _required(lim: Limits) -> set[str]:
    need = set()
    if lim.memory is not None or lim.reservation is not None:
        need.add("memory")
    if lim.cfs_quota_us is not None or lim.shares is not None:
        need.add("cpu")
    if lim.cpuset:
        need.add("cpuset")
    if lim.pids is not None:
        need.add("pids")
    return need


def _set(d: str, fname: str, value: object, what: str) -> None:
    try:
        cg.write_file(os.path.join(d, fname), str(value))
    except OSError as e:
        raise ContainerError(f"invalid {what}: the kernel refused it ({fname}: {e.strerror})") from None


def _kill_again(d: str) -> bool:
    left = cg.read_pids(d)
    cg.kill_pids(left, signal.SIGKILL)
    return bool(left)
