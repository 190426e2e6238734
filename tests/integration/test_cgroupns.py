"""What a container sees at /sys/fs/cgroup and in /proc/self/cgroup: docker's defaults (v2: a
private cgroup namespace and cgroup2 read-only; v1: the host's namespace and read-only binds of the
container's own cgroups) and `cgroupns` host|private. On the hybrid host the v2 cases also run on
the cgroup2 mount (cgroup_drivers.unified_v2), where no controller files exist but the namespace,
the mount and cgroup.procs behave as on a pure v2 host."""

from __future__ import annotations

import pytest

from composer.errors import ContainerError
from composer.runtime.cgroups import base as cgroups
from composer.runtime.spec import Resources
from tests.integration import cgroup_drivers

pytestmark = pytest.mark.root
MIB = 1024 * 1024


def run(runtime, make_spec, script: str, **kw) -> str:
    spec = make_spec("sh", "-c", script, **kw)
    runtime.run(spec)
    info = runtime.wait(spec.id, timeout=30)
    out = "".join(r.line for r in runtime.logs(spec.id))
    assert info.exit_code == 0, out
    return out


def test_the_container_reads_its_own_memory_limit(runtime, make_spec):
    """The issue's check: `cat /sys/fs/cgroup/memory.max` in a -m 32m container (v1: the memory
    hierarchy's file); the mount is read-only."""
    v2 = cgroups.default_driver().version == 2
    limit = "/sys/fs/cgroup/memory.max" if v2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    procs = "/sys/fs/cgroup/cgroup.procs" if v2 else "/sys/fs/cgroup/memory/cgroup.procs"
    out = run(runtime, make_spec, f"cat {limit}; echo 1 > {procs} || echo REFUSED; cat /proc/self/cgroup",
              resources=Resources(memory=32 * MIB))
    lines = out.splitlines()
    assert lines[0] == "33554432"
    assert "Read-only file system" in out and "REFUSED" in out
    if v2:
        assert "0::/" in lines
    else:  # docker on v1: the host's cgroup namespace
        assert any(":memory:" in line and "/composer/" in line for line in lines), out


@pytest.mark.parametrize("kind", cgroup_drivers.kinds())
@pytest.mark.parametrize("mode", ["", "host", "private"])
def test_cgroupns_modes(runtime, make_spec, monkeypatch, kind, mode):
    drv = cgroup_drivers.make(kind)
    monkeypatch.setattr(cgroups, "_DEFAULT", drv)
    private = mode == "private" or (mode == "" and drv.version == 2)
    listing = "/sys/fs/cgroup/cgroup.procs" if drv.version == 2 else "/sys/fs/cgroup/pids/cgroup.procs"
    out = run(runtime, make_spec, f"cat /proc/self/cgroup; echo ---; cat {listing}; echo ---; "
              "grep ' /sys/fs/cgroup' /proc/self/mountinfo", cgroupns=mode)
    own, members, mounts = out.split("---\n")
    line = next(x for x in own.splitlines() if (x.startswith("0::") if drv.version == 2 else ":pids:" in x))
    path = line.split(":", 2)[2]
    cid = runtime.list(all=True)[0].id
    assert (path == "/") if private else path.endswith(("/composer/" + cid, f"/composer-{cid}.scope/container")), out
    assert "1" in members.split(), out  # the container's PID 1, in its own pid namespace's numbers
    assert len(members.split()) <= 3, out  # sh and cat: nothing from outside the container
    assert all(" ro," in m or " ro " in m for m in mounts.splitlines()), mounts


def test_bad_mode_is_refused(runtime, make_spec):
    with pytest.raises(ContainerError, match="invalid cgroup namespace mode 'shared'"):
        runtime.create(make_spec("true", cgroupns="shared"))


@pytest.mark.parametrize("kind", cgroup_drivers.kinds())
@pytest.mark.parametrize("mode", ["host", "private"])
def test_exec_joins_the_cgroup_namespace(runtime, make_spec, monkeypatch, kind, mode):
    drv = cgroup_drivers.make(kind)
    monkeypatch.setattr(cgroups, "_DEFAULT", drv)
    spec = make_spec("sleep", "30", cgroupns=mode)
    runtime.run(spec)
    at_root = "^0::/$" if drv.version == 2 else ":pids:/$"
    assert runtime.exec(spec.id, ["grep", "-q", at_root, "/proc/self/cgroup"]) == (0 if mode == "private" else 1)
