"""Choosing the cgroup manager (cgroups/detect.py) and what the systemd driver asks systemd for
(cgroups/systemd.py), without a host: the D-Bus side runs in the VM tier
(tests/integration/test_cgroup_delegation.py)."""

from __future__ import annotations

import pytest

from composer.errors import HostError
from composer.runtime.cgroups import systemd
from composer.runtime.cgroups.limits import validate
from composer.runtime.cgroups.v2 import V2Driver
from composer.runtime.spec import Resources
from tests.unit.test_cgroups import kernel, v1_tree, v2_tree  # noqa: F401 (kernel: the fixture)


def test_a_made_up_manager_is_one_line(tmp_path, kernel, monkeypatch):
    monkeypatch.setenv("COMPOSER_CGROUP_MANAGER", "docker")
    with pytest.raises(HostError, match="is not a cgroup manager"):
        v2_tree(tmp_path, kernel)


def test_systemd_forced_on_v1_is_refused(tmp_path, kernel, monkeypatch):
    monkeypatch.setenv("COMPOSER_CGROUP_MANAGER", "systemd")
    with pytest.raises(HostError, match="needs cgroup v2"):
        v1_tree(tmp_path, kernel, joint=False)


def test_cgroupfs_forced_keeps_the_v2_driver(tmp_path, kernel, monkeypatch):
    monkeypatch.setenv("COMPOSER_CGROUP_MANAGER", "cgroupfs")
    drv = v2_tree(tmp_path, kernel)
    assert type(drv) is V2Driver and drv.manager == "cgroupfs"


def test_the_scope_and_its_properties():
    drv = systemd.SystemdDriver("/sys/fs/cgroup")
    paths = drv.plan("abc", Resources(memory=32 << 20))
    assert paths.dirs == (("", "/sys/fs/cgroup/composer.slice/composer-abc.scope/container"),)
    assert drv.base_dirs() == ["/sys/fs/cgroup/composer.slice"]
    props = dict(systemd._properties(validate(Resources(memory=32 << 20, memory_reservation=16 << 20, cpu_shares=512))))
    assert props["Delegate"] == ("b", True) and props["Slice"] == ("s", "composer.slice")
    assert props["TasksMax"] == ("t", 2**64 - 1)  # not systemd's default: pids.max is the container's limit
    assert props["CPUWeight"] == ("t", 20) and props["MemoryLow"] == ("t", 16 << 20)
    assert "MemoryMax" not in props  # the scope holds the monitor too: the caps go to container/
    assert drv.layout()["manager"] == "systemd"
