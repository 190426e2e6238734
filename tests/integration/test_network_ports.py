"""Published ports through nft DNAT: from the host via 127.0.0.1 and via our bridge's address,
host-ip binding, udp, ephemeral ports, and ports already in use."""

from __future__ import annotations

import socket

import pytest

from composer.errors import ConflictError, ContainerError
from composer.runtime.spec import NetworkAttachment, PortMapping
from tests.integration.network_helpers import CID, holders, manager, nft_table, request, serve, web  # noqa: F401

pytestmark = pytest.mark.root


def test_publish_ephemeral_port_reached_from_loopback_and_bridge_address(manager, web):
    info, ep = web
    (mapping,) = manager.ports.publish(CID, ep.ipv4_address, [PortMapping(80)])
    assert mapping.host_port > 0
    assert request("127.0.0.1", mapping.host_port).startswith("web sees")
    assert request(info.gateway, mapping.host_port).startswith("web sees")
    assert f"tcp dport {mapping.host_port} dnat to {ep.ipv4_address}:80" in nft_table()
    assert manager.ports.published(CID)[0].host_port == mapping.host_port


def test_host_ip_binding_and_udp(manager, web):
    info, ep = web
    tcp, udp = manager.ports.publish(CID, ep.ipv4_address, [PortMapping(80, 0, "127.0.0.1"),
                                                       PortMapping(80, 0, "127.0.0.1", "udp")])
    assert request("127.0.0.1", tcp.host_port).startswith("web sees")
    assert request(info.gateway, tcp.host_port, timeout=0.5).startswith("FAILED")  # bound to 127.0.0.1 only
    assert request("127.0.0.1", udp.host_port, "udp").startswith("webudp sees")


def test_unpublish_removes_the_rule(manager, web):
    _, ep = web
    (m,) = manager.ports.publish(CID, ep.ipv4_address, [PortMapping(80)])
    manager.ports.unpublish(CID)
    assert f"dport {m.host_port} " not in nft_table()
    assert request("127.0.0.1", m.host_port, timeout=0.5).startswith("FAILED")
    manager.ports.unpublish(CID)  # idempotent


def test_port_taken_by_a_host_listener_is_named(manager):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConflictError, match=f"port {port}/tcp on 127.0.0.1 is already in use"):
            manager.ports.check_ports([PortMapping(80, port, "127.0.0.1")])
        with pytest.raises(ConflictError, match=f"port {port}/tcp on 0.0.0.0 is already in use"):
            manager.ports.check_ports([PortMapping(80, port)])
        manager.ports.check_ports([PortMapping(80, port, "127.0.0.1", "udp")])  # udp is another space


def test_port_taken_by_another_composer_mapping(manager, web):
    _, ep = web
    (m,) = manager.ports.publish(CID, ep.ipv4_address, [PortMapping(80)])
    with pytest.raises(ConflictError, match=f"port {m.host_port}/tcp on 127.0.0.1 is already in use"):
        manager.ports.check_ports([PortMapping(80, m.host_port, "127.0.0.1")])
    with pytest.raises(ConflictError, match="already in use"):
        manager.ports.publish("d" * 64, "10.89.0.9", [PortMapping(81, m.host_port)])
    assert [p.container_id for p in manager.ports.published()] == [CID]
    with pytest.raises(ConflictError, match="already in use"):  # the same port twice in one request
        manager.ports.check_ports([PortMapping(80, 18080), PortMapping(81, 18080)])


def test_bad_mappings(manager):
    with pytest.raises(ContainerError, match="protocol"):
        manager.ports.check_ports([PortMapping(80, 8080, "", "sctp")])
    with pytest.raises(ContainerError, match="not an address of this host"):
        manager.ports.check_ports([PortMapping(80, 18081, "10.89.254.254")])
    with pytest.raises(ContainerError, match="invalid port"):
        manager.ports.check_ports([PortMapping(0, 8080)])


def test_neighbour_reaches_published_port_through_the_host(manager, holders, web):
    info, ep = web
    (m,) = manager.ports.publish(CID, ep.ipv4_address, [PortMapping(80)])
    other = holders.new()
    manager.connect("p_default", "e" * 64, other, NetworkAttachment("p_default"), "eth0")
    assert request(info.gateway, m.host_port, from_pid=other) == f"web sees {info.gateway}"
