"""On the real host: the userspace port proxy (forced with COMPOSER_PORT_DRIVER=proxy), a
container joining another's network namespace (network_mode container:x / service:x), and
extra_hosts host-gateway. Traffic goes to loopback and to our own bridges only."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from composer.errors import ConflictError, ContainerError
from composer.runtime import Runtime
from composer.runtime.net import proxy
from composer.runtime.spec import Mount, NetworkAttachment, PortMapping
from tests import hostobjects
from tests.integration.network_helpers import (CID, holders, http_get, manager, nft_table, request,  # noqa: F401
                                                serve, web)
from tests.integration.test_project_stack import busybox_in_store  # noqa: F401

pytestmark = pytest.mark.root


def comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def listening(port: int, proto: str = "tcp") -> bool:
    """Whether some socket is bound to `port` (as ss would show it), read from /proc/net."""
    state_ok = ("0A",) if proto == "tcp" else ("07",)  # LISTEN / UNCONN
    with open(f"/proc/net/{proto}") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] in state_ok:
                return True
    return False


def proxies(manager) -> dict:
    return manager.ports.proxies()


@pytest.fixture
def proxied(monkeypatch):
    monkeypatch.setenv(proxy.ENV_DRIVER, "proxy")


# ---------------------------------------------------------------- the proxy, on a bare netns


def test_proxy_forwards_tcp_and_udp_and_leaves_nothing(manager, proxied, web):
    info, ep = web
    tcp, udp, lo = manager.ports.publish(CID, ep.ipv4_address, [PortMapping(80), PortMapping(80, 0, "", "udp"),
                                                           PortMapping(80, 0, "127.0.0.1")])
    (proc,) = proxies(manager).values()
    assert comm(proc.pid) == "cmp-proxy" and os.getsid(proc.pid) == proc.pid  # own session
    assert request("127.0.0.1", tcp.host_port).startswith("web sees")
    assert request(info.gateway, tcp.host_port).startswith("web sees")
    assert request("127.0.0.1", udp.host_port, "udp").startswith("webudp sees")
    assert request("127.0.0.1", lo.host_port).startswith("web sees")
    assert request(info.gateway, lo.host_port, timeout=0.5).startswith("FAILED")  # bound to 127.0.0.1 only
    assert f"dport {tcp.host_port} " not in nft_table()  # no DNAT rule: the proxy does it
    assert [p.host_port for p in manager.ports.published(CID)] == [tcp.host_port, udp.host_port, lo.host_port]
    manager.ports.unpublish(CID)
    assert not os.path.exists(f"/proc/{proc.pid}") or proxy._start_time(proc.pid) is None
    assert not listening(tcp.host_port) and not listening(udp.host_port, "udp")
    assert proxies(manager) == {} and manager.ports.published(CID) == []
    manager.ports.unpublish(CID)  # idempotent


def test_proxy_finds_a_taken_port_and_leaves_nothing(manager, proxied, web):
    _, ep = web
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConflictError, match=f"port {port}/tcp on 0.0.0.0 is already in use"):
            manager.ports.publish(CID, ep.ipv4_address, [PortMapping(81), PortMapping(80, port)])
    assert proxies(manager) == {} and manager.ports.published() == []
    (m,) = manager.ports.publish(CID, ep.ipv4_address, [PortMapping(80)])
    with pytest.raises(ConflictError, match="already in use"):  # another container, same port
        manager.ports.publish("d" * 64, "10.89.0.9", [PortMapping(80, m.host_port)])


def test_proxy_republish_of_the_same_container_replaces_its_proxy(manager, proxied, web):
    _, ep = web
    (m,) = manager.ports.publish(CID, ep.ipv4_address, [PortMapping(80)])
    (first,) = proxies(manager).values()
    manager.ports.check_ports([PortMapping(80, m.host_port)], _exclude=CID)  # a restart may take its own port back
    (m2,) = manager.ports.publish(CID, ep.ipv4_address, [PortMapping(80, m.host_port)])
    (second,) = proxies(manager).values()
    assert m2.host_port == m.host_port and second.pid != first.pid
    assert proxy._start_time(first.pid) is None
    assert request("127.0.0.1", m.host_port).startswith("web sees")
    manager.gc(set())  # a crashed container's proxy is killed too
    assert proxy._start_time(second.pid) is None and not listening(m.host_port)


def test_automatic_fallback_when_nft_refuses_the_port_rules(manager, holders, monkeypatch):
    from composer.errors import HostError
    from composer.runtime.net import nft

    monkeypatch.delenv(proxy.ENV_DRIVER, raising=False)
    monkeypatch.setattr(proxy, "_NFT_USABLE", True)
    manager.ensure("p_default")
    pid = holders.new()
    ep = manager.connect("p_default", CID, pid, NetworkAttachment("p_default"), "eth0")
    serve(holders, pid, 80, "web")
    real = nft.apply

    def picky(script: str) -> None:
        if "dnat to" in script:
            raise HostError("nft refused composer's rules: Error: Could not process rule")
        real(script)

    monkeypatch.setattr(nft, "apply", picky)
    (m,) = manager.ports.publish(CID, ep.ipv4_address, [PortMapping(80, 0, "127.0.0.1")])
    assert CID in proxies(manager) and request("127.0.0.1", m.host_port).startswith("web sees")
    monkeypatch.setenv(proxy.ENV_DRIVER, "nft")  # forced: the error is the user's
    with pytest.raises(HostError, match="nft refused"):
        manager.ports.publish(CID, ep.ipv4_address, [PortMapping(80, 0, "127.0.0.1")])
    assert manager.ports.published(CID) == [] and proxies(manager) == {}


# ---------------------------------------------------------------- containers


wait_http = http_get


def httpd_spec(make_spec, tmp_path: Path, text: str, **kw):
    www = tmp_path / "www"
    www.mkdir(exist_ok=True)
    (www / "index.html").write_text(text)
    return make_spec("httpd", "-f", "-p", "80", "-h", "/www", mounts=(Mount("/www", "bind", str(www), True),), **kw)


def test_container_port_through_the_proxy_then_removal_leaves_nothing(runtime, make_spec, tmp_path, proxied):
    spec = httpd_spec(make_spec, tmp_path, "hello proxy", network_mode="bridge", ports=(PortMapping(80, 0, "127.0.0.1"),))
    info = runtime.run(spec)
    (port,) = info.ports
    assert wait_http(f"http://127.0.0.1:{port.host_port}/") == "hello proxy"
    (proc,) = runtime.network.ports.proxies().values()
    assert comm(proc.pid) == "cmp-proxy"
    runtime.stop(spec.id, timeout=1)
    runtime.start(spec.id)  # the stopped container's proxy still holds the port: the restart takes it over
    port2 = runtime.get(spec.id).ports[0]
    assert wait_http(f"http://127.0.0.1:{port2.host_port}/") == "hello proxy"
    (proc2,) = runtime.network.ports.proxies().values()
    runtime.remove(spec.id, force=True)
    assert proxy._start_time(proc.pid) is None and proxy._start_time(proc2.pid) is None
    assert not listening(port.host_port) and not listening(port2.host_port)


def test_join_another_containers_network(runtime, make_spec, tmp_path):
    target = httpd_spec(make_spec, tmp_path, "served by the target", network_mode="bridge", hostname="owner",
                        hosts=(("host-gateway", ("host.docker.internal",)),))
    runtime.run(target)
    out = tmp_path / "out"
    out.mkdir()
    joiner = make_spec("sleep", "60", network_mode=f"container:{target.name}",
                       mounts=(Mount("/out", "bind", str(out)),))
    runtime.run(joiner)
    tpid, jpid = runtime.get(target.id).pid, runtime.get(joiner.id).pid
    assert os.readlink(f"/proc/{jpid}/ns/net") == os.readlink(f"/proc/{tpid}/ns/net")
    assert os.readlink(f"/proc/{jpid}/ns/uts") != os.readlink(f"/proc/{tpid}/ns/uts")  # only the netns is shared
    script = "wget -qO- http://127.0.0.1:80/; echo; hostname; cat /etc/hosts"
    deadline = time.monotonic() + 10
    while runtime.exec(joiner.id, ["sh", "-c", f"({script}) > /out/r"]) != 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # httpd may not listen yet
    text = (out / "r").read_text()
    assert "served by the target" in text and "owner" in text
    gw = runtime.network.get("bridge").gateway
    assert f"{gw}\thost.docker.internal" in text  # host-gateway = the first network's bridge address
    assert runtime.get(joiner.id).endpoints == () and runtime.get(joiner.id).ports == ()


def test_joining_a_container_that_does_not_run_is_a_clear_error(runtime, make_spec):
    target = make_spec("sleep", "60", network_mode="bridge", name="netowner")
    runtime.create(target)
    joiner = make_spec("sleep", "60", network_mode="container:netowner")
    runtime.create(joiner)
    before = hostobjects.cgroups()
    with pytest.raises(ContainerError, match="cannot join the network of container netowner: it is not running"):
        runtime.start(joiner.id)
    assert runtime.get(joiner.id).status == "created" and hostobjects.cgroups() == before
    ghost = make_spec("sleep", "60", network_mode="container:nosuch")
    runtime.create(ghost)
    with pytest.raises(ContainerError, match="container nosuch: no such container"):
        runtime.start(ghost.id)
    with pytest.raises(ContainerError, match="conflicting options: port publishing"):
        runtime.create(make_spec("true", network_mode="container:netowner", ports=(PortMapping(80),)))


# ---------------------------------------------------------------- a stack: network_mode service:x

STACK = """
name: {name}
services:
  web:
    image: busybox
    init: true
    command: httpd -f -p 80 -h /var/www
    environment: {{GEN: "{gen}"}}
    extra_hosts: ["host.docker.internal=host-gateway"]
  side:
    image: busybox
    init: true
    command: sleep 600
    network_mode: service:web
"""


def load_stack(tmp_path: Path, name: str, gen: int):
    from composer.config import LoadOptions, load_project

    (tmp_path / "compose.yaml").write_text(STACK.format(name=name, gen=gen))
    return load_project(LoadOptions(cwd=str(tmp_path), environ={}))


def test_stack_service_network_mode_follows_a_recreated_target(composer_env, busybox_in_store, tmp_path):
    from composer.project.project import DownOptions, ProjectRunner, UpOptions

    name = "cmpnm" + tmp_path.name[-6:].replace("_", "").lower()
    events: list = []
    runner = ProjectRunner(load_stack(tmp_path, name, 1), on_event=events.append)
    try:
        runner.up(UpOptions(services=("side",)))  # web comes first: it is side's dependency
        web, side = runner.container_for("web"), runner.container_for("side")
        assert side.spec.network_mode == f"container:{web.id}"
        assert os.readlink(f"/proc/{side.pid}/ns/net") == os.readlink(f"/proc/{web.pid}/ns/net")
        assert runner.exec("side", ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do "
                                    "wget -qO- http://127.0.0.1:80/ >/dev/null && exit 0; sleep 0.2; done; exit 1"]) == 0
        gw = [n for n in Runtime().network.list() if n.name == f"{name}_default"][0].gateway
        assert runner.exec("side", ["grep", "-q", f"^{gw}\thost.docker.internal", "/etc/hosts"]) == 0
        events.clear()
        moved = ProjectRunner(load_stack(tmp_path, name, 2), on_event=events.append)
        moved.up(UpOptions())
        assert any(e.action == "Recreated" and e.service == "side" for e in events)
        web2, side2 = moved.container_for("web"), moved.container_for("side")
        assert web2.id != web.id and side2.spec.network_mode == f"container:{web2.id}"
        assert os.readlink(f"/proc/{side2.pid}/ns/net") == os.readlink(f"/proc/{web2.pid}/ns/net")
    finally:
        ProjectRunner(None, name=name).down(DownOptions(remove_orphans=True))
