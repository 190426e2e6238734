"""`composer deploy --swarm`: the busybox example stack, unchanged but for its published port, on a
one-node swarm with a loopback registry, answering through its load balancer; `undeploy` takes it away.
This kernel has no ip_vs, so the swarm's virtual IPs and ingress ports do not work here: the test
publishes in host mode and resolves services by DNS round robin (both flags of `deploy`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.acceptance.conftest import CLI, ROOT
from tests.engines import docker, docker_engine, free_port, registry, swarm  # noqa: F401  (fixtures)

pytestmark = pytest.mark.root


def _get(url: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return resp.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.fixture
def example(tmp_path, composer_env, busybox_base):
    """A copy of examples/busybox on a free port, under its own project name, and the env to run it."""
    work = tmp_path / "busybox"
    shutil.copytree(ROOT / "examples" / "busybox", work)
    port = free_port()
    text = (work / "compose.yaml").read_text().replace("127.0.0.1:8080:80", f"127.0.0.1:{port}:80")
    (work / "compose.yaml").write_text(text)
    env = dict(os.environ, **composer_env)
    env.pop("COMPOSE_PROJECT_NAME", None)
    return work, port, env, f"cmpsw{uuid.uuid4().hex[:6]}"


def composer(work: Path, env: dict, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_example_stack_converges_and_answers_on_a_swarm(example, swarm, registry):  # noqa: F811
    work, port, env, name = example
    try:
        up = composer(work, env, "-p", name, "deploy", "--swarm", "--registry", registry,
                      "--publish-mode", "host", "--endpoint-mode", "dnsrr")
        assert up.returncode == 0, up.stderr
        # what the swarm will not do is said before it deploys, naming service and key
        assert f"service lb: ports.host_ip: a swarm publishes on every address" in up.stderr
        assert f"Stack {name} deployed" in up.stderr
        # the image only composer's store had went to the registry, and the swarm runs it by digest
        images = docker("service", "inspect", f"{name}_app", "--format",
                        "{{.Spec.TaskTemplate.ContainerSpec.Image}}").stdout.strip()
        assert images.startswith(f"{registry}/library/busybox@sha256:"), images
        # lb -> "backend" (a Fig link, now a network alias of app) -> db, counting on the named volume
        first = _get(f"http://127.0.0.1:{port}/cgi-bin/visit")
        second = _get(f"http://127.0.0.1:{port}/cgi-bin/visit")
        assert first.startswith("visit 1") and second.startswith("visit 2"), (first, second)
    finally:
        down = composer(work, env, "-p", name, "undeploy", "--swarm")
        docker("volume", "rm", f"{name}_visits", check=False)
    assert down.returncode == 0, down.stderr
    assert docker("stack", "ls", "--format", "{{.Name}}").stdout.split().count(name) == 0
    left = docker("network", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={name}").stdout.split()
    assert not left


def test_strict_refuses_before_touching_the_swarm(example, swarm):  # noqa: F811
    work, _, env, name = example
    proc = composer(work, env, "-p", name, "deploy", "--swarm", "--strict", "--publish-mode", "host")
    assert proc.returncode != 0
    assert "service lb: ports.host_ip" in proc.stderr and "(--strict)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert name not in docker("stack", "ls", "--format", "{{.Name}}").stdout.split()
