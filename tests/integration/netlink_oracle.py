"""The independent oracle of the network tests: pyroute2, a well-kept netlink library, reads back the
links, addresses, routes and bridge ports that composer's own rtnetlink client (runtime/net/rtnl.py)
set, so the hand-written client is checked against one it shares no code with.

pyroute2 stays out of composer/: its import (110-250 ms here) costs more than a whole `container run`.
In the tests that cost does not count. A container's namespace is read through /proc/<pid>/ns/net
(flags=0: pyroute2 never creates a namespace for us; its helper child only opens a socket there)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from pyroute2 import IPRoute, NetNS

IFF_UP = 0x1
RT_TABLE_MAIN = 254


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str | None  # "bridge", "veth", None for plain devices
    up: bool  # administratively (IFF_UP)
    operstate: str
    mtu: int
    mac: str
    master: int | None  # IFLA_MASTER: the bridge a port is enslaved to
    peer: int | None  # IFLA_LINK: a veth's other end (its index in the other namespace)
    addresses: tuple[tuple[str, int], ...]  # IPv4 (address, prefix length)


@dataclass(frozen=True)
class Route:
    dst: str  # "default" or "a.b.c.d/n"
    gateway: str | None
    dev: str


class View:
    """The links and IPv4 routes of one network namespace, as pyroute2 reads them."""

    def __init__(self, ipr: IPRoute) -> None:
        addresses: dict[int, list[tuple[str, int]]] = {}
        for msg in ipr.get_addr(family=socket.AF_INET):
            addresses.setdefault(msg["index"], []).append((msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS"),
                                                           msg["prefixlen"]))
        self.links: dict[str, Link] = {}
        for msg in ipr.get_links():
            link = Link(index=msg["index"], name=msg.get("IFLA_IFNAME"),
                        kind=msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"), up=bool(msg["flags"] & IFF_UP),
                        operstate=msg.get("IFLA_OPERSTATE"), mtu=msg.get("IFLA_MTU"), mac=msg.get("IFLA_ADDRESS"),
                        master=msg.get("IFLA_MASTER"), peer=msg.get("IFLA_LINK"),
                        addresses=tuple(addresses.get(msg["index"], ())))
            self.links[link.name] = link
        by_index = {link.index: link.name for link in self.links.values()}
        self.routes: list[Route] = []
        for msg in ipr.get_routes(family=socket.AF_INET, table=RT_TABLE_MAIN):
            dst = "default" if msg["dst_len"] == 0 else f"{msg.get('RTA_DST')}/{msg['dst_len']}"
            self.routes.append(Route(dst, msg.get("RTA_GATEWAY"), by_index.get(msg.get("RTA_OIF"), "?")))

    def ports(self, bridge: str) -> set[str]:
        """The links enslaved to `bridge` (IFLA_MASTER)."""
        index = self.links[bridge].index
        return {link.name for link in self.links.values() if link.master == index}

    def defaults(self) -> list[Route]:
        return [r for r in self.routes if r.dst == "default"]


def host() -> View:
    with IPRoute() as ipr:
        return View(ipr)


def netns_of(pid: int) -> View:
    with NetNS(f"/proc/{pid}/ns/net", flags=0) as ns:
        return View(ns)


def check_bridge(info) -> Link:
    """The network's bridge: a bridge, up, with the gateway address on the subnet's prefix."""
    bridge = host().links.get(info.bridge)
    assert bridge is not None, f"pyroute2 sees no bridge {info.bridge}"
    prefix = int(info.subnet.partition("/")[2])
    assert bridge.kind == "bridge" and bridge.up
    assert bridge.addresses == ((info.gateway, prefix),), bridge.addresses
    return bridge


def check_endpoint(info, ep, pid: int, *, default_route: bool | None = True) -> None:
    """A container's endpoint on network `info`: the host end enslaved to the bridge and up, its
    peer in the container's namespace with the endpoint's name, MAC, address/prefix, the same MTU
    as the bridge, up, and the default route via the bridge's address (True), not through this
    interface (False), or either (None)."""
    view = host()
    bridge = view.links[info.bridge]
    hostend = view.links.get(ep.host_veth)
    assert hostend is not None, f"pyroute2 sees no host veth {ep.host_veth}"
    assert hostend.kind == "veth" and hostend.up and hostend.master == bridge.index
    assert ep.host_veth in view.ports(info.bridge)
    inside = netns_of(pid)
    end = inside.links.get(ep.interface)
    assert end is not None, f"pyroute2 sees no {ep.interface} in /proc/{pid}/ns/net"
    assert end.kind == "veth" and end.up and end.operstate == "UP" and hostend.operstate == "UP"
    assert end.peer == hostend.index and hostend.peer == end.index  # the two ends of one pair
    assert end.mac == ep.mac_address
    assert end.addresses == ((ep.ipv4_address, int(info.subnet.partition("/")[2])),), end.addresses
    assert end.mtu == hostend.mtu == bridge.mtu == 1500  # composer sets none: the kernel's default, alike
    defaults = inside.defaults()
    if default_route:
        assert [(r.gateway, r.dev) for r in defaults] == [(info.gateway, ep.interface)], defaults
    elif default_route is False:
        assert all(r.dev != ep.interface for r in defaults), defaults
    assert any(r.dst == info.subnet and r.gateway is None and r.dev == ep.interface for r in inside.routes)


def check_gone(*names: str) -> None:
    """None of these links is on the host any more (pyroute2's dump, not ours)."""
    left = set(names) & set(host().links)
    assert not left, f"pyroute2 still sees {left}"
