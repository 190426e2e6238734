"""`composer system doctor` lists what the host offers and what composer left behind; `system prune`
removes exactly what is provably this state dir's (staging dirs, spec-less container dirs, state dirs
without a container, bridges tagged with this scope that have no record) and nothing else."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from composer.project.recovery import BridgeTag, scope_of, tag_bridge
from composer.runtime import Runtime
from composer.runtime.cgroups import base as cgroups
from tests.acceptance.conftest import CLI

pytestmark = pytest.mark.root


def _cli(env, *args):
    proc = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_doctor_and_prune(composer_env):
    env = dict(os.environ, **composer_env)
    rt = Runtime(composer_env["COMPOSER_STATE_DIR"], composer_env["COMPOSER_DATA_DIR"])
    base = os.path.join(rt.data_dir, "containers")
    staging = os.path.join(base, f".new-{'a' * 64}-1")
    specless = os.path.join(base, "b" * 64)
    for d in (os.path.join(staging, "upper"), os.path.join(specless, "work")):
        os.makedirs(d)
    stateless = os.path.join(rt.state_dir, "containers", "c" * 64)
    os.makedirs(stateless)
    elsewhere = os.path.join(rt.state_dir, "containers", "f" * 64)  # used with another data dir: not ours
    os.makedirs(elsewhere)
    with open(os.path.join(elsewhere, "state.json"), "w") as f:
        json.dump({"data_dir": "/var/lib/elsewhere", "created_at": 1.0}, f)
    bridge = f"cmpbt{os.getpid() % 100000:05d}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    foreign = os.path.join(cgroups.default_driver().base_dirs()[0], "d" * 64)
    os.makedirs(foreign, exist_ok=True)
    try:
        tag_bridge(bridge, BridgeTag(scope_of(rt), "lostproj", "lostproj_default"))
        out = _cli(env, "system", "doctor")
        assert out.returncode == 0 and "cgroup version:" in out.stdout and "overlayfs:" in out.stdout
        report = json.loads(_cli(env, "system", "doctor", "--format", "json").stdout)
        found = {x["what"]: x["ours"] for x in report["leftovers"]}
        assert found[staging] is True and found[specless] is True and found[stateless] is True
        assert found[bridge] is True and found[foreign] is False and found[elsewhere] is False
        pruned = _cli(env, "system", "prune")
        assert pruned.returncode == 0, pruned.stdout
        assert "Total: 4 removed" in pruned.stdout
        assert not os.path.exists(staging) and not os.path.exists(specless) and not os.path.exists(stateless)
        assert not os.path.exists(f"/sys/class/net/{bridge}")
        assert os.path.isdir(foreign) and os.path.isdir(elsewhere)  # not provably ours: left alone
        left = {x["what"] for x in json.loads(_cli(env, "system", "doctor", "--format", "json").stdout)["leftovers"]}
        assert foreign in left and not {staging, specless, stateless, bridge} & left
    finally:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        os.rmdir(foreign)
