"""The cgroup driver on this real host (v1 hybrid here; v2 where CI runs pure v2): limits written,
processes attached, a real OOM kill counted, freeze/thaw, kill_all, remove, devices, nothing left.
On a hybrid host the tests that need no controller also run on a V2Driver rooted at the cgroup2
mount (cgroup_drivers.unified_v2, id "unified-v2"); tests marked `controllers` run on the host's
driver only (there is no controller on that mount to set limits with)."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
import uuid

import pytest

from composer.errors import ContainerError
from composer.runtime.cgroups import base as cg
from composer.runtime.spec import Resources
from tests import hostobjects
from tests.integration import cgroup_drivers

pytestmark = pytest.mark.root
MIB = 1024 * 1024


def pytest_generate_tests(metafunc):
    if "drv" in metafunc.fixturenames:
        needs = metafunc.definition.get_closest_marker("controllers") is not None
        metafunc.parametrize("drv", ["host"] if needs else cgroup_drivers.kinds(), indirect=True)


controllers = pytest.mark.controllers  # needs memory/cpu/pids controllers: the host's driver only


@pytest.fixture
def drv(request):
    return cgroup_drivers.make(request.param)


@pytest.fixture
def box(drv):
    """Creates cgroups and children for a test; kills and removes all of them afterwards."""

    class Box:
        def __init__(self):
            self.paths, self.procs, self.holders = [], [], []

        def create(self, res: Resources, prefix: str = "t"):
            name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            holder = None
            if drv.manager == "systemd":  # a scope needs a process that holds it: where the monitor goes
                holder = subprocess.Popen(["sleep", "3600"])
                self.holders.append((name, holder))
            try:
                p = drv.create(name, res, supervisor=holder.pid if holder else None)
            except BaseException:
                if holder is not None:
                    release(name, holder)
                raise
            self.paths.append(p)
            return p

        def child(self, paths, code: str) -> subprocess.Popen:
            """A python child that waits for one byte on stdin (sent once it is attached)."""
            proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", f"import sys, os\nsys.stdin.read(1)\n{code}"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.procs.append(proc)
            drv.attach(paths, proc.pid)
            return proc

    b = Box()
    yield b
    for proc in b.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    for p in b.paths:
        drv.remove(p)
    for name, holder in b.holders:
        release(name, holder)
    assert mine() == set()


def release(name: str, holder: subprocess.Popen) -> None:
    """The systemd driver's scope: its holder killed, the scope removed (systemd collects the unit)."""
    from composer.runtime.cgroups import base as cgroups

    if holder.poll() is None:
        holder.kill()
    holder.wait()
    drv = cgroups.default_driver()
    for d in drv.find_leftovers(name):
        drv.remove_dir(d)


def cgroup_name(p) -> str:
    """The name a cgroup was created with (systemd driver: composer-<name>.scope/container)."""
    d = p.dirs[0][1]
    if os.path.basename(d) == "container":
        return os.path.basename(os.path.dirname(d)).removeprefix("composer-").removesuffix(".scope")
    return os.path.basename(d)


def mine() -> set[str]:
    """Cgroups this test process made (other engineers' tests may run beside us)."""
    return {d for d in hostobjects.cgroups() if f"-{os.getpid()}-" in d}


def go(proc: subprocess.Popen) -> None:
    proc.stdin.write("x")
    proc.stdin.close()


@controllers
def test_limits_attach_and_proc_cgroup(drv, box):
    p = box.create(Resources(memory=32 * MIB, pids=10, cpus=0.5))
    if drv.version == 1:
        assert cg.read_int(os.path.join(p.dir_for("memory"), "memory.limit_in_bytes")) == 32 * MIB
        assert cg.read_file(os.path.join(p.dir_for("pids"), "pids.max")) == "10"
        assert cg.read_file(os.path.join(p.dir_for("cpu"), "cpu.cfs_quota_us")) == "50000"
        assert cg.read_file(os.path.join(p.dir_for("cpu"), "cpu.cfs_period_us")) == "100000"
    else:
        d = p.dirs[0][1]
        assert cg.read_file(os.path.join(d, "memory.max")) == str(32 * MIB)
        assert cg.read_file(os.path.join(d, "pids.max")) == "10"
        assert cg.read_file(os.path.join(d, "cpu.max")) == "50000 100000"
    assert drv.memory_limit(p) == 32 * MIB
    proc = box.child(p, "import time; time.sleep(30)")
    assert drv.pids(p) == [proc.pid]
    with open(f"/proc/{proc.pid}/cgroup") as f:
        lines = f.read().splitlines()
    name = cgroup_name(p)
    joined = [line for line in lines if line.endswith((f"/composer/{name}", f"/composer-{name}.scope/container"))]
    if drv.version == 1:
        ctrls = {c for line in joined for c in line.split(":")[1].split(",")}
        assert {"memory", "pids", "cpu", "cpuacct", "freezer"} <= ctrls
    else:
        assert joined and joined[0].startswith("0::")
    st = drv.stats(p)
    assert st.pids_current == 1 and st.memory_limit == 32 * MIB and st.cpu_ns is not None


@controllers
def test_real_oom_kill_is_counted(drv, box):
    p = box.create(Resources(memory=32 * MIB))
    assert drv.oom_kill_count(p) == 0
    proc = box.child(p, "b = b'x' * (100 << 20)\nprint('survived')")
    go(proc)
    assert proc.wait(timeout=20) == -signal.SIGKILL
    assert proc.stdout.read() == ""
    assert drv.oom_kill_count(p) >= 1


@controllers
def test_pids_limit_stops_forks(drv, box):
    p = box.create(Resources(pids=10))
    code = ("n = 0\nfor _ in range(20):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
            "    if pid == 0:\n        os.execv('/bin/sleep', ['sleep', '30'])\n    n += 1\nprint(n, flush=True)\n"
            "sys.stdout.close()\nimport time; time.sleep(30)")
    proc = box.child(p, code)
    go(proc)
    assert proc.stdout.readline().strip() == "9"  # 10 tasks: the python itself and 9 sleeps
    assert len(drv.pids(p)) == 10
    drv.kill_all(p)
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert drv.pids(p) == []


def test_freeze_thaw_and_kill_while_frozen(drv, box):
    p = box.create(Resources())
    proc = box.child(p, "import subprocess, time\nsubprocess.Popen(['sleep', '60'])\n"
                        "while True: print(time.monotonic(), flush=True); time.sleep(0.01)")
    go(proc)
    proc.stdout.readline()
    assert len(drv.pids(p)) == 2
    drv.freeze(p)
    assert drv.is_frozen(p)
    drv.thaw(p)
    assert not drv.is_frozen(p)
    proc.stdout.readline()  # it runs again
    drv.freeze(p)
    drv.kill_all(p)  # returns once the tasks are gone, thawed (v2: cgroup.kill leaves freeze at 1)
    assert not drv.is_frozen(p)
    assert drv.pids(p) == []
    assert proc.wait(timeout=5) == -signal.SIGKILL


def test_kill_all_with_sigterm(drv, box):
    p = box.create(Resources())
    proc = box.child(p, "import time; time.sleep(30)")
    go(proc)
    drv.kill_all(p, signal.SIGTERM)
    assert proc.wait(timeout=5) == -signal.SIGTERM


@controllers
def test_remove_kills_live_members(drv, box):
    p = box.create(Resources(memory=32 * MIB))
    proc = box.child(p, "import time; time.sleep(30)")
    drv.remove(p)  # EBUSY first: kills, then removes
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert all(not os.path.exists(d) for _, d in p.dirs)
    drv.remove(p)  # idempotent


@controllers
def test_cpuset_and_its_errors(drv, box):
    p = box.create(Resources(cpuset="0"))
    proc = box.child(p, "print(sorted(os.sched_getaffinity(0)), flush=True)")
    go(proc)
    assert proc.stdout.readline().strip() == "[0]"
    before = mine()
    with pytest.raises(ContainerError, match="requested CPUs are not available"):
        box.create(Resources(cpuset="4095"))
    assert mine() == before


def test_devices_are_confined(drv, box, tmp_path):
    """v1: the devices controller; v2: the BPF device program. A disk and /dev/mem stay shut."""
    os.mknod(tmp_path / "mem", 0o600 | 0o020000, os.makedev(1, 1))  # /dev/mem: a char device
    os.mknod(tmp_path / "null", 0o666 | 0o020000, os.makedev(1, 3))
    os.mknod(tmp_path / "disk", 0o600 | 0o060000, os.makedev(7, 0))  # a loop disk
    p = box.create(Resources())
    code = ("def try_open(path):\n    try:\n        os.close(os.open(path, os.O_RDONLY))\n        return 'ok'\n"
            "    except OSError as e:\n        return e.strerror\n"
            f"print(*(try_open(os.path.join({str(tmp_path)!r}, n)) for n in ('null', 'mem', 'disk')), sep='|', "
            "flush=True)")
    proc = box.child(p, code)
    go(proc)
    assert proc.stdout.readline().strip().split("|") == ["ok", "Operation not permitted", "Operation not permitted"]


@controllers
def test_find_leftovers_and_remove_dir(drv, box):
    p = box.create(Resources(pids=5), prefix="leftover")
    mine_ = {d for _, d in p.dirs}
    if drv.manager == "systemd":  # the leftover is the container's scope
        mine_ = {os.path.dirname(d) for d in mine_}
    found = [d for d in drv.find_leftovers("leftover-") if cgroup_name(p) in d]
    assert sorted(found) == sorted(mine_)
    for d in found:
        drv.remove_dir(d)
    assert all(not os.path.exists(d) for d in found)
    if drv.manager == "systemd":  # the unit went too: a unit left behind makes its directory again
        for d in found:
            state = subprocess.run(["systemctl", "show", "-p", "LoadState", "-p", "ActiveState", os.path.basename(d)],
                                   capture_output=True, text=True).stdout.split()
            assert "LoadState=not-found" in state or "ActiveState=inactive" in state, state


@controllers
def test_create_is_cheap(drv, box):
    times = []
    for _ in range(20):
        name = f"speed-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        holder = subprocess.Popen(["sleep", "3600"]) if drv.manager == "systemd" else None  # see Box.create
        t = time.perf_counter()
        p = drv.create(name, Resources(memory=32 * MIB, pids=10, cpus=0.5), supervisor=holder and holder.pid)
        times.append(time.perf_counter() - t)
        drv.remove(p)
        if holder is not None:
            release(name, holder)
    median_ms = statistics.median(times) * 1000
    print(f"cgroup create median {median_ms:.2f} ms")
    assert median_ms < 10


@controllers
def test_every_resource_field_accepted_by_the_kernel(drv, box):
    res = Resources(memory=64 * MIB, memory_swap=-1, memory_reservation=32 * MIB, cpus=1.5, cpu_shares=512,
                    cpuset="0", pids=5, oom_kill_disable=True)
    p = box.create(res)
    assert drv.memory_limit(p) == 64 * MIB
    if drv.version == 1:
        mem = p.dir_for("memory")
        assert cg.read_int(os.path.join(mem, "memory.soft_limit_in_bytes")) == 32 * MIB
        assert cg.read_keyed(os.path.join(mem, "memory.oom_control"), "oom_kill_disable") == 1
        assert cg.read_file(os.path.join(p.dir_for("cpu"), "cpu.shares")) == "512"
        assert cg.read_file(os.path.join(p.dir_for("cpuset"), "cpuset.cpus")) == "0"
    else:
        d = p.dirs[0][1]
        assert cg.read_file(os.path.join(d, "memory.low")) == str(32 * MIB)
        assert cg.read_file(os.path.join(d, "cpu.weight")) == "20"
        assert cg.read_file(os.path.join(d, "cpuset.cpus")) == "0"
