"""Giving a container a host device (compose `devices`, run --device) and a device rule
(`device_cgroup_rules`): the node appears inside, the policy grants exactly the access asked for,
with each cgroup driver this host has (on the hybrid host's cgroup2 driver, the BPF program).

The device is char 60:7, from the "local/experimental use" majors no driver takes: an open the
policy lets through fails with ENXIO (no such device), one it refuses with EPERM, so the policy's
verdict shows without any real device being touched."""

from __future__ import annotations

import os
import stat

import pytest

from composer.runtime.cgroups import base as cgroups
from composer.runtime.cgroups.devices import host_device
from composer.runtime.spec import Resources
from tests.integration import cgroup_drivers

pytestmark = pytest.mark.root

PASSED, REFUSED = "No such device or address", "Operation not permitted"
OPEN = "try() { sh -c \"$1\" 2>&1 </dev/null | sed 's/.*: //'; }\n"


def run(runtime, make_spec, script: str, **kw) -> list[str]:
    spec = make_spec("sh", "-c", OPEN + script, **kw)
    runtime.run(spec)
    info = runtime.wait(spec.id, timeout=30)
    out = "".join(r.line for r in runtime.logs(spec.id))
    assert info.exit_code == 0, out
    return out.splitlines()


@pytest.fixture
def node(tmp_path) -> str:
    path = str(tmp_path / "exp7")
    os.mknod(path, stat.S_IFCHR | 0o640, os.makedev(60, 7))
    os.chown(path, 0, 5)
    return path


@pytest.mark.parametrize("kind", cgroup_drivers.kinds())
def test_a_device_is_made_and_allowed_as_asked(runtime, make_spec, monkeypatch, kind, node):
    monkeypatch.setattr(cgroups, "_DEFAULT", cgroup_drivers.make(kind))
    dev = host_device(f"{node}:/dev/exp/seven:r")
    out = run(runtime, make_spec, "stat -c '%F %t:%T %a %u:%g' /dev/exp/seven; try 'exec 3</dev/exp/seven'; "
              "try 'exec 3>>/dev/exp/seven'; mknod /tmp/k c 60 7; try 'exec 3</tmp/k'", devices=(dev,))
    assert out[0] == "character special file 3c:7 640 0:5"  # as on the host
    assert out[1:] == [PASSED, REFUSED, PASSED]  # read as asked, no write; the rule is the device's


@pytest.mark.parametrize("kind", cgroup_drivers.kinds())
def test_device_cgroup_rule_allows_a_node_made_inside(runtime, make_spec, monkeypatch, kind):
    monkeypatch.setattr(cgroups, "_DEFAULT", cgroup_drivers.make(kind))
    script = "mknod /tmp/k c 60 7; try 'exec 3</tmp/k'; try 'exec 3>>/tmp/k'"
    assert run(runtime, make_spec, script) == [REFUSED, REFUSED]
    assert run(runtime, make_spec, script, resources=Resources(device_rules=("c 60:* r",))) == [PASSED, REFUSED]


def test_privileged_opens_every_device(runtime, make_spec):
    assert run(runtime, make_spec, "mknod /tmp/k c 60 7; try 'exec 3>>/tmp/k'", privileged=True) == [PASSED]


def test_run_flags(cli, runtime, busybox_image, node):
    script = OPEN + ("try 'exec 3</dev/exp'; try 'exec 3>>/dev/exp'; mknod /tmp/k c 61 0; try 'exec 3</tmp/k'; "
                     "mknod /tmp/j c 62 0; try 'exec 3</tmp/j'")
    r = cli("container", "run", "--rm", "--network", "none", "--device", f"{node}:/dev/exp:r",
            "--device-cgroup-rule", "c 61:* r", busybox_image, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [PASSED, REFUSED, PASSED, REFUSED]
    bad = cli("container", "run", "--rm", "--device", "/etc/hostname", busybox_image, "true")
    assert bad.returncode != 0 and bad.stderr.strip() == (
        "composer: --device: invalid device '/etc/hostname': /etc/hostname is not a device node")
