"""What `composer deploy --swarm` hands to `docker stack deploy`: the resolved stack in the 3.9 format,
with what a swarm cannot do said before anything is deployed (no root, no engine)."""

from __future__ import annotations

import pytest

from composer.deploy.swarm import DeployOptions, plan
from composer.deploy.swarmfile import SwarmOptions, stack_name, swarm_document
from composer.errors import ConfigError, UsageError
from tests.unit.config.helpers import load_text


def doc_of(tmp_path, text, env=None, **opts):
    return swarm_document(load_text(tmp_path, text, environ=env or {}), SwarmOptions(**opts))


def test_interpolated_env_file_and_profiles_are_resolved_here(tmp_path):
    (tmp_path / ".env").write_text("TAG=1.2\n")
    (tmp_path / "app.env").write_text("MODE=prod\n")
    doc, _ = doc_of(tmp_path, """
services:
  app:
    image: "busybox:${TAG}"
    env_file: app.env
  debug:
    image: busybox
    profiles: [debug]
""")
    assert doc["version"] == "3.9"
    assert list(doc["services"]) == ["app"]  # the profile is applied, not passed on
    app = doc["services"]["app"]
    assert app["image"] == "busybox:1.2"
    assert app["environment"] == {"MODE": "prod"}
    assert "env_file" not in app and "profiles" not in app


@pytest.mark.parametrize("restart, policy", [
    ("always", {"condition": "any"}), ("no", {"condition": "none"}),
    ("on-failure:3", {"condition": "on-failure", "max_attempts": 3}),
    ("unless-stopped", {"condition": "any"})])
def test_restart_becomes_the_restart_policy(tmp_path, restart, policy):
    doc, notes = doc_of(tmp_path, f"services:\n  a:\n    image: busybox\n    restart: \"{restart}\"\n")
    svc = doc["services"]["a"]
    assert "restart" not in svc
    assert svc["deploy"]["restart_policy"] == policy
    assert any(n.key == "restart" for n in notes) == (restart == "unless-stopped")


def test_single_host_limits_become_deploy_resources(tmp_path):
    doc, _ = doc_of(tmp_path, """
services:
  a:
    image: busybox
    mem_limit: 64m
    cpus: 0.5
    pids_limit: 100
    mem_reservation: 32m
    scale: 3
""")
    dep = doc["services"]["a"]["deploy"]
    assert dep["replicas"] == 3
    assert dep["resources"] == {"limits": {"memory": 64 * 2**20, "cpus": "0.5", "pids": 100},
                                "reservations": {"memory": 32 * 2**20}}


def test_links_become_network_aliases_of_the_target(tmp_path):
    doc, _ = doc_of(tmp_path, """
services:
  app: {image: busybox}
  lb:
    image: busybox
    links: ["app:backend"]
""")
    assert doc["services"]["app"]["networks"] == {"default": {"aliases": ["backend"]}}
    assert "links" not in doc["services"]["lb"]


def test_what_a_swarm_ignores_is_reported_per_service_and_key(tmp_path):
    doc, notes = doc_of(tmp_path, """
services:
  a:
    image: busybox
    container_name: fixed
    privileged: true
    network_mode: host
    ports: ["127.0.0.1:8080:80"]
    depends_on: [b]
  b: {image: busybox}
""")
    said = {(n.service, n.key) for n in notes}
    assert {("a", "container_name"), ("a", "privileged"), ("a", "network_mode"), ("a", "ports.host_ip"),
            ("a", "depends_on")} <= said
    a = doc["services"]["a"]
    assert not {"container_name", "privileged", "network_mode", "depends_on"} & set(a)
    assert a["ports"] == [{"target": 80, "published": 8080, "protocol": "tcp", "mode": "ingress"}]
    assert str(next(n for n in notes if n.key == "privileged")) == \
        "service a: privileged: swarm services cannot be privileged"


def test_publish_and_endpoint_mode_flags(tmp_path):
    doc, _ = doc_of(tmp_path, "services:\n  a:\n    image: busybox\n    ports: ['8080:80']\n",
                    publish_mode="host", endpoint_mode="dnsrr")
    a = doc["services"]["a"]
    assert a["ports"][0]["mode"] == "host"
    assert a["deploy"]["endpoint_mode"] == "dnsrr"


def test_project_networks_and_volumes_take_the_stack_prefix(tmp_path):
    doc, notes = doc_of(tmp_path, """
name: shop
services:
  a:
    image: busybox
    networks: [back]
    volumes: [data:/data]
networks:
  back: {driver: bridge}
  outside: {external: true, name: corp}
volumes:
  data: {}
""")
    assert doc["networks"]["back"] == {}  # the swarm names it shop_back and makes it an overlay
    assert doc["networks"]["outside"] == {"name": "corp", "external": True}
    assert doc["volumes"]["data"] == {}
    assert ("networks.back.driver" in {n.key for n in notes})


def test_built_service_needs_a_registry(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox\n")
    model = load_text(tmp_path, "services:\n  app:\n    build: ./app\n")
    with pytest.raises(UsageError, match="service app is built here.*--registry"):
        plan(model, DeployOptions())
    doc, _ = plan(model, DeployOptions(registry="127.0.0.1:5000"), images={"app": "r/app@sha256:" + "0" * 64})
    assert doc["services"]["app"]["image"] == "r/app@sha256:" + "0" * 64
    assert "build" not in doc["services"]["app"]


def test_strict_refuses_before_anything_runs(tmp_path):
    model = load_text(tmp_path, "services:\n  a:\n    image: busybox\n    privileged: true\n")
    with pytest.raises(ConfigError, match="service a: privileged"):
        plan(model, DeployOptions(strict=True))


def test_secrets_from_the_environment_are_marked_for_a_file(tmp_path):
    doc, _ = doc_of(tmp_path, """
services:
  a:
    image: busybox
    secrets: [token]
secrets:
  token: {environment: TOKEN}
""", env={"TOKEN": "s3cret"})
    assert doc["services"]["a"]["secrets"] == [{"source": "token"}]
    assert doc["secrets"]["token"]["x-composer-environment"] == "TOKEN"


def test_stack_name_is_what_a_swarm_accepts():
    assert stack_name("My_App") == "my-app"
    assert stack_name("example-busybox") == "example-busybox"
