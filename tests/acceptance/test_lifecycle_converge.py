"""Convergence flags through the CLI: an unchanged `up` touches nothing, a changed service alone is
recreated (its peers' /etc/hosts follow), --force-recreate, -V, --no-recreate, --no-deps,
--always-recreate-deps, --no-start, orphans and --remove-orphans."""

from __future__ import annotations

import json
import re

import pytest

from tests.acceptance.test_lifecycle_scale_run import IDLE, names, tstack  # noqa: F401 - fixture

pytestmark = pytest.mark.root

STACK = f"""
services:
  a:
    image: busybox
    command: {IDLE}
    environment: {{V: "${{V:-1}}"}}
    volumes: ["/scratch"]
  b:
    image: busybox
    command: {IDLE}
    depends_on: [a]
"""
EXTRA = f"""
services:
  d:
    image: busybox
    command: {IDLE}
"""


def actions(stderr: str, name: str) -> dict[str, str]:
    """service -> what happened to it (Recreated, Running, Started), from --progress plain lines."""
    out: dict[str, str] = {}
    for m in re.finditer(rf"Container {name}-(\w+)-1  (\w+)", stderr):
        if out.get(m.group(1)) not in ("Recreated", "Created"):
            out[m.group(1)] = m.group(2)
    return out


def address(s, container: str) -> str:
    networks = json.loads(s("container", "inspect", container).stdout)[0]["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"]


def test_convergence_flags(tstack):
    s = tstack(STACK)
    (s.dir / "extra.yaml").write_text(EXTRA)
    up = lambda *a: s("--progress", "plain", "up", "-d", *a).stderr  # noqa: E731
    assert actions(up(), s.name) == {"a": "Created", "b": "Created"}
    assert actions(up(), s.name) == {"a": "Running", "b": "Running"}  # nothing changed, nothing done

    s("exec", "-T", "a", "sh", "-c", "echo kept > /scratch/f")
    s.env["V"] = "2"
    assert actions(up(), s.name) == {"a": "Recreated", "b": "Running"}
    assert s("exec", "-T", "a", "cat", "/scratch/f").stdout == "kept\n"  # anonymous volume kept
    ip = address(s, f"{s.name}-a-1")
    assert re.search(rf"^{re.escape(ip)}\ta\b", s("exec", "-T", "b", "cat", "/etc/hosts").stdout, re.M)

    assert actions(up("--force-recreate", "-V", "a"), s.name) == {"a": "Recreated"}
    assert s("exec", "-T", "a", "cat", "/scratch/f", check=False).returncode != 0  # -V: a new one
    s.env["V"] = "3"
    assert actions(up("--no-recreate"), s.name) == {"a": "Running", "b": "Running"}
    assert actions(up("--no-deps", "--force-recreate", "b"), s.name) == {"b": "Recreated"}
    assert actions(up("--always-recreate-deps", "b"), s.name) == {"a": "Recreated", "b": "Running"}

    # --no-start creates only; a service no longer in the file is an orphan until removed
    s("-f", "compose.yaml", "-f", "extra.yaml", "up", "-d", "--no-start", "d")
    assert [json.loads(x)["State"] for x in s("-f", "compose.yaml", "-f", "extra.yaml", "ps", "-a", "--format",
                                               "json", "d").stdout.splitlines()] == ["created"]
    warn = up()
    assert "found orphan containers (d)" in warn
    up("--remove-orphans")
    assert names(s, "-a") == [f"{s.name}-a-1", f"{s.name}-b-1"]
