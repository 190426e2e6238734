"""Scale and one-off runs through the CLI, asserted from outside: ps, exit codes, what a container
sees in /etc/hosts, and `down` leaving nothing (one-offs included)."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.acceptance.conftest import Stack, down_all

pytestmark = pytest.mark.root

IDLE = "sh -c \"trap 'exit 0' TERM; sleep 600 & wait\""

SCALE = f"""
services:
  web:
    image: busybox
    command: {IDLE}
  rep:
    image: busybox
    command: {IDLE}
    deploy: {{replicas: 2}}
  fixed:
    image: busybox
    command: {IDLE}
    ports: ["127.0.0.1:18099:80"]
"""

RUN = f"""
services:
  db:
    image: busybox
    command: {IDLE}
  tool:
    image: busybox
    depends_on: [db]
    environment: {{FOO: bar}}
    ports: ["127.0.0.1::8080"]
    networks: {{default: {{aliases: [toolalias]}}}}
    command: echo default
"""


@pytest.fixture
def tstack(composer_env, busybox_base, tmp_path):
    """Factory: tstack(yaml) -> Stack in its own dir; `down -v` at the end, nothing may remain."""
    import os

    made: list[Stack] = []

    def make(text: str) -> Stack:
        d = tmp_path / f"s{len(made)}"
        d.mkdir()
        (d / "compose.yaml").write_text(text)
        env = dict(os.environ, **composer_env)
        env.pop("COMPOSE_PROJECT_NAME", None)
        s = Stack(d, f"lc{uuid.uuid4().hex[:6]}", env)
        made.append(s)
        return s

    yield make
    down_all(made)


def names(s: Stack, *args: str) -> list[str]:
    return [json.loads(line)["Name"] for line in s("ps", "--format", "json", *args).stdout.splitlines()]


def test_scale_up_down_hosts_and_fixed_port(tstack):
    s = tstack(SCALE)
    s("up", "-d", "--scale", "web=3", "web", "rep")
    assert names(s) == [f"{s.name}-rep-1", f"{s.name}-rep-2", f"{s.name}-web-1", f"{s.name}-web-2",
                        f"{s.name}-web-3"]
    # each replica has its own address, and every one is listed under the service name
    hosts = s("exec", "-T", "--index", "1", "web", "cat", "/etc/hosts").stdout
    web_ips = {line.split("\t")[0] for line in hosts.splitlines() if re.search(r"\tweb(\s|$)", line)}
    assert len(web_ips) == 3, hosts
    s("scale", "web=1")  # the highest numbers go first
    assert names(s, "web") == [f"{s.name}-web-1"]
    hosts = s("exec", "-T", "web", "cat", "/etc/hosts").stdout
    assert len([line for line in hosts.splitlines() if re.search(r"\tweb(\s|$)", line)]) == 1, hosts
    s("scale", "web=2")
    assert names(s, "web") == [f"{s.name}-web-1", f"{s.name}-web-2"]
    bad = s("up", "-d", "--scale", "fixed=2", "fixed", check=False)
    assert bad.returncode != 0
    assert "service fixed: host port 18099 is fixed, so it cannot be published by 2 replicas" in bad.stderr
    assert names(s, "fixed") == []


def test_run_one_off(tstack, tmp_path):
    s = tstack(RUN)
    # dependencies first; the command's output and exit code; --rm leaves nothing
    r = s("--progress", "plain", "run", "--rm", "tool", "sh", "-c", "echo $FOO; exit 3", check=False)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "bar\n"
    assert names(s) == [f"{s.name}-db-1"]
    assert s("container", "ls", "-a", "-q").stdout.count("\n") == 1  # only db
    # flags: -e -w -u --entrypoint -v; the one-off stays without --rm and is named and labelled as one
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "note").write_text("from the host\n")
    r = s("run", "-T", "-e", "FOO=baz", "-w", "/tmp", "-u", "65534", "-v", f"{tmp_path / 'shared'}:/mnt:ro",
          "--entrypoint", "sh -c", "tool", "echo $FOO $(pwd) $(id -u); cat /mnt/note; grep -c db /etc/hosts")
    assert r.stdout.splitlines()[:2] == ["baz /tmp 65534", "from the host"], r.stdout
    assert int(r.stdout.splitlines()[2]) >= 1  # the dependency is in its /etc/hosts
    ls = s("container", "ls", "-a").stdout
    run_names = re.findall(rf"{s.name}-tool-run-[0-9a-f]{{12}}", ls)
    assert len(run_names) == 1, ls
    info = json.loads(s("container", "inspect", run_names[0]).stdout)[0]
    labels = info["Config"]["Labels"]
    assert labels["composer.oneoff"] == "True" and labels["composer.service"] == "tool"
    assert info["HostConfig"]["PortBindings"] == {}  # no ports without --service-ports
    assert all("toolalias" not in (n["Aliases"] or ()) for n in info["NetworkSettings"]["Networks"].values())  # no aliases without --use-aliases
    # detached, with the service's ports and aliases; peers see it by name
    name = s("run", "-d", "--service-ports", "--use-aliases", "--name", f"{s.name}-mytool", "tool",
             "sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait").stdout.strip()
    assert name == f"{s.name}-mytool"
    info = json.loads(s("container", "inspect", name).stdout)[0]
    assert list(info["NetworkSettings"]["Ports"]) == ["8080/tcp"]
    assert any("toolalias" in (n["Aliases"] or ()) for n in info["NetworkSettings"]["Networks"].values())
    assert s("exec", "-T", "db", "grep", "-q", name, "/etc/hosts", check=False).returncode == 0
    # ps lists services, not one-offs; down removes the one-offs too
    assert names(s) == [f"{s.name}-db-1"]
    s("down", "-t", "0")
    assert s("container", "ls", "-a", "-q").stdout == ""
    # --no-deps: the dependency stays down
    r = s("run", "--rm", "--no-deps", "tool", "echo", "alone")
    assert r.stdout == "alone\n" and names(s, "-a") == []
    bad = s("run", "--rm", "tool", "/no/such/command", check=False)
    assert bad.returncode == 127 and s("container", "ls", "-a", "-q").stdout.count("\n") == 1
