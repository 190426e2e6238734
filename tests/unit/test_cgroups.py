"""cgroup v1 and v2 drivers against fake /sys/fs/cgroup trees in tmp_path (no root needed).

The fake kernel: mkdir populates the control files a real cgroupfs would show, and write_file is
replaced by a recorder that applies the kernel's semantics where they differ from a plain file
(subtree_control and devices.allow accumulate; cgroup.freeze updates cgroup.events)."""

from __future__ import annotations

import errno
import json
import os
import signal

import pytest

from composer.errors import ContainerError, HostError
from composer.runtime.cgroups import base as cg
from composer.runtime.cgroups import devices as cgroups_devices
from composer.runtime.cgroups import detect as cgdetect
from composer.runtime.cgroups.base import CgroupPaths
from composer.runtime.cgroups.detect import detect
from composer.runtime.cgroups.limits import parse_cpuset, validate
from composer.runtime.cgroups.v1 import DEVICE_RULES, V1Driver
from composer.runtime.cgroups.v2 import V2Driver, shares_to_weight, swap_max
from composer.runtime.spec import Resources

MIB = 1024 * 1024
OWN = "/process_api/abc"

V1_FILES = {
    "memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
               "memory.soft_limit_in_bytes": "9223372036854771712", "memory.usage_in_bytes": "4096",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0"},
    "cpu": {"cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000", "cpu.shares": "1024"},
    "cpuacct": {"cpuacct.usage": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "freezer": {"freezer.state": "THAWED"},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
}
V2_FILES = {"cgroup.subtree_control": "", "cgroup.freeze": "0", "cgroup.events": "populated 0\nfrozen 0",
            "cgroup.kill": "", "memory.max": "max", "memory.swap.max": "max", "memory.low": "0",
            "memory.current": "8192", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0",
            "cpu.max": "max 100000", "cpu.weight": "100", "cpu.stat": "usage_usec 7\nuser_usec 5",
            "cpuset.cpus": "", "cpuset.cpus.effective": "0-3", "pids.max": "max", "pids.current": "0"}


class FakeKernel:
    def __init__(self, root: str) -> None:
        self.root = root
        self.writes: list[tuple[str, str]] = []
        self.fail: dict[str, int] = {}  # file name -> errno to refuse writes with

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    def populate(self, path: str) -> None:
        rel = self.rel(path)
        parts = rel.split("/")
        if parts[:3] != ["sys", "fs", "cgroup"]:
            return
        files = {"cgroup.procs": ""}
        if len(parts) > 3 and parts[3] in ("cpu,cpuacct",) + tuple(V1_FILES):
            for ctrl in parts[3].split(","):
                files.update(V1_FILES[ctrl])
        elif os.path.exists(os.path.join(self.root, "sys/fs/cgroup/cgroup.controllers")):
            files.update(V2_FILES)
            parent_on = _cat(os.path.join(os.path.dirname(path), "cgroup.subtree_control"))
            files["cgroup.controllers"] = parent_on
        for name, text in files.items():
            if not os.path.exists(os.path.join(path, name)):
                _put(os.path.join(path, name), text)

    def rmdir(self, path: str) -> None:
        """cgroupfs rmdir: works with control files inside, EBUSY with members or child cgroups."""
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        entries = list(os.scandir(path))
        if any(e.is_dir() for e in entries) or _cat(os.path.join(path, "cgroup.procs")):
            raise OSError(errno.EBUSY, "Device or resource busy", path)
        for e in entries:
            os.unlink(e.path)
        self.real_rmdir(path)

    def write(self, path: str, value: str) -> None:
        name = os.path.basename(path)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        if name in self.fail:
            raise OSError(self.fail[name], os.strerror(self.fail[name]), path)
        self.writes.append((self.rel(path), value))
        if name == "cgroup.subtree_control":
            on = _cat(path).split()
            avail = _cat(os.path.join(os.path.dirname(path), "cgroup.controllers")).split()
            ctrl = value.lstrip("+")
            if ctrl not in avail:
                raise OSError(errno.ENOENT, "No such file or directory", path)
            _put(path, " ".join(sorted(set(on) | {ctrl})))
            for child in os.scandir(os.path.dirname(path)):  # children see it in cgroup.controllers
                if child.is_dir():
                    _put(os.path.join(child.path, "cgroup.controllers"), _cat(path))
        elif name in ("devices.allow", "devices.deny", "cgroup.procs"):
            with open(path, "a") as f:
                f.write(value + "\n")
        elif name == "cgroup.freeze":
            _put(path, value)
            _put(os.path.join(os.path.dirname(path), "cgroup.events"), f"populated 0\nfrozen {value}")
        else:
            _put(path, value)

    def written(self, prefix: str = "") -> dict[str, str]:
        """Last value written per file whose path starts with prefix (relative to the fake root)."""
        return {p: v for p, v in self.writes if p.startswith(prefix)}


def _put(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _cat(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    k = FakeKernel(str(tmp_path))
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777, *a, **kw):
        real_mkdir(path, mode, *a, **kw)
        k.populate(os.fspath(path))

    monkeypatch.setattr(os, "mkdir", mkdir)
    k.real_rmdir = os.rmdir
    monkeypatch.setattr(os, "rmdir", k.rmdir)
    monkeypatch.setattr(cg, "write_file", k.write)
    k.programs = {}  # v2: cgroup dir (relative) -> the device rules attached (needs root: faked)

    def attach(d, rules):
        if "bpf" in k.fail:
            raise HostError(f"cannot set the device policy of cgroup {d} (BPF_PROG_ATTACH): refused")
        k.programs[k.rel(d)] = tuple(str(r) for r in rules)

    monkeypatch.setattr(cgroups_devices, "attach", attach)
    return k


MI_HEAD = "24 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"


def v1_tree(tmp_path, kernel, joint: bool) -> V1Driver:
    """This host's layout (separate cpu, cpuacct) or the common joint cpu,cpuacct mount."""
    hier = ["cpu,cpuacct"] if joint else ["cpu", "cpuacct"]
    hier += ["cpuset", "memory", "pids", "freezer", "devices"]
    lines, cgl = [MI_HEAD], []
    for i, h in enumerate(hier):
        lines.append(f"{40 + i} 31 0:{40 + i} / /sys/fs/cgroup/{h} rw,relatime - cgroup cgroup rw,{h}\n")
        cgl.append(f"{i + 1}:{h}:{OWN if h == 'memory' else '/'}\n")
        d = tmp_path / "sys/fs/cgroup" / h
        d.mkdir(parents=True)
        kernel.populate(str(d))
    (tmp_path / "sys/fs/cgroup/memory/process_api/abc").mkdir(parents=True)
    kernel.populate(str(tmp_path / "sys/fs/cgroup/memory/process_api"))
    kernel.populate(str(tmp_path / "sys/fs/cgroup/memory/process_api/abc"))
    _put(str(tmp_path / "sys/fs/cgroup/cpuset/cpuset.cpus"), "0-3")
    _put(str(tmp_path / "sys/fs/cgroup/cpuset/cpuset.mems"), "0")
    lines.append("50 31 0:50 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n")
    lines.append("51 31 0:51 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
    cgl += ["9:name=systemd:/\n", "0::/\n"]
    _put(str(tmp_path / "mountinfo"), "".join(lines))
    _put(str(tmp_path / "cgroup"), "".join(cgl))
    drv = detect(str(tmp_path / "mountinfo"), str(tmp_path / "cgroup"), root_prefix=str(tmp_path))
    assert isinstance(drv, V1Driver)
    return drv


def v2_tree(tmp_path, kernel, own="/user.slice/session-1.scope", own_has_procs=True) -> V2Driver:
    root = tmp_path / "sys/fs/cgroup"
    root.mkdir(parents=True)
    _put(str(root / "cgroup.controllers"), "cpuset cpu io memory pids")
    _put(str(root / "cgroup.subtree_control"), "")
    _put(str(root / "cgroup.procs"), "1\n")
    d = str(root)
    for part in filter(None, own.split("/")):
        d = os.path.join(d, part)
        os.mkdir(d)
    if own_has_procs:
        _put(os.path.join(d, "cgroup.procs"), "4242\n")
    _put(str(tmp_path / "mountinfo"), MI_HEAD.replace("tmpfs tmpfs rw,mode=755", "cgroup2 cgroup2 rw,nsdelegate"))
    _put(str(tmp_path / "cgroup"), f"0::{own}\n")
    drv = detect(str(tmp_path / "mountinfo"), str(tmp_path / "cgroup"), root_prefix=str(tmp_path))
    assert isinstance(drv, V2Driver)
    return drv


# ---------------------------------------------------------------- detection


def test_detect_v1_separate_cpu_and_cpuacct(tmp_path, kernel):
    drv = v1_tree(tmp_path, kernel, joint=False)
    assert drv.version == 1
    assert drv.own_dir("memory") == str(tmp_path / "sys/fs/cgroup/memory/process_api/abc")
    assert drv.own_dir("cpu") == str(tmp_path / "sys/fs/cgroup/cpu")
    assert drv.own_dir("cpuacct") == str(tmp_path / "sys/fs/cgroup/cpuacct")
    assert drv.own_dir("blkio") is None


def test_detect_v1_joint_cpu_cpuacct(tmp_path, kernel):
    drv = v1_tree(tmp_path, kernel, joint=True)
    assert drv.own_dir("cpu") == drv.own_dir("cpuacct") == str(tmp_path / "sys/fs/cgroup/cpu,cpuacct")
    p = drv.create("c1", Resources(cpus=1.5, cpu_shares=512))
    joint = str(tmp_path / "sys/fs/cgroup/cpu,cpuacct/composer/c1")
    assert p.dir_for("cpu") == p.dir_for("cpuacct") == joint
    assert [c for c, _ in p.dirs].count("cpu,cpuacct") == 1
    w = kernel.written("sys/fs/cgroup/cpu,cpuacct/composer/c1/")
    assert w["sys/fs/cgroup/cpu,cpuacct/composer/c1/cpu.cfs_quota_us"] == "150000"
    assert w["sys/fs/cgroup/cpu,cpuacct/composer/c1/cpu.cfs_period_us"] == "100000"
    assert w["sys/fs/cgroup/cpu,cpuacct/composer/c1/cpu.shares"] == "512"


def test_detect_pure_v2(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel)
    assert drv.version == 2
    # our own scope holds processes, so composer/ goes one level up
    assert drv.base_dirs() == [str(tmp_path / "sys/fs/cgroup/user.slice/composer")]


def test_detect_v2_when_only_cgroup2_has_controllers(tmp_path, kernel):
    (tmp_path / "mi").write_text(MI_HEAD + "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
    (tmp_path / "cg").write_text("0::/x\n")
    assert detect(str(tmp_path / "mi"), str(tmp_path / "cg"), str(tmp_path)).version == 2


def test_detect_cgroup_namespace_mount_root(tmp_path):
    # A bind of /docker/abc as the mount: /proc/self/cgroup paths are relative to the hierarchy root.
    m = cgdetect.Mount("/docker/abc", "/sys/fs/cgroup/memory", "cgroup", frozenset({"rw", "memory"}))
    assert cgdetect.mounted_dir(m, "/docker/abc/sub", "") == "/sys/fs/cgroup/memory/sub"
    assert cgdetect.mounted_dir(m, "/docker/abc", "/r") == "/r/sys/fs/cgroup/memory"


def test_detect_no_cgroups(tmp_path):
    (tmp_path / "mi").write_text(MI_HEAD)
    (tmp_path / "cg").write_text("")
    with pytest.raises(HostError):
        detect(str(tmp_path / "mi"), str(tmp_path / "cg"))


def test_mountinfo_escapes():
    text = r"41 31 0:38 / /sys/fs/cgroup/my\040dir rw - cgroup cgroup rw,pids" + "\n"
    assert cgdetect.parse_mountinfo(text)[0].mountpoint == "/sys/fs/cgroup/my dir"


# ---------------------------------------------------------------- v1 writes


def test_v1_writes_every_resource(tmp_path, kernel):
    drv = v1_tree(tmp_path, kernel, joint=False)
    res = Resources(memory=32 * MIB, memory_reservation=16 * MIB, oom_kill_disable=True, cpus=0.5,
                    cpu_shares=2048, cpuset="1-2", pids=10)
    p = drv.create("web", res)
    mem = f"sys/fs/cgroup/memory{OWN}/composer/web/"
    w = kernel.written()
    assert w[mem + "memory.limit_in_bytes"] == str(32 * MIB)
    assert w[mem + "memory.memsw.limit_in_bytes"] == str(64 * MIB)  # docker: swap = memory by default
    assert w[mem + "memory.soft_limit_in_bytes"] == str(16 * MIB)
    assert w[mem + "memory.oom_control"] == "1"
    assert w["sys/fs/cgroup/cpu/composer/web/cpu.cfs_quota_us"] == "50000"
    assert w["sys/fs/cgroup/cpu/composer/web/cpu.cfs_period_us"] == "100000"
    assert w["sys/fs/cgroup/cpu/composer/web/cpu.shares"] == "2048"
    # cpuset: the composer dir inherits the parent's cpus and mems first, mems before cpus
    assert w["sys/fs/cgroup/cpuset/composer/cpuset.cpus"] == "0-3"
    assert w["sys/fs/cgroup/cpuset/composer/cpuset.mems"] == "0"
    cs = [(f, v) for f, v in kernel.writes if f.startswith("sys/fs/cgroup/cpuset/composer/web/")]
    assert cs == [("sys/fs/cgroup/cpuset/composer/web/cpuset.mems", "0"),
                  ("sys/fs/cgroup/cpuset/composer/web/cpuset.cpus", "1-2")]
    assert w["sys/fs/cgroup/pids/composer/web/pids.max"] == "10"
    assert _cat(str(tmp_path / "sys/fs/cgroup/devices/composer/web/devices.allow")).splitlines() == list(DEVICE_RULES)
    assert w["sys/fs/cgroup/devices/composer/web/devices.deny"] == "a"
    assert {c for c, _ in p.dirs} == {"memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices"}
    assert all(os.path.isdir(d) for _, d in p.dirs)


def test_v1_minimal_writes_nothing_but_devices(tmp_path, kernel):
    drv = v1_tree(tmp_path, kernel, joint=False)
    p = drv.create("bare", Resources())
    assert {f.split("/")[-1] for f, _ in kernel.writes} == {"devices.deny", "devices.allow"}
    assert "cpuset" not in {c for c, _ in p.dirs}  # cpuset only joined when asked for


def test_v1_swap_variants(tmp_path, kernel):
    drv = v1_tree(tmp_path, kernel, joint=False)
    mem = f"sys/fs/cgroup/memory{OWN}/composer/"
    drv.create("a", Resources(memory=32 * MIB, memory_swap=-1))
    drv.create("b", Resources(memory=32 * MIB, memory_swap=48 * MIB))
    w = kernel.written()
    assert w[mem + "a/memory.memsw.limit_in_bytes"] == "-1"
    assert w[mem + "b/memory.memsw.limit_in_bytes"] == str(48 * MIB)


def test_v1_without_swap_accounting(tmp_path, kernel):
    drv = v1_tree(tmp_path, kernel, joint=False)
    V1_FILES["memory"].pop("memory.memsw.limit_in_bytes")
    try:
        drv.create("a", Resources(memory=32 * MIB))
    finally:
        V1_FILES["memory"]["memory.memsw.limit_in_bytes"] = "9223372036854771712"
    assert not any("memsw" in f for f, _ in kernel.writes)


def test_v1_attach_writes_every_hierarchy(tmp_path, kernel):
    drv = v1_tree(tmp_path, kernel, joint=False)
    p = drv.create("a", Resources(memory=32 * MIB))
    drv.attach(p, 1234)
    procs = [f for f, v in kernel.writes if f.endswith("cgroup.procs") and v == "1234"]
    assert len(procs) == len(p.dirs) == 6
    assert drv.pids(p) == [1234]


def test_v1_queries(tmp_path, kernel):
    drv = v1_tree(tmp_path, kernel, joint=False)
    p = drv.create("a", Resources())
    assert drv.memory_limit(p) is None and drv.oom_kill_count(p) == 0
    mem = p.dir_for("memory")
    _put(f"{mem}/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    _put(f"{mem}/memory.limit_in_bytes", str(32 * MIB))
    _put(f"{p.dir_for('cpuacct')}/cpuacct.usage", "123456789")
    _put(f"{p.dir_for('pids')}/pids.current", "2")
    assert drv.oom_kill_count(p) == 3
    assert drv.stats(p) == cg.CgroupStats(4096, 32 * MIB, 123456789, 2)


def test_v1_freeze_thaw(tmp_path, kernel):
    drv = v1_tree(tmp_path, kernel, joint=False)
    p = drv.create("a", Resources())
    drv.freeze(p)  # the fake shows FROZEN at once
    assert drv.is_frozen(p)
    drv.thaw(p)
    assert not drv.is_frozen(p)
    assert ("sys/fs/cgroup/freezer/composer/a/freezer.state", "FROZEN") in kernel.writes


# ---------------------------------------------------------------- v2 writes


def test_v2_writes_every_resource(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel)
    res = Resources(memory=32 * MIB, memory_swap=48 * MIB, memory_reservation=8 * MIB, cpus=0.5,
                    cpu_shares=1024, cpuset="1-2", pids=10, oom_kill_disable=True)
    p = drv.create("web", res)
    d = "sys/fs/cgroup/user.slice/composer/web/"
    assert p == CgroupPaths(2, (("", str(tmp_path / d.rstrip("/"))),))
    w = kernel.written(d)
    assert w == {d + "memory.max": str(32 * MIB), d + "memory.swap.max": str(16 * MIB),
                 d + "memory.low": str(8 * MIB), d + "cpu.max": "50000 100000", d + "cpu.weight": "39",
                 d + "cpuset.cpus": "1-2", d + "pids.max": "10"}
    # controllers enabled down the chain, in subtree_control of every ancestor of the leaf
    for anc in ("sys/fs/cgroup", "sys/fs/cgroup/user.slice", "sys/fs/cgroup/user.slice/composer"):
        assert set(_cat(str(tmp_path / anc / "cgroup.subtree_control")).split()) == {"cpu", "cpuset", "memory", "pids"}


def test_v2_attaches_the_device_policy_and_undoes_on_refusal(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel)
    drv.create("a", Resources(device_rules=("c 189:* rwm",)))
    assert kernel.programs == {"sys/fs/cgroup/user.slice/composer/a": cgroups_devices.DEFAULT_RULES + ("c 189:* rwm",)}
    kernel.fail["bpf"] = 1
    with pytest.raises(HostError, match="device policy"):
        drv.create("b", Resources())
    assert not os.path.exists(tmp_path / "sys/fs/cgroup/user.slice/composer/b")


def test_v2_enables_only_what_is_needed_and_reads_once(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel)
    drv.create("a", Resources())
    assert set(_cat(str(tmp_path / "sys/fs/cgroup/user.slice/composer/cgroup.subtree_control")).split()) == {
        "memory", "pids"}
    n = len(kernel.writes)
    drv.create("b", Resources(memory=32 * MIB))
    assert [f for f, _ in kernel.writes[n:]] == ["sys/fs/cgroup/user.slice/composer/b/memory.max",
                                                  "sys/fs/cgroup/user.slice/composer/b/memory.swap.max"]


def test_v2_no_internal_processes(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel)
    p = drv.create("a", Resources(pids=5))
    drv.attach(p, 777)
    procs = [(f, v) for f, v in kernel.writes if f.endswith("cgroup.procs")]
    assert procs == [("sys/fs/cgroup/user.slice/composer/a/cgroup.procs", "777")]
    assert _cat(str(tmp_path / "sys/fs/cgroup/user.slice/composer/cgroup.procs")) == ""


def test_v2_own_cgroup_without_processes_is_base(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel, own="/system.slice/composer.service", own_has_procs=False)
    assert drv.base_dirs() == [str(tmp_path / "sys/fs/cgroup/system.slice/composer.service/composer")]


def test_v2_root_is_base(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel, own="/", own_has_procs=False)
    drv.create("a", Resources(memory=32 * MIB))
    assert ("sys/fs/cgroup/cgroup.subtree_control", "+memory") in kernel.writes
    assert os.path.isdir(tmp_path / "sys/fs/cgroup/composer/a")


def test_v2_required_controller_missing(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel)
    _put(str(tmp_path / "sys/fs/cgroup/cgroup.controllers"), "memory pids")
    with pytest.raises(HostError, match="cpu cgroup controller"):
        drv.create("a", Resources(cpus=1))
    assert drv.find_leftovers() == []
    drv.create("b", Resources(memory=32 * MIB))  # optional/other controllers still fine


def test_v2_swap_and_weight_conversions():
    assert swap_max(32 * MIB, -1) == "max"
    assert swap_max(32 * MIB, 32 * MIB) == "0"
    assert swap_max(32 * MIB, 64 * MIB) == str(32 * MIB)
    assert (shares_to_weight(2), shares_to_weight(1024), shares_to_weight(262144)) == (1, 39, 10000)


def test_v2_default_swap_equals_memory(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel)
    drv.create("a", Resources(memory=32 * MIB))
    assert kernel.written()["sys/fs/cgroup/user.slice/composer/a/memory.swap.max"] == str(32 * MIB)


def test_v2_queries_freeze_kill(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel)
    p = drv.create("a", Resources())
    d = p.dirs[0][1]
    assert drv.memory_limit(p) is None
    _put(f"{d}/memory.max", str(32 * MIB))
    _put(f"{d}/memory.events", "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n")
    assert drv.memory_limit(p) == 32 * MIB and drv.oom_kill_count(p) == 2
    assert drv.stats(p) == cg.CgroupStats(8192, 32 * MIB, 7000, 0)
    drv.freeze(p)
    assert drv.is_frozen(p)
    drv.thaw(p)
    assert not drv.is_frozen(p)
    drv.kill_all(p)
    assert kernel.writes[-1] == ("sys/fs/cgroup/user.slice/composer/a/cgroup.kill", "1")


# ---------------------------------------------------------------- errors and cleanup


@pytest.mark.parametrize("res, message", [
    (Resources(memory=1024), "invalid memory limit 1024: minimum"),
    (Resources(memory=-5), "invalid memory limit -5"),
    (Resources(memory_swap=64 * MIB), "set a memory limit too"),
    (Resources(memory=64 * MIB, memory_swap=32 * MIB), "must be at least the memory limit"),
    (Resources(memory=32 * MIB, memory_reservation=64 * MIB), "invalid memory reservation"),
    (Resources(cpus=99.0), "invalid cpus 99.0"),
    (Resources(cpus=-1.0), "invalid cpus -1.0"),
    (Resources(cpu_shares=-3), "invalid cpu shares -3"),
    (Resources(cpuset="0-x"), "invalid cpuset '0-x'"),
    (Resources(cpuset="3-1"), "invalid cpuset '3-1'"),
    (Resources(cpuset="7"), "requested CPUs are not available"),
])
@pytest.mark.parametrize("version", [1, 2])
def test_bad_values_leave_nothing(tmp_path, kernel, res, message, version):
    drv = v1_tree(tmp_path, kernel, joint=False) if version == 1 else v2_tree(tmp_path, kernel)
    with pytest.raises(ContainerError, match=message.replace("(", r"\(")):
        drv.create("bad", res)
    assert drv.find_leftovers() == []


@pytest.mark.parametrize("version", [1, 2])
def test_failure_half_way_removes_what_was_made(tmp_path, kernel, version):
    drv = v1_tree(tmp_path, kernel, joint=False) if version == 1 else v2_tree(tmp_path, kernel)
    kernel.fail["pids.max"] = errno.EINVAL  # the last limit written: every dir exists by then
    with pytest.raises(ContainerError, match="invalid pids limit 10: the kernel refused it"):
        drv.create("half", Resources(memory=32 * MIB, cpus=1, pids=10))
    assert drv.find_leftovers() == []
    assert any(f.endswith("memory.max") or f.endswith("memory.limit_in_bytes") for f, _ in kernel.writes)


def test_v1_mkdir_failure_in_a_later_hierarchy(tmp_path, kernel, monkeypatch):
    drv = v1_tree(tmp_path, kernel, joint=False)
    real = os.mkdir

    def mkdir(path, *a, **kw):
        if "/cpu/composer/x" in os.fspath(path):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real(path, *a, **kw)

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(ContainerError, match="No space left"):
        drv.create("x", Resources())
    assert drv.find_leftovers() == []


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", " a"])
def test_bad_names(tmp_path, kernel, name):
    drv = v1_tree(tmp_path, kernel, joint=False)
    with pytest.raises(ContainerError, match="invalid cgroup name"):
        drv.create(name, Resources())


def test_name_in_use(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel)
    drv.create("a", Resources())
    with pytest.raises(ContainerError, match="already exists"):
        drv.create("a", Resources())
    assert len(drv.find_leftovers()) == 1  # the first one is untouched


def test_permission_denied_is_host_error(tmp_path, kernel, monkeypatch):
    drv = v1_tree(tmp_path, kernel, joint=False)

    def mkdir(path, *a, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(HostError, match="needs root"):
        drv.create("a", Resources())


# ---------------------------------------------------------------- paths, leftovers, removal


def test_paths_round_trip_json(tmp_path, kernel):
    drv = v1_tree(tmp_path, kernel, joint=True)
    p = drv.create("a", Resources(memory=32 * MIB))
    back = CgroupPaths.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p and back.dir_for("cpuacct") == p.dir_for("cpu")


def test_find_leftovers_and_remove(tmp_path, kernel):
    drv = v1_tree(tmp_path, kernel, joint=False)
    a = drv.create("proj-a", Resources())
    drv.create("other", Resources())
    assert len(drv.find_leftovers()) == 12
    left = drv.find_leftovers("proj-")
    assert sorted(left) == sorted(d for _, d in a.dirs)
    for d in left:
        drv.remove_dir(d)
    assert [os.path.basename(d) for d in drv.find_leftovers()] == ["other"] * 6
    drv.remove(a)  # idempotent: already gone


def test_remove_kills_members_on_ebusy(tmp_path, kernel, monkeypatch):
    drv = v2_tree(tmp_path, kernel)
    p = drv.create("a", Resources())
    calls = []
    monkeypatch.setattr(os, "rmdir", lambda path: calls.append(path) or (
        _raise(errno.EBUSY) if len(calls) == 1 else None))
    drv.remove(p)
    assert len(calls) == 2
    assert ("sys/fs/cgroup/user.slice/composer/a/cgroup.kill", "1") in kernel.writes


def _raise(code):
    raise OSError(code, os.strerror(code))


def test_kill_all_v1_signals_then_thaws(tmp_path, kernel, monkeypatch):
    drv = v1_tree(tmp_path, kernel, joint=False)
    p = drv.create("a", Resources())
    drv.freeze(p)
    _put(f"{p.dir_for('pids')}/cgroup.procs", "111\n222\n")
    sent = []

    def kill(pid, sig):
        sent.append((pid, sig, drv.is_frozen(p)))
        for _, d in p.dirs:
            _put(f"{d}/cgroup.procs", "")

    monkeypatch.setattr(os, "kill", kill)
    drv.kill_all(p, signal.SIGTERM)
    assert sent == [(111, signal.SIGTERM, True), (222, signal.SIGTERM, True)]  # all sent while frozen
    assert not drv.is_frozen(p)


def test_validate_docker_defaults():
    lim = validate(Resources(memory=32 * MIB, cpus=0.004 + 0.5, pids=0, cpu_shares=1))
    assert lim.memory_swap == 64 * MIB and lim.pids is None and lim.shares == 2
    assert lim.cfs_quota_us == 50400
    assert validate(Resources(cpus=0.01)).cfs_quota_us == 1000
    assert parse_cpuset("0-2,5") == {0, 1, 2, 5}


def test_driver_for_paths_needs_no_mountinfo(tmp_path, kernel):
    drv = v2_tree(tmp_path, kernel)
    p = drv.create("a", Resources(memory=32 * MIB))
    _put(f"{p.dirs[0][1]}/memory.max", str(32 * MIB))
    other = cg.driver_for(CgroupPaths.from_dict(p.to_dict()))
    assert other.version == 2 and other.memory_limit(p) == 32 * MIB and other.oom_kill_count(p) == 0
    other.remove(p)
    assert drv.find_leftovers() == []
    assert cg.driver_for(CgroupPaths(1, ())).version == 1


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("res", [Resources(), Resources(memory=32 * MIB, cpus=0.5, cpuset="1-2", pids=10)])
def test_plan_names_what_create_makes_and_touches_nothing(tmp_path, kernel, version, res):
    """A start sends the planned paths to the monitor, then creates them while it forks."""
    drv = v1_tree(tmp_path, kernel, joint=False) if version == 1 else v2_tree(tmp_path, kernel)
    planned = drv.plan("web", res)
    assert drv.find_leftovers() == [] and not kernel.writes
    assert drv.create("web", res) == planned


@pytest.mark.parametrize("version", [1, 2])
def test_plan_checks_values_first(tmp_path, kernel, version):
    drv = v1_tree(tmp_path, kernel, joint=False) if version == 1 else v2_tree(tmp_path, kernel)
    with pytest.raises(ContainerError, match="invalid memory limit 1024"):
        drv.plan("bad", Resources(memory=1024))
