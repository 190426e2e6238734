"""A 3-service stack through ProjectRunner on the real host: up, name resolution (service,
alias, link alias), link variables, published port, named volume seeded from the image and
surviving down, recreate moving an address that peers' /etc/hosts follow, and a down that leaves
no host object behind."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest

from composer.config import LoadOptions, load_project
from composer.project.project import DownOptions, ProjectRunner, UpOptions
from composer.runtime import Runtime
from tests import hostobjects

pytestmark = pytest.mark.root

SUBNET = "10.89.251"
STACK = """
name: {name}
services:
  db:
    image: busybox
    init: true
    command: httpd -f -p 5000 -h /var/www
    environment: {{DB_MODE: primary}}
    expose: ["5000"]
    volumes: ["data:/var/www"]
    networks:
      back: {{aliases: [database], ipv4_address: "{subnet}.{db_ip}"}}
  app:
    image: busybox
    init: true
    command: httpd -f -p 8000 -h /var/www
    links: ["db:backend"]
    networks: [back, front]
  lb:
    image: busybox
    init: true
    command: httpd -f -p 80 -h /var/www
    ports: ["127.0.0.1::80"]
    networks: [front]
    depends_on: [app]
networks:
  back: {{ipam: {{config: [{{subnet: "{subnet}.0/24"}}]}}}}
  front: {{}}
volumes:
  data: {{}}
"""


@pytest.fixture(scope="session")
def busybox_in_store(composer_root):
    from composer.images.bootstrap import bootstrap_busybox
    from composer.images.store import ImageStore

    store = ImageStore(composer_root / "data")
    if not store.exists("busybox"):
        bootstrap_busybox(store)
    return "busybox"


def load(tmp_path: Path, name: str, db_ip: int = 10):
    (tmp_path / "compose.yaml").write_text(STACK.format(name=name, subnet=SUBNET, db_ip=db_ip))
    return load_project(LoadOptions(cwd=str(tmp_path), environ={}))


@pytest.fixture
def stack(composer_env, busybox_in_store, tmp_path):
    events = []
    name = "cmpt" + tmp_path.name[-6:].replace("_", "").lower()
    runner = ProjectRunner(load(tmp_path, name), on_event=events.append)
    runner.events = events
    yield runner
    ProjectRunner(None, name=runner.name).down(DownOptions(volumes=True, remove_orphans=True))


def sh(runner: ProjectRunner, service: str, script: str) -> int:
    return runner.exec(service, ["sh", "-c", script])


def test_stack_lifecycle(stack, tmp_path):
    rt = Runtime()
    up = stack.up(UpOptions())
    assert [(c.label("composer.service"), c.status) for c in up] == [("app", "running"), ("db", "running"),
                                                                     ("lb", "running")]
    assert [c.name for c in up] == [f"{stack.name}-app-1", f"{stack.name}-db-1", f"{stack.name}-lb-1"]
    started = [e.name for e in stack.events if e.action == "Started"]
    assert started.index(f"{stack.name}-app-1") < started.index(f"{stack.name}-lb-1")

    # names: service, alias, link alias, container name; the db's volume was seeded from the image
    assert sh(stack, "app", "wget -qO- http://db:5000/index.html | grep -q 'composer busybox'") == 0
    assert sh(stack, "app", f"ping -c1 -W1 database && ping -c1 -W1 backend && ping -c1 -W1 {stack.name}-db-1") == 0
    assert sh(stack, "app", f"grep -q '^{SUBNET}.10\t.*backend' /etc/hosts") == 0
    assert sh(stack, "lb", "ping -c1 -W1 app") == 0
    assert sh(stack, "lb", "ping -c1 -W1 db") != 0  # not on a shared network
    # Fig link variables
    assert sh(stack, "app", f'test "$BACKEND_PORT" = tcp://{SUBNET}.10:5000 && test "$BACKEND_ENV_DB_MODE" = primary '
                            f'&& test "$BACKEND_NAME" = /{stack.name}-app-1/backend') == 0

    # the published port on loopback
    host_ip, port = stack.port("lb", 80)
    assert host_ip == "127.0.0.1" and port > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as resp:
        assert b"composer busybox" in resp.read()

    # an unchanged up does nothing; a changed address recreates db and peers follow
    stack.events.clear()
    stack.up(UpOptions())
    assert {e.action for e in stack.events if e.kind == "container"} == {"Running"}
    moved = ProjectRunner(load(tmp_path, stack.name, db_ip=20), on_event=stack.events.append)
    moved.up(UpOptions())
    assert any(e.action == "Recreated" and e.service == "db" for e in stack.events)
    assert sh(moved, "app", f"grep -q '^{SUBNET}.20\t.*backend' /etc/hosts && ! grep -q '^{SUBNET}.10' /etc/hosts") == 0
    assert sh(moved, "app", "ping -c1 -W1 backend | grep -q '.20'") == 0

    # data in the named volume survives down and up
    assert sh(moved, "db", "echo kept > /var/www/marker") == 0
    ids = [c.id for c in moved.containers(all=True)]
    bridges = {n.bridge for n in rt.network.list()}
    moved.down(DownOptions())
    assert moved.containers(all=True) == []
    assert rt.network.list() == [] or not any(n.name.startswith(stack.name) for n in rt.network.list())
    assert not bridges & hostobjects.links()
    assert not any(cid in path for cid in ids for path in hostobjects.cgroups())
    volume_dir = Path(os.environ["COMPOSER_DATA_DIR"]) / "volumes" / f"{stack.name}_data" / "_data"
    assert (volume_dir / "marker").read_text() == "kept\n"
    moved.up(UpOptions())
    assert sh(moved, "db", "grep -q kept /var/www/marker") == 0
    moved.down(DownOptions(volumes=True))
    assert not volume_dir.exists()
    moved.down(DownOptions(volumes=True))  # idempotent


def test_port_in_use_is_found_before_anything_starts(composer_env, busybox_in_store, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        (tmp_path / "compose.yaml").write_text(
            "name: cmptport\nservices:\n  a: {image: busybox, command: sleep 60}\n"
            f"  b: {{image: busybox, command: sleep 60, ports: ['127.0.0.1:{taken}:80']}}\n")
        runner = ProjectRunner(load_project(LoadOptions(cwd=str(tmp_path), environ={})))
        from composer.errors import ConflictError

        with pytest.raises(ConflictError, match=f"service b: port {taken}"):
            runner.up(UpOptions())
        assert runner.containers(all=True) == []
        assert Runtime().network.list() == []


def test_missing_image_and_external_network(composer_env, busybox_in_store, tmp_path):
    from composer.errors import NotFoundError

    (tmp_path / "compose.yaml").write_text("name: cmptmiss\nservices:\n  a: {image: nosuchimage}\n")
    with pytest.raises(NotFoundError, match="nosuchimage for service a.*composer image bootstrap busybox"):
        ProjectRunner(load_project(LoadOptions(cwd=str(tmp_path), environ={}))).up(UpOptions())
    (tmp_path / "compose.yaml").write_text("name: cmptmiss\nservices:\n  a: {image: busybox, command: sleep 9}\n"
                                           "networks:\n  default: {name: cmpnothere, external: true}\n")
    runner = ProjectRunner(load_project(LoadOptions(cwd=str(tmp_path), environ={})))
    with pytest.raises(NotFoundError, match="network cmpnothere declared as external"):
        runner.up(UpOptions())
    assert runner.containers(all=True) == []
