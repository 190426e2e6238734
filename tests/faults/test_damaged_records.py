"""Records damaged by a crash, a full disk or a hand edit (truncated network record, ports.json,
spec.json; garbled state.json): `ps` and `down` say which file is damaged in one warning line, show
the truth (rebuilt from the host) and still tear everything down; never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.faults.common import STACK, Owned, left_on_host, look, orphan_files, state_dir, volume_file

pytestmark = pytest.mark.root


def _truncate(path: str) -> None:
    text = Path(path).read_text()
    Path(path).write_text(text[: len(text) // 2])


def _container(s, service: str) -> str:
    return json.loads(s("ps", "--format", "json", service).stdout.splitlines()[0])["ID"]


def _full_id(s, short: str) -> str:
    return next(n for n in os.listdir(os.path.join(state_dir(s), "containers")) if n.startswith(short))


def _damage(s, which: str) -> str:
    if which == "network":
        path = os.path.join(state_dir(s), "networks", f"{s.name}_default.json")
    elif which == "ports":
        path = os.path.join(state_dir(s), "networks", "ports.json")
    elif which == "spec":
        path = os.path.join(s.env["COMPOSER_DATA_DIR"], "containers", _full_id(s, _container(s, "db")), "spec.json")
    else:
        path = os.path.join(state_dir(s), "containers", _full_id(s, _container(s, "db")), "state.json")
    if which == "state":
        Path(path).write_text('{"pid": 12, garbled')
    else:
        _truncate(path)
    return path


@pytest.mark.parametrize("which", ["network", "ports", "spec", "state"])
def test_damaged_record_then_ps_and_down(tstack, which):
    s = tstack(STACK)
    s("up", "-d")
    owned = Owned(s)
    look(owned)
    path = _damage(s, which)
    ps = s("ps", "-a")
    assert "Traceback" not in ps.stderr
    if which in ("spec", "state"):
        assert f"damaged record {path}" in ps.stderr and len(ps.stderr.strip().splitlines()) == 1
        db = [line for line in ps.stdout.splitlines() if "-db-" in line]
        assert db and "Up " in db[0] and "Exited" not in db[0], ps.stdout  # still running, and shown so
    down = s("down", "-t", "0")
    assert "Traceback" not in down.stderr
    if which in ("network", "ports"):
        assert f"damaged record {path}" in down.stderr
    assert len([line for line in down.stderr.splitlines() if "damaged record" in line]) <= 1  # said once
    assert left_on_host(owned) == {}
    assert orphan_files(s, owned.ids) == []
    assert volume_file(s) == "run\n"


def test_damaged_network_record_refuses_up_with_one_line(tstack):
    s = tstack(STACK)
    s("up", "-d")
    owned = Owned(s)
    look(owned)
    path = _damage(s, "network")
    up = s("up", "-d", check=False)
    assert up.returncode != 0 and "Traceback" not in up.stderr
    assert f"damaged record {path}" in up.stderr and "composer down" in up.stderr
    s("down", "-t", "0")
    assert left_on_host(owned) == {}


@pytest.mark.parametrize("which", ["spec", "state"])
def test_up_after_damage_converges(tstack, which):
    """A stand-in spec cannot start: `up` recreates its container; a rebuilt state is a running one: kept."""
    s = tstack(STACK)
    s("up", "-d")
    owned = Owned(s)
    look(owned)
    before = _container(s, "db")
    _damage(s, which)
    up = s("up", "-d")
    assert "Traceback" not in up.stderr
    rows = {json.loads(x)["Service"]: json.loads(x) for x in s("ps", "--format", "json").stdout.splitlines()}
    assert rows["db"]["State"] == "running" and rows["web"]["State"] == "running"
    assert (rows["db"]["ID"] != before) == (which == "spec")
    look(owned)
    s("down", "-t", "0")
    assert left_on_host(owned) == {}
    assert orphan_files(s, owned.ids) == []
    assert volume_file(s) in ("run\n", "run\nrun\n")


def test_damaged_spec_and_lost_state_dir_then_down(tstack):
    """Both records of a running container gone bad: its cgroup's label still names its project."""
    import shutil

    s = tstack(STACK)
    s("up", "-d")
    owned = Owned(s)
    look(owned)
    path = _damage(s, "spec")
    shutil.rmtree(os.path.join(state_dir(s), "containers", _full_id(s, path.split("/")[-2][:12])))
    ps = s("ps", "-a")
    assert f"damaged record {path}" in ps.stderr and "its cgroup's label" in ps.stderr
    assert "-db-" in ps.stdout
    s("down", "-t", "0")
    assert left_on_host(owned) == {}
    assert orphan_files(s, owned.ids) == []
