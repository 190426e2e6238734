"""network_mode service:x / container:x, extra_hosts host-gateway and the port driver choice:
the pure parts (spec building, convergence, namespace flags, hosts content, env parsing)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from composer.config import LoadOptions, load_project
from composer.errors import ConfigError, ContainerError, HostError
from composer.images.model import ImageConfig
from composer.runtime import syscalls as sc
from composer.runtime.container import lifecycle
from composer.runtime.net import etcfiles
from composer.runtime.net import proxy
from composer.runtime.spec import ContainerSpec, NetworkAttachment, PortMapping
from composer.service import service as S
from composer.service.links import Peer
from tests.unit.test_service import FakeContainer

STACK = """
name: nm
services:
  web:
    image: busybox
    extra_hosts: ["host.docker.internal:host-gateway", "gw2=host-gateway", "plain:10.1.2.3"]
  side:
    image: busybox
    network_mode: service:web
    ports: ["8080:80"]
  other:
    image: busybox
    network_mode: container:somebody
  dflt:
    image: busybox
    network_mode: bridge
    ports: ["80"]
"""


@dataclass(frozen=True)
class FakeImage:
    id: str = "sha256:" + "a" * 64
    layers: tuple[str, ...] = ("/layers/1",)
    config: ImageConfig = field(default_factory=lambda: ImageConfig(cmd=("sh",)))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("nm")
    (d / "compose.yaml").write_text(STACK)
    return load_project(LoadOptions(cwd=str(d), environ={}))


def build(project, name, peers=(), number=1):
    ctx = S.ProjectContext(project.name, project.working_dir, project.files,
                           {k: n.name for k, n in project.networks.items()})
    return S.build_spec(project.services[name], ctx, FakeImage(), number=number, id="b" * 64, peers=peers)


def web_peer(number=1, id="e"):
    return Peer(id=id * 64, name=f"nm-web-{number}", service="web", number=number, hostname="webhost",
                addresses=(("nm_default", "10.89.0.2"),))


def test_modes_accepted_and_refused(project):
    side = project.services["side"]
    assert S.check_network_mode(side) == "service:web"
    assert S.check_network_mode(project.services["other"]) == "container:somebody"
    assert S.check_network_mode(project.services["dflt"]) == "bridge"
    for bad in ("service:", "container:", "slirp4netns", "ns:/proc/1/ns/net"):
        with pytest.raises(ConfigError, match=f"service side: network_mode '{bad}'"):
            S.check_network_mode(replace(side, network_mode=bad))


def test_service_mode_is_a_dependency_edge(project):
    assert "web" in project.services["side"].depends_on
    assert S.network_service(project.services["side"]) == "web"
    assert S.network_service(project.services["web"]) is None


def test_service_mode_resolves_to_the_first_running_replica(project):
    built = build(project, "side", peers=[web_peer(2, "f"), web_peer(1, "e")])
    assert built.spec.network_mode == "container:" + "e" * 64
    assert built.spec.networks == () and built.spec.ports == ()
    assert any("ports are ignored" in w for w in built.warnings)
    oneoff = replace(web_peer(1, "c"), oneoff=True)
    with pytest.raises(ContainerError, match="service side: network_mode service:web: service web has no running"):
        build(project, "side", peers=[oneoff])


def test_container_mode_is_passed_to_the_runtime_as_given(project):
    spec = build(project, "other").spec
    assert spec.network_mode == "container:somebody"  # the runtime resolves name or id at start
    assert ContainerSpec.from_json(spec.to_json()) == spec


def test_network_mode_bridge_is_the_default_network(project):
    spec = build(project, "dflt").spec
    assert spec.network_mode == "bridge" and spec.networks == ()  # the runtime attaches to `bridge`
    assert spec.ports == (PortMapping(80),)


def test_recreated_target_recreates_the_dependents(project):
    svc = project.services["side"]
    old = FakeContainer(build(project, "side", peers=[web_peer(1, "e")]).spec)
    plan = S.plan(svc, 1, FakeImage().id, [old])
    assert [a.kind for a in plan] == ["noop"]
    assert S.follow_network_target(svc, plan, [web_peer(1, "e")]) == plan  # same target: nothing to do
    moved = S.follow_network_target(svc, plan, [web_peer(1, "9")])
    assert [a.kind for a in moved] == ["recreate"] and "service:web" in moved[0].reason
    stopped = S.plan(svc, 1, FakeImage().id, [FakeContainer(old.spec, running=False)])
    assert [a.kind for a in S.follow_network_target(svc, stopped, [web_peer(1, "9")])] == ["recreate"]
    assert S.follow_network_target(svc, plan, []) == plan  # no target: the build says so


def test_extra_hosts_host_gateway_both_forms(project):
    hosts = dict((names[0], ip) for ip, names in build(project, "web").spec.hosts)
    assert hosts["host.docker.internal"] == etcfiles.HOST_GATEWAY
    assert hosts["gw2"] == etcfiles.HOST_GATEWAY  # the name=ip form
    assert hosts["plain"] == "10.1.2.3"


def test_hosts_content_resolves_host_gateway_or_drops_it():
    entries = (("host-gateway", ("host.docker.internal",)), ("10.1.2.3", ("plain",)))
    text = etcfiles.hosts_content(entries, [("10.89.0.5", ["me"])], gateway="10.89.0.1")
    assert "10.89.0.1\thost.docker.internal\n" in text and "10.89.0.5\tme\n" in text
    text = etcfiles.hosts_content(entries)  # no network: nothing to point at
    assert "host.docker.internal" not in text and "host-gateway" not in text and "10.1.2.3\tplain" in text


def spec(**kw) -> ContainerSpec:
    return ContainerSpec(id="a" * 64, name="x", image="i", image_id="i", layers=("/l",), argv=("true",), **kw)


def test_namespace_flags():
    base = sc.CLONE_NEWNS | sc.CLONE_NEWIPC | sc.CLONE_NEWPID
    assert lifecycle._ns_flags(spec(network_mode="bridge")) == base | sc.CLONE_NEWNET | sc.CLONE_NEWUTS
    assert lifecycle._ns_flags(spec(network_mode="host")) == base
    assert lifecycle._ns_flags(spec(network_mode="container:" + "b" * 64)) == base | sc.CLONE_NEWUTS


def test_runtime_validation_of_container_mode():
    lifecycle._check_network_mode(spec(network_mode="container:web"))
    with pytest.raises(ContainerError, match="conflicting options: port publishing and network mode container:web"):
        lifecycle._check_network_mode(spec(network_mode="container:web", ports=(PortMapping(80),)))
    with pytest.raises(ContainerError, match="conflicting options: network attachments"):
        lifecycle._check_network_mode(spec(network_mode="container:web", networks=(NetworkAttachment("n"),)))
    with pytest.raises(ContainerError, match="needs a container name or id"):
        lifecycle._check_network_mode(spec(network_mode="container:"))
    with pytest.raises(ContainerError, match="unsupported network mode 'slirp'"):
        lifecycle._check_network_mode(spec(network_mode="slirp"))
    assert lifecycle.attachments(spec(network_mode="container:web")) == ()


def test_port_driver_from_environment(monkeypatch):
    monkeypatch.setenv(proxy.ENV_DRIVER, "proxy")
    assert proxy.port_driver() == "proxy"
    monkeypatch.setenv(proxy.ENV_DRIVER, "nft")
    assert proxy.port_driver() == "nft"
    monkeypatch.setenv(proxy.ENV_DRIVER, "iptables")
    with pytest.raises(HostError, match="COMPOSER_PORT_DRIVER='iptables' is not a port driver"):
        proxy.port_driver()
    monkeypatch.delenv(proxy.ENV_DRIVER)
    monkeypatch.setattr(proxy, "_NFT_USABLE", False)  # nft missing or no nf_tables: automatic fallback
    assert proxy.port_driver() == "proxy"
    monkeypatch.setattr(proxy, "_NFT_USABLE", True)
    assert proxy.port_driver() == "nft"


def test_proxy_record_round_trip():
    p = proxy.ProxyProcess(123, 456)
    assert proxy.ProxyProcess.from_dict(p.to_dict()) == p
