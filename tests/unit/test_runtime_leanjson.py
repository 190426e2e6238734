"""The monitor's JSON through _json alone must read and write what the json module does."""

from __future__ import annotations

import json

import pytest

from composer.runtime.monitor import launcher, monitor


def test_roundtrip_matches_json():
    doc = {"b": [1, 2.5, None, True, "é\n\t\""], "a": {"x": -3, "y": ""}, "c": 1e300}
    assert monitor.loads(monitor.dumps(doc)) == doc
    assert json.loads(monitor.dumps(doc)) == doc
    assert monitor.dumps(doc) == json.dumps(doc, sort_keys=True)  # the state file format


def test_bad_json():
    with pytest.raises(ValueError):
        monitor.loads("{nope")
    with pytest.raises(TypeError):
        monitor.dumps({"x": object()})


def test_code_version_names_protocol_and_files():
    v = launcher.code_version()
    assert v.startswith(f"{launcher.PROTOCOL}/") and v.count("/") == len(launcher._CODE)
