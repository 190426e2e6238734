"""Spec building from a model: names, labels, env incl. link variables, mounts, ports, networks,
hosts entries, resources; and the convergence plan."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, field

import pytest

from composer.config import LoadOptions, config_hash, load_project
from composer.errors import ConfigError, ConflictError
from composer.images.model import ImageConfig
from composer.runtime.spec import ContainerSpec, Mount, PortMapping
from composer.service import service as S
from composer.service.links import Peer, hosts_entries, link_env
from composer.service.mounts import requests_for

STACK = """
name: shop
services:
  db:
    image: busybox
    command: ["sleep", "1000"]
    expose: ["5432"]
    environment: {POSTGRES_DB: shop, UNSET: null}
    volumes: ["data:/var/lib/db", "/anon", "./conf:/etc/conf:ro"]
  web:
    image: busybox
    entrypoint: ["/bin/app"]
    links: ["db:database"]
    ports: ["127.0.0.1:8080:80", "9000-9001:9000-9001/udp", "7000"]
    networks:
      default:
      back: {aliases: [www], ipv4_address: 10.99.0.10}
    tmpfs: ["/run:size=64m"]
    extra_hosts: ["gw:10.0.0.1"]
    mem_limit: 64m
    cpus: 0.5
    pids_limit: 50
    user: "1000:1000"
    working_dir: /app
    hostname: webhost
    init: true
    read_only: true
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true", "label:disable"]
    ulimits: {nofile: {soft: 1024, hard: 2048}}
    stop_signal: SIGINT
    stop_grace_period: 3s
    restart: on-failure:3
    labels: {tier: front}
    healthcheck: {test: "wget -q localhost", interval: 5s}
    ipc: host
    cgroup: host
  worker:
    image: busybox
    scale: 2
    ports: ["8000-8001:80"]
    deploy: {resources: {limits: {memory: 32m}}}
networks:
  back: {ipam: {config: [{subnet: 10.99.0.0/24}]}}
volumes:
  data: {}
"""


@dataclass(frozen=True)
class FakeImage:
    id: str = "sha256:" + "a" * 64
    layers: tuple[str, ...] = ("/layers/1",)
    config: ImageConfig = field(default_factory=lambda: ImageConfig(
        env=(("PATH", "/bin"), ("LANG", "C")), cmd=("sh",), exposed_ports=("6379/tcp",),
        labels=(("maintainer", "me"),), working_dir="/srv"))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("shop")
    (d / "compose.yaml").write_text(STACK)
    return load_project(LoadOptions(cwd=str(d), environ={}))


def ctx(project):
    return S.ProjectContext(project.name, project.working_dir, project.files,
                            {k: n.name for k, n in project.networks.items()})


def build(project, name, number=1, **kw):
    return S.build_spec(project.services[name], ctx(project), FakeImage(), number=number, id="b" * 64, **kw)


def db_peer():
    return Peer(id="d" * 64, name="shop-db-1", service="db", number=1, hostname="dddddddddddd",
                addresses=(("shop_default", "10.89.0.2"),), env=(("POSTGRES_DB", "shop"), ("PATH", "/bin")),
                exposed=((5432, "tcp"), (6379, "tcp")))


def test_names_and_labels(project):
    spec = build(project, "db").spec
    assert spec.name == "shop-db-1"
    labels = dict(spec.labels)
    assert labels["composer.project"] == "shop" and labels["composer.service"] == "db"
    assert labels["composer.number"] == "1" and labels["composer.oneoff"] == "False"
    assert labels["composer.config-hash"] == config_hash(project.services["db"])
    assert labels["composer.image"] == FakeImage().id
    assert labels["composer.config-files"].endswith("compose.yaml")
    assert labels["maintainer"] == "me"  # image labels are kept, as docker does
    assert labels["composer.exposed"] == "5432/tcp,6379/tcp"
    assert spec.hostname == ""  # the runtime defaults it to the id's first 12 hex
    assert ContainerSpec.from_json(spec.to_json()) == spec


def test_environment_and_command(project):
    spec = build(project, "db").spec
    env = dict(spec.env)
    assert env["POSTGRES_DB"] == "shop" and "UNSET" not in env and env["LANG"] == "C"
    assert spec.argv == ("sleep", "1000") and spec.cwd == "/srv"
    web = build(project, "web", peers=[db_peer()]).spec
    assert web.argv == ("/bin/app",)  # an entrypoint in the file drops the image's CMD
    assert web.cwd == "/app" and web.user == "1000:1000"


def test_link_variables(project):
    env = dict(build(project, "web", peers=[db_peer()]).spec.env)
    assert env["DATABASE_PORT"] == "tcp://10.89.0.2:5432"
    assert env["DATABASE_PORT_5432_TCP"] == "tcp://10.89.0.2:5432"
    assert env["DATABASE_PORT_5432_TCP_ADDR"] == "10.89.0.2"
    assert env["DATABASE_PORT_5432_TCP_PORT"] == "5432"
    assert env["DATABASE_PORT_5432_TCP_PROTO"] == "tcp"
    assert env["DATABASE_PORT_6379_TCP_PORT"] == "6379"
    assert env["DATABASE_NAME"] == "/shop-web-1/database"
    assert env["DATABASE_ENV_POSTGRES_DB"] == "shop" and "DATABASE_ENV_PATH" not in env


def test_link_env_user_wins():
    env = link_env("a-1", [("my-db", db_peer())])
    assert ("MY_DB_NAME", "/a-1/my-db") in env


def test_ports_networks_hosts(project):
    spec = build(project, "web", peers=[db_peer()]).spec
    assert spec.ports == (PortMapping(80, 8080, "127.0.0.1", "tcp"), PortMapping(9000, 9000, "", "udp"),
                          PortMapping(9001, 9001, "", "udp"), PortMapping(7000, 0, "", "tcp"))
    nets = {a.network: a for a in spec.networks}
    assert set(nets) == {"shop_default", "shop_back"}
    assert nets["shop_back"].aliases == ("www",) and nets["shop_back"].ipv4_address == "10.99.0.10"
    assert [a.interface for a in spec.networks] == ["eth0", "eth1"]
    hosts = dict(spec.hosts)
    assert hosts["10.89.0.2"] == ("db", "shop-db-1", "db-1", "dddddddddddd", "database")
    assert hosts["10.0.0.1"] == ("gw",)


def test_hosts_entries_only_shared_networks_and_aliases():
    other = Peer(id="e" * 64, name="p-x-1", service="x", number=1, hostname="h",
                 addresses=(("p_back", "10.1.0.5"), ("p_front", "10.2.0.5")),
                 aliases=(("p_back", ("xa",)),))
    entries = hosts_entries(["p_back"], [other], links=[("x", "linked")])
    assert entries == (("10.1.0.5", ("x", "p-x-1", "x-1", "h", "xa", "linked")),)
    assert hosts_entries(["p_other"], [other]) == ()


def test_resources_and_keys(project):
    built = build(project, "web", peers=[db_peer()])
    spec = built.spec
    assert spec.resources.memory == 64 * 1024 * 1024 and spec.resources.cpus == 0.5 and spec.resources.pids == 50
    assert spec.hostname == "webhost" and spec.init and spec.read_only and spec.cap_drop == ("ALL",)
    assert spec.no_new_privileges
    assert spec.ulimits[0].name == "nofile" and spec.ulimits[0].hard == 2048
    assert spec.stop_signal == int(signal.SIGINT) and spec.stop_timeout == 3.0
    assert spec.restart.name == "on-failure" and spec.restart.max_retries == 3
    assert spec.healthcheck.test == ("/bin/sh", "-c", "wget -q localhost") and spec.healthcheck.interval == 5.0
    assert dict(spec.labels)["tier"] == "front"
    assert any("'ipc'" in w for w in built.warnings)
    assert any("label:disable" in w for w in built.warnings)
    worker = build(project, "worker").spec
    assert worker.resources.memory == 32 * 1024 * 1024
    assert spec.cgroupns == "host" and worker.cgroupns == ""  # compose's `cgroup`; "" = docker's default


def test_replicas_and_port_ranges(project):
    worker = project.services["worker"]
    assert S.port_mappings(worker, 1)[0].host_port == 8000
    assert S.port_mappings(worker, 2)[0].host_port == 8001
    with pytest.raises(ConflictError, match="no port left"):
        S.port_mappings(worker, 3)
    with pytest.raises(ConflictError, match="service web: host port 8080"):
        S.check_replicas(project.services["web"], 2)
    S.check_replicas(worker, 2)


def test_network_mode(project):
    from dataclasses import replace

    s = replace(project.services["db"], network_mode="slirp4netns")
    with pytest.raises(ConfigError, match="service db: network_mode"):
        S.check_network_mode(s)
    assert S.check_network_mode(replace(s, network_mode="service:web")) == "service:web"
    assert S.check_network_mode(replace(s, network_mode="host")) == "host"


def test_mount_requests(project):
    reqs = {r.target: r for r in requests_for(project.services["db"], project, ImageConfig(volumes=("/cache",)))}
    assert reqs["/var/lib/db"].kind == "volume" and reqs["/var/lib/db"].source == "shop_data"
    assert reqs["/anon"].kind == "anonymous"
    assert reqs["/etc/conf"].kind == "bind" and reqs["/etc/conf"].read_only
    assert reqs["/etc/conf"].source.endswith("/conf")
    assert reqs["/cache"].kind == "anonymous"  # the image's VOLUME
    web = {r.target: r for r in requests_for(project.services["web"], project)}
    assert web["/run"].kind == "tmpfs" and web["/run"].options == (f"size={64 * 1024 * 1024}",)


def test_mounts_pass_through(project):
    m = (Mount("/data", "bind", "/v/_data"),)
    assert build(project, "db", mounts=m).spec.mounts == m


# ---------------------------------------------------------------- convergence


@dataclass(frozen=True)
class FakeContainer:
    spec: ContainerSpec
    running: bool = True
    created_at: float = 0.0

    def label(self, key, default=None):
        return self.spec.label(key, default)


def test_plan(project):
    svc = project.services["db"]
    image_id = FakeImage().id
    same = FakeContainer(build(project, "db").spec)
    assert [a.kind for a in S.plan(svc, 1, image_id, [same])] == ["noop"]
    assert [a.kind for a in S.plan(svc, 1, image_id, [FakeContainer(same.spec, running=False)])] == ["start"]
    assert [a.kind for a in S.plan(svc, 1, image_id, [])] == ["create"]
    assert [a.kind for a in S.plan(svc, 1, image_id, [same], force_recreate=True)] == ["recreate"]
    # a config change (different hash) or a new image -> recreate, unless no_recreate
    from dataclasses import replace

    changed = replace(svc, environment=(("POSTGRES_DB", "other"),))
    # the recreate names the keys that changed (the container keeps a hash per key in a label)
    assert S.plan(changed, 1, image_id, [same])[0].reason == "configuration changed: environment"
    assert S.plan(svc, 1, "sha256:other", [same])[0].reason == "image changed"
    assert [a.kind for a in S.plan(changed, 1, image_id, [same], no_recreate=True)] == ["noop"]
    # scale up fills numbers, scale down removes the highest
    assert [(a.kind, a.number) for a in S.plan(svc, 3, image_id, [same])] == [("noop", 1), ("create", 2), ("create", 3)]
    two = FakeContainer(build(project, "db", number=2).spec)
    assert [(a.kind, a.number) for a in S.plan(svc, 1, image_id, [same, two])] == [("remove", 2), ("noop", 1)]


def _one_service(tmp_path, body: str):
    (tmp_path / "compose.yaml").write_text("services:\n  s:\n    image: busybox\n" + body)
    return load_project(LoadOptions(cwd=str(tmp_path), environ={}))


def test_devices_and_device_cgroup_rules(tmp_path):
    p = _one_service(tmp_path, "    devices: ['/dev/null:/dev/mine:rw', {source: /dev/zero, target: /dev/z, "
                               "permissions: r}]\n    device_cgroup_rules: ['c 189:* rwm']\n")
    spec = build(p, "s").spec
    assert [(d.target, d.rule) for d in spec.devices] == [("/dev/mine", "c 1:3 rw"), ("/dev/z", "c 1:5 r")]
    assert spec.resources.device_rules == ("c 189:* rwm",)
    assert not any("devices" in w for w in build(p, "s").warnings)


@pytest.mark.parametrize("body,message", [
    ("    devices: ['/etc/hostname:/dev/x']\n", "service s: devices: invalid device '/etc/hostname:/dev/x': "
                                               "/etc/hostname is not a device node"),
    ("    devices: ['/dev/nonexistent-cmp']\n", "No such file or directory"),
    ("    device_cgroup_rules: ['c 189 rwm']\n", "service s: device_cgroup_rules: invalid device cgroup rule"),
])
def test_bad_devices_name_the_service_and_key(tmp_path, body, message):
    p = _one_service(tmp_path, body)
    with pytest.raises(ConfigError, match=re.escape(message)):
        build(p, "s")
