"""`config --variables / --no-interpolate / --no-path-resolution / --resolve-image-digests` (the reference's
spellings), through the CLI entry point."""

from __future__ import annotations

import json

import yaml

from composer.cli.main import main
from tests import imagekit as kit
from tests.fakeregistry import FakeRegistry

STACK = """services:
  app:
    image: "busybox:${TAG:-1.36}"
    build: ./ctx
    environment:
      A: ${UNSET_X:-${UNSET_Y:-deep}}
      B: ${REQ:?needed}
      C: ${ALT+alt}
      D: $$NOT
    volumes: ["./data:/data", "../up:/up"]
"""


def run(tmp_path, capsys, *args, text=STACK):
    (tmp_path / "compose.yaml").write_text(text)
    rc = main(["-f", str(tmp_path / "compose.yaml"), "config", *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def test_variables_table_and_json(tmp_path, capsys):
    out = run(tmp_path, capsys, "--variables")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "REQUIRED", "DEFAULT", "VALUE", "ALTERNATE", "VALUE"]
    assert [ln.split()[0] for ln in lines[1:]] == ["ALT", "REQ", "TAG", "UNSET_X", "UNSET_Y"]
    doc = json.loads(run(tmp_path, capsys, "--variables", "--format", "json"))
    assert doc["UNSET_X"] == {"Name": "UNSET_X", "DefaultValue": "${UNSET_Y:-deep}", "PresenceValue": "",
                              "Required": False}
    assert doc["REQ"]["Required"] is True and doc["ALT"]["PresenceValue"] == "alt"
    assert "NOT" not in doc


def test_no_interpolate_keeps_references(tmp_path, capsys):
    doc = yaml.safe_load(run(tmp_path, capsys, "--no-interpolate"))
    assert doc["services"]["app"]["image"] == "busybox:${TAG:-1.36}"
    assert doc["services"]["app"]["environment"]["D"] == "$$NOT"


def test_no_path_resolution_keeps_relative_paths(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REQ", "1")
    doc = json.loads(run(tmp_path, capsys, "--no-path-resolution", "--format", "json"))
    app = doc["services"]["app"]
    assert [v["source"] for v in app["volumes"]] == ["./data", "../up"] and app["build"]["context"] == "./ctx"
    doc = json.loads(run(tmp_path, capsys, "--format", "json"))
    assert doc["services"]["app"]["volumes"][0]["source"] == str(tmp_path / "data")


def test_resolve_image_digests(tmp_path, capsys, monkeypatch):
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "config.json").write_text("{}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    reg = FakeRegistry()
    try:
        img = kit.image([kit.layer({"bin/sh": b"#!x\n"})])
        reg.add("team/app", "1", img)
        text = f"services:\n  app:\n    image: {reg.domain}/team/app:1\n  b:\n    build: .\n"
        doc = json.loads(run(tmp_path, capsys, "--resolve-image-digests", "--format", "json", text=text))
    finally:
        reg.close()
    assert doc["services"]["app"]["image"] == f"{reg.domain}/team/app:1@{img.digest}"
    assert "image" not in doc["services"]["b"]
