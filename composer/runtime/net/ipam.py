"""Address management, pure: which subnet a new network gets, which address a container gets,
and the names of host objects. No I/O here, so all of it is unit-tested without root."""

from __future__ import annotations

import _socket
import re
from collections.abc import Iterable

try:  # the builtin module, same digests: hashlib loads OpenSSL first (~2 ms of `container run`)
    from _sha256 import sha256
except ImportError:  # 3.12+
    from hashlib import sha256

from composer.errors import ConflictError, ContainerError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv4Network

# ipaddress (~1.2 ms) is imported where subnets are planned (a network is made), not on the path of
# every container start: addresses are allocated on integers.


def ip_int(text: str) -> int:
    """Dotted quad -> int; ValueError if it is not one."""
    try:
        return int.from_bytes(_socket.inet_pton(_socket.AF_INET, text), "big")
    except OSError:
        raise ValueError(f"not an IPv4 address: {text!r}") from None


def ip_text(n: int) -> str:
    return ".".join(str((n >> shift) & 255) for shift in (24, 16, 8, 0))


def net_ints(subnet: str) -> tuple[int, int]:
    """"10.89.5.0/24" -> (first address, size)."""
    base, _, prefix = str(subnet).partition("/")
    return ip_int(base), 1 << (32 - int(prefix or 32))

# /24s from 10.89.0.0/16, as podman does for its networks: far from docker's 172.17-31 and
# 192.168 pools. Every candidate that overlaps a route on this host (docker's, podman's, a VPN's,
# the LAN's) is skipped, so we never shadow anything another program routes.
POOL_TEXT = "10.89.0.0/16"
POOL_PREFIX = 24
DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "cmp0"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ContainerError(f"invalid network name {name!r}: use letters, digits, '_', '.', '-'")
    return name


def _digest(*parts: str) -> str:
    return sha256("\0".join(parts).encode()).hexdigest()


def bridge_name(network: str) -> str:
    """`cmpb` + 8 hex of the name's hash (Linux allows 15 characters); `cmp0` for "bridge"."""
    return DEFAULT_BRIDGE if network == DEFAULT_NETWORK else "cmpb" + _digest(network)[:8]


def veth_name(container_id: str, network: str) -> str:
    """Host end of a container's veth: `cmpv` + 11 hex, stable for (container, network)."""
    return "cmpv" + _digest(container_id, network)[:11]


def mac_for(address: str) -> str:
    """Locally administered MAC derived from the IPv4 address, as docker does (02:42:a:b:c:d)."""
    return "02:42:" + ":".join(f"{b:02x}" for b in ip_int(address).to_bytes(4, "big"))


def parse_subnet(text: str) -> IPv4Network:
    from ipaddress import IPv4Network

    try:
        net = IPv4Network(text, strict=True)
    except ValueError as err:
        raise ContainerError(f"invalid subnet {text!r}: {err}") from None
    if net.prefixlen > 30:
        raise ContainerError(f"subnet {text} is too small: at most /30")
    return net


def overlaps_any(net: IPv4Network, taken: Iterable[IPv4Network]) -> IPv4Network | None:
    for other in taken:
        if other.prefixlen > 0 and net.overlaps(other):  # the default route overlaps everything
            return other
    return None


def pick_subnet(taken: Iterable[IPv4Network], pool: IPv4Network | None = None,
                prefix: int = POOL_PREFIX) -> IPv4Network:
    """The first /prefix of the pool that overlaps nothing in `taken` (routes + our networks)."""
    from ipaddress import IPv4Network

    pool = IPv4Network(POOL_TEXT) if pool is None else pool
    taken = [t for t in taken if t.prefixlen > 0]
    for candidate in pool.subnets(new_prefix=prefix):
        if overlaps_any(candidate, taken) is None:
            return candidate
    raise ConflictError(f"no free subnet left in the address pool {pool}",
                        hint="remove unused networks or give the network a subnet")


def default_gateway(subnet: IPv4Network) -> IPv4Address:
    return subnet.network_address + 1


def check_gateway(subnet: IPv4Network, gateway: str) -> IPv4Address:
    from ipaddress import IPv4Address

    try:
        gw = IPv4Address(gateway)
    except ValueError:
        raise ContainerError(f"invalid gateway address {gateway!r}") from None
    if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
        raise ContainerError(f"gateway {gateway} is not a host address of subnet {subnet}")
    return gw


def allocate(subnet: IPv4Network | str, gateway: IPv4Address | str, used: Iterable[str], *, network: str,
             requested: str | None = None) -> str:
    """A requested address (checked) or the lowest free one; never the gateway. Integers only:
    this runs for every container start."""
    base, size = net_ints(str(subnet))
    last = base + size - 1
    busy = {ip_int(u) for u in used} | {ip_int(str(gateway))}
    if requested:
        try:
            addr = ip_int(requested)
        except ValueError:
            raise ContainerError(f"invalid IPv4 address {requested!r}") from None
        if not base <= addr <= last or addr in (base, last):
            raise ContainerError(f"address {requested} is not in network {network}'s subnet {subnet}")
        if addr in busy:
            raise ConflictError(f"address {requested} is already in use on network {network}")
        return ip_text(addr)
    # as ipaddress's hosts(): a /32 has its one address, a /31 both, larger ones all but the ends
    hosts = range(base, base + 1) if size == 1 else range(base, base + 2) if size == 2 else range(base + 1, last)
    for addr in hosts:
        if addr not in busy:
            return ip_text(addr)
    raise ConflictError(f"no free address left in network {network} ({subnet})")


def check_mac(mac: str) -> str:
    if not re.fullmatch(r"([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}", mac):
        raise ContainerError(f"invalid MAC address {mac!r}")
    if int(mac[:2], 16) & 1:
        raise ContainerError(f"MAC address {mac} is a multicast address")
    return mac.lower()


def is_ipv4(text: str) -> bool:
    try:
        ip_int(text)
    except ValueError:
        return False
    return True
