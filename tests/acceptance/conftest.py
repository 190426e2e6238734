"""Acceptance fixtures: the `composer` CLI run as a user would (a subprocess per command) against the
stacks in tests/acceptance/stacks/, on the session's busybox image, with a cleanup check per project."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests import hostobjects

ROOT = Path(__file__).resolve().parents[2]
STACKS = Path(__file__).resolve().parent / "stacks"
_SCRIPT = ROOT / ".venv" / "bin" / "composer"
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "composer"]


@pytest.fixture(scope="session")
def busybox_base(composer_root) -> None:
    """`busybox:latest` in the session's data dir, made once from Debian's busybox-static."""
    data = composer_root / "data"
    data.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, COMPOSER_DATA_DIR=str(data), COMPOSER_STATE_DIR=str(composer_root / "state" / "bootstrap"))
    proc = subprocess.run([*CLI, "image", "bootstrap", "busybox", "--if-missing"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


class Stack:
    """One project of one stack dir: `stack("up", "-d")` runs `composer -p NAME up -d` there."""

    def __init__(self, directory: Path, name: str, env: dict[str, str]) -> None:
        self.dir, self.name, self.env = directory, name, env

    def __call__(self, *args: str, timeout: float = 60, check: bool = True, **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run([*CLI, "-p", self.name, *args], cwd=self.dir, env=self.env, capture_output=True,
                              text=True, timeout=timeout, **kw)
        if check:
            assert proc.returncode == 0, f"composer {' '.join(args)} -> {proc.returncode}\n{proc.stderr}"
        return proc

    def pids(self) -> set[int]:
        """Container PID 1s and monitors recorded by the runtime for this test's state dir."""
        found = set()
        for path in glob.glob(os.path.join(self.env["COMPOSER_STATE_DIR"], "containers", "*", "state.json")):
            try:
                with open(path) as f:
                    s = json.load(f)
            except (OSError, ValueError):
                continue
            found.update(p for p in (s.get("pid"), s.get("monitor_pid")) if p)
        return found

    def host_objects(self) -> dict[str, set[str]]:
        """What this project put on the host, by the runtime's naming rules: links (bridges and veth
        host ends), cgroups (named by container id), processes. Other tests on the machine may
        create objects at the same time, so the check is by name, not a before/after diff."""
        from composer.runtime.net.ipam import bridge_name, veth_name

        ids, links = set(), set()
        for path in glob.glob(os.path.join(self.env["COMPOSER_DATA_DIR"], "containers", "*", "spec.json")):
            with open(path) as f:
                spec = json.load(f)
            if dict(map(tuple, spec.get("labels", []))).get("composer.project") != self.name:
                continue
            ids.add(spec["id"])
            for net in spec.get("networks", []):
                links |= {bridge_name(net["network"]), veth_name(spec["id"], net["network"])}
        return {"ids": ids, "links": links, "pids": {str(p) for p in self.pids()}}


def leftovers(owned: dict[str, set[str]]) -> dict[str, set[str]]:
    left = {"links": owned["links"] & hostobjects.links(),
            "cgroups": {c for c in hostobjects.cgroups() if any(i in c for i in owned["ids"])},
            "mounts": {m for m in hostobjects.mounts() if any(i in m for i in owned["ids"])},
            "processes": {p for p in owned["pids"] if _alive(int(p))}}
    return {k: v for k, v in left.items() if v}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def stack(composer_env, busybox_base):
    """Factory: stack('three') -> Stack. At the end: `down -v`, then nothing of the project may remain."""
    made: list[Stack] = []

    def make(dirname: str, **extra_env: str) -> Stack:
        env = dict(os.environ, **composer_env, **extra_env)
        env.pop("COMPOSE_PROJECT_NAME", None)
        s = Stack(STACKS / dirname, f"acc{uuid.uuid4().hex[:6]}", env)
        made.append(s)
        return s

    yield make
    down_all(made)


def down_all(made: list[Stack]) -> None:
    """The end of every stack factory: `down -v`, then nothing of any project may remain."""
    problems = {}
    for s in made:
        owned = s.host_objects()
        s("down", "-v", "-t", "0", check=False, timeout=120)
        left = leftovers(owned)
        if left:
            problems[s.name] = left
    assert not problems, f"left on the host after down: {problems}"

