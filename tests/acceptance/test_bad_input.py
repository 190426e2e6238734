"""Bad input to `up` changes nothing on the host: every service's spec is checked before the first
network, volume or container is made, and the refusal is one line with a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests import hostobjects
from tests.acceptance.conftest import Stack

pytestmark = pytest.mark.root

GOOD = "  ok:\n    image: busybox\n    command: sleep 60\n"


def _nft() -> str:
    return subprocess.run(["nft", "list", "table", "ip", "composer"], capture_output=True, text=True).stdout


@pytest.mark.parametrize("bad,message", [
    ("mem_limit: 1k", "service bad: invalid memory limit"),
    ('container_name: "x/y"', "service 'bad' container_name: 'x/y' does not match"),
    ("restart: sometimes", "service bad: invalid restart policy 'sometimes'"),
    ("cpus: -1", "service bad: invalid cpus"),
    ("volumes: [\"v:/data\"]", "service bad: invalid mount target"),
    ("volumes: [\"vol:/data\"]", "invalid volume name '../x'"),
    (f"container_name: {'c' * 300}", "use at most 253 characters"),
    ('environment: {A: "x\\0y"}', "service bad: invalid environment variable 'A=x'...: contains a NUL byte"),
])
def test_bad_service_changes_nothing(tmp_path, composer_env, busybox_base, bad, message):
    (tmp_path / "compose.yaml").write_text(
        f"services:\n{GOOD}  bad:\n    image: busybox\n    command: sleep 60\n    {bad}\n"
        "volumes:\n  vol:\n    name: ../x\n")
    s = Stack(tmp_path, f"bad{uuid.uuid4().hex[:6]}", dict(os.environ, **composer_env))
    from composer.runtime.net.ipam import bridge_name

    bridge = bridge_name(f"{s.name}_default")
    try:
        r = s("up", "-d", check=False)
        assert r.returncode != 0
        assert r.stderr.strip().splitlines() == [r.stderr.strip()] and message in r.stderr, r.stderr
        assert "Created" not in r.stdout + r.stderr
        assert bridge not in hostobjects.links()
        assert not os.listdir(os.path.join(composer_env["COMPOSER_STATE_DIR"], "networks")) \
            if os.path.isdir(os.path.join(composer_env["COMPOSER_STATE_DIR"], "networks")) else True
        assert s("ps", "-a", "-q").stdout == ""
        assert bridge not in _nft()
        assert not os.path.exists(os.path.join(composer_env["COMPOSER_DATA_DIR"], "volumes", "x"))
    finally:
        s("down", "-v", "-t", "0", check=False)


@pytest.mark.parametrize("service,bad,message", [
    ("s" * 100, "", "use at most 63 (peers look a service up by its name"),
    ("bad", f"hostname: {'h' * 70}", "at most 64 bytes (the kernel's limit)"),
])
def test_names_the_kernel_cannot_hold(tmp_path, composer_env, busybox_base, service, bad, message):
    (tmp_path / "compose.yaml").write_text(f"services:\n{GOOD}  {service}:\n    image: busybox\n    {bad or 'init: true'}\n")
    s = Stack(tmp_path, f"bad{uuid.uuid4().hex[:6]}", dict(os.environ, **composer_env))
    try:
        r = s("up", "-d", check=False)
        assert r.returncode != 0 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert s("ps", "-a", "-q").stdout == ""
    finally:
        s("down", "-v", "-t", "0", check=False)


def test_run_of_a_bad_service_changes_nothing(tmp_path, composer_env, busybox_base):
    (tmp_path / "compose.yaml").write_text("services:\n  bad:\n    image: busybox\n    mem_limit: 1k\n")
    s = Stack(tmp_path, f"bad{uuid.uuid4().hex[:6]}", dict(os.environ, **composer_env))
    from composer.runtime.net.ipam import bridge_name

    try:
        r = s("run", "--rm", "bad", "true", check=False)
        assert r.returncode != 0 and "service bad: invalid memory limit" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert bridge_name(f"{s.name}_default") not in hostobjects.links()
    finally:
        s("down", "-v", "-t", "0", check=False)
