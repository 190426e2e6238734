"""runtime.records (the one reader of the runtime's records: missing vs damaged), composer.faults (the
test-only seam: nothing unless named, an unknown step refused) and the staging sweep of
runtime.container.inventory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from composer import faults
from composer.errors import ComposerError, DamagedRecordError
from composer.runtime import records
from composer.runtime.container import inventory


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ('{"pid": 1', "not valid JSON"), ('{"a": 1} x', "not valid JSON"), ("[1]", "not a dict"),
    ("\udcff", "not"),
])
def test_damage_is_typed_and_names_the_file(tmp_path, text, reason):
    path = tmp_path / "state.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(DamagedRecordError) as info:
        records.read_dict(str(path))
    assert isinstance(info.value, ComposerError) and info.value.path == str(path)
    assert str(path) in str(info.value) and reason in str(info.value)


def test_missing_is_not_damage(tmp_path):
    with pytest.raises(FileNotFoundError):
        records.read(str(tmp_path / "nope.json"))
    (tmp_path / "ok.json").write_text('{"pid": 3, "ports": []}\n')
    assert records.read_dict(str(tmp_path / "ok.json")) == {"pid": 3, "ports": []}


def test_damage_said_once(tmp_path):
    said = []
    records.on_damage.append(said.append)
    try:
        err = DamagedRecordError(str(tmp_path / "x.json"), "empty")
        records.damaged(err, "rebuilt from the host")
        records.damaged(err, "rebuilt from the host")
    finally:
        records.on_damage.remove(said.append)
    assert said == [f"damaged record {tmp_path / 'x.json'} (empty): rebuilt from the host"]


def test_fault_point_is_inert_unless_named(monkeypatch):
    monkeypatch.delenv(faults.ENV, raising=False)
    faults.point("create.dir")
    faults.point("no.such.step")  # unset: no check at all, one dict lookup
    monkeypatch.setenv(faults.ENV, "down.stopped:kill")
    faults.point("create.dir")
    with pytest.raises(KeyError):
        faults.point("no.such.step")
    monkeypatch.setenv(faults.ENV, "create.dir:raise")
    with pytest.raises(RuntimeError, match="injected failure at create.dir"):
        faults.point("create.dir")


@pytest.mark.parametrize("action, signal", [("kill", -9), ("stop", None)])
def test_fault_point_kills_or_stops_the_process(action, signal):
    code = "from composer import faults; faults.point('up.created'); print('survived')"
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, COMPOSER_FAULT=f"up.created:{action}"),
                            stdout=subprocess.PIPE, text=True)
    if signal is None:
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(f"/proc/{proc.pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "T":
                    break
            time.sleep(0.01)
        proc.kill()
        assert proc.wait(timeout=10) == -9 and proc.stdout.read() == ""
    else:
        assert proc.wait(timeout=10) == signal and proc.stdout.read() == ""


def test_sweep_leaves_a_live_removers_trash(tmp_path):
    dead = tmp_path / f".new-{'a' * 64}-{os.getpid()}"
    live = tmp_path / f".gone-{'b' * 64}-{os.getpid()}"
    gone = tmp_path / f".gone-{'c' * 64}-999999999"
    for d in (dead, live, gone):
        (d / "upper").mkdir(parents=True)
    (tmp_path / ("d" * 64)).mkdir()
    assert sorted(inventory.sweep_staging(str(tmp_path))) == sorted([str(dead), str(gone)])
    assert live.exists() and (tmp_path / ("d" * 64)).exists()
