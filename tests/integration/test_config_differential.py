"""Differential test: composer's config loader against docker-compose 1.29.2's `config` (Debian's
`docker-compose` package; it needs no daemon for `config`). Both outputs are reduced to the same
facts (images, commands, environment, ports, volumes, dependencies, ...) and compared.

Where the Compose Specification and 1.29.2 differ, the specification wins and the test says so:
1.29.2 has no `name:`, no `${VAR:+alt}`, no `!reset`/`!override`, no `include`; it lists only explicit
`depends_on` (the spec makes links/volumes_from/network_mode dependencies explicit too, so ours is a
superset); it gives Fig (format 1) services `network_mode: bridge` where we use the default network."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from composer.config import LoadOptions, Project, load_project
from composer.config.shortsyntax import parse_port, parse_volume

DIFF = Path(__file__).resolve().parents[1] / "fixtures" / "config" / "diff"
DC = shutil.which("docker-compose")
ENV = {"FROM_SHELL": "shell-value", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}

if DC is None:
    pytestmark = pytest.mark.skipif(os.environ.get("CI") != "true", reason="docker-compose 1.29.2 not installed")


def docker_compose_config(files: list[str], env: dict) -> dict:
    if DC is None:
        pytest.fail("docker-compose is not installed (it is in DEBS in ./dev)")
    args = [DC]
    for f in files:
        args += ["-f", str(DIFF / f)]
    proc = subprocess.run(args + ["config"], cwd=DIFF, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


def ours(files: list[str], env: dict) -> Project:
    return load_project(LoadOptions(files=tuple(str(DIFF / f) for f in files), environ=env, cwd=str(DIFF)))


def facts_theirs(doc: dict) -> dict:
    out = {}
    for name, s in (doc.get("services") or {}).items():
        ports = set()
        for p in s.get("ports") or []:
            for sp in parse_port(p if isinstance(p, str) else {**p, "published": p.get("published")}):
                ports.add((sp.host_ip, sp.published, sp.target, sp.protocol))
        vols = set()
        for v in s.get("volumes") or []:
            sv = parse_volume(v, str(DIFF))
            vols.add((sv.type, sv.source, sv.target, sv.read_only))
        cmd = s.get("command")
        out[name] = {
            "image": s.get("image"),
            "command": tuple(cmd) if isinstance(cmd, list) else cmd,
            # 1.29.2 re-escapes a literal $ as $$ when it prints
            "environment": {k: (str(v).replace("$$", "$") if v is not None else None)
                            for k, v in (s.get("environment") or {}).items()},
            "labels": dict(s.get("labels") or {}),
            "ports": ports, "volumes": vols,
            "depends_on": set(s.get("depends_on") or ()),
            "links": tuple(s.get("links") or ()), "dns": tuple(s.get("dns") or ()),
            "restart": s.get("restart"),
            "networks": set(s.get("networks") or ()) or {"default"},
        }
    return out


def facts_ours(p: Project) -> dict:
    out = {}
    for name, s in p.services.items():
        out[name] = {
            "image": s.image, "command": s.command, "environment": dict(s.environment), "labels": dict(s.labels),
            "ports": {(x.host_ip, x.published, x.target, x.protocol) for x in s.ports},
            "volumes": {(v.type, v.source, v.target, v.read_only) for v in s.volumes},
            "depends_on": set(s.depends_on),
            "links": tuple(a if a == b else f"{a}:{b}" for a, b in s.links), "dns": s.dns, "restart": s.restart,
            "networks": set(s.networks),
        }
    return out


def compare(files: list[str], fig: bool = False) -> None:
    theirs = facts_theirs(docker_compose_config(files, ENV))
    mine = facts_ours(ours(files, ENV))
    assert set(theirs) == set(mine)
    for name in theirs:
        t, m = theirs[name], mine[name]
        # the spec makes implicit dependencies explicit: ours is a superset of 1.29.2's explicit ones
        assert t.pop("depends_on") <= m.pop("depends_on"), name
        if fig:  # 1.29.2: network_mode bridge for format 1; we attach Fig services to the default network
            t.pop("networks"), m.pop("networks")
        assert t == m, name


@pytest.mark.parametrize("files", [["web.yaml"], ["merge-base.yaml", "merge-over.yaml"]])
def test_same_as_docker_compose(files):
    compare(files)


def test_fig_format_1_same_as_docker_compose():
    compare(["fig.yml"], fig=True)


def test_spec_wins_where_1_29_2_differs():
    """1.29.2 rejects `!reset` (and ignores `name:` and `${VAR:+alt}`); the specification defines them."""
    if DC is None:
        pytest.fail("docker-compose is not installed")
    proc = subprocess.run([DC, "-f", str(DIFF / "spec-only.yaml"), "config"], cwd=DIFF, env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0  # 1.29.2: "could not determine a constructor for the tag '!reset'"
    p = ours(["spec-only.yaml"], {**ENV, "SET": "1"})
    assert p.name == "specname" and p.services["app"].image == "busybox-musl" and p.services["app"].ports == ()
    assert ours(["spec-only.yaml"], ENV).services["app"].image == "busybox"
