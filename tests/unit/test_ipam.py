"""IPAM: subnet choice around routed networks, address allocation, names and MACs."""

from ipaddress import IPv4Address, IPv4Network

import pytest

from composer.errors import ConflictError, ContainerError
from composer.runtime.net import ipam


def nets(*texts):
    return [IPv4Network(t) for t in texts]


def test_first_subnet_of_pool_when_nothing_routed():
    assert ipam.pick_subnet([]) == IPv4Network("10.89.0.0/24")


def test_pool_skips_routed_and_overlapping_subnets():
    taken = nets("0.0.0.0/0", "10.89.0.0/24", "10.89.1.128/25", "10.89.2.7/32", "172.17.0.0/16")
    assert ipam.pick_subnet(taken) == IPv4Network("10.89.3.0/24")


def test_a_route_covering_the_whole_pool_exhausts_it():
    with pytest.raises(ConflictError, match="no free subnet"):
        ipam.pick_subnet(nets("10.0.0.0/8"))


def test_default_route_does_not_count_as_overlap():
    assert ipam.overlaps_any(IPv4Network("10.89.0.0/24"), nets("0.0.0.0/0")) is None
    assert ipam.overlaps_any(IPv4Network("10.89.0.0/24"), nets("10.89.0.0/16")) == IPv4Network("10.89.0.0/16")


def test_allocation_lowest_free_never_gateway():
    net = IPv4Network("10.89.5.0/24")
    gw = ipam.default_gateway(net)
    assert gw == IPv4Address("10.89.5.1")
    assert ipam.allocate(net, gw, [], network="n") == "10.89.5.2"
    assert ipam.allocate(net, gw, ["10.89.5.2", "10.89.5.4"], network="n") == "10.89.5.3"


def test_release_makes_address_reusable():
    net, gw = IPv4Network("10.89.5.0/24"), IPv4Address("10.89.5.1")
    used = ["10.89.5.2", "10.89.5.3"]
    used.remove("10.89.5.2")
    assert ipam.allocate(net, gw, used, network="n") == "10.89.5.2"


def test_requested_address():
    net, gw = IPv4Network("10.89.5.0/24"), IPv4Address("10.89.5.1")
    assert ipam.allocate(net, gw, [], network="n", requested="10.89.5.77") == "10.89.5.77"
    with pytest.raises(ConflictError, match="10.89.5.77 is already in use on network n"):
        ipam.allocate(net, gw, ["10.89.5.77"], network="n", requested="10.89.5.77")
    with pytest.raises(ConflictError):
        ipam.allocate(net, gw, [], network="n", requested="10.89.5.1")
    with pytest.raises(ContainerError, match="not in network n's subnet"):
        ipam.allocate(net, gw, [], network="n", requested="10.89.6.2")
    with pytest.raises(ContainerError, match="not in network"):
        ipam.allocate(net, gw, [], network="n", requested="10.89.5.255")
    with pytest.raises(ContainerError, match="invalid IPv4"):
        ipam.allocate(net, gw, [], network="n", requested="banana")


def test_exhaustion():
    net, gw = IPv4Network("10.89.5.0/30"), IPv4Address("10.89.5.1")
    assert ipam.allocate(net, gw, [], network="tiny") == "10.89.5.2"
    with pytest.raises(ConflictError, match=r"no free address left in network tiny \(10.89.5.0/30\)"):
        ipam.allocate(net, gw, ["10.89.5.2"], network="tiny")


def test_subnet_and_gateway_validation():
    assert ipam.parse_subnet("10.89.9.0/24") == IPv4Network("10.89.9.0/24")
    with pytest.raises(ContainerError, match="invalid subnet"):
        ipam.parse_subnet("10.89.9.1/24")
    with pytest.raises(ContainerError, match="too small"):
        ipam.parse_subnet("10.89.9.0/31")
    assert ipam.check_gateway(IPv4Network("10.89.9.0/24"), "10.89.9.254") == IPv4Address("10.89.9.254")
    with pytest.raises(ContainerError, match="not a host address"):
        ipam.check_gateway(IPv4Network("10.89.9.0/24"), "10.89.8.1")


def test_host_object_names():
    assert ipam.bridge_name("bridge") == "cmp0"
    b = ipam.bridge_name("proj_default")
    assert b.startswith("cmpb") and len(b) == 12 and b == ipam.bridge_name("proj_default")
    assert b != ipam.bridge_name("proj_other")
    v = ipam.veth_name("a" * 64, "proj_default")
    assert v.startswith("cmp") and len(v) <= 15
    assert v != ipam.veth_name("a" * 64, "proj_other") != ipam.veth_name("b" * 64, "proj_default")


def test_mac_from_ip_and_validation():
    assert ipam.mac_for("10.89.0.2") == "02:42:0a:59:00:02"
    assert ipam.check_mac("02:42:AC:11:00:02") == "02:42:ac:11:00:02"
    with pytest.raises(ContainerError, match="multicast"):
        ipam.check_mac("01:00:5e:00:00:01")
    with pytest.raises(ContainerError, match="invalid MAC"):
        ipam.check_mac("02:42:ac")


@pytest.mark.parametrize("name", ["", "-x", "a/b", "a b", 'x"y', "x" * 200])
def test_bad_network_names(name):
    with pytest.raises(ContainerError, match="invalid network name"):
        ipam.check_name(name)


def test_good_network_names():
    for name in ("bridge", "proj_default", "my-net.1"):
        assert ipam.check_name(name) == name
