"""A minimal rtnetlink client: just the messages container networking needs (bridge and veth
create/delete, master/up, address, route add and dump).

Why not pyroute2: measured here, `import pyroute2` costs 110-140 ms (75 ms even when its package
__init__ is bypassed), which alone exceeds the budget of a whole `composer container run`. These
few messages cost ~1 ms to import and ~4 ms per container attach.

A Netlink socket belongs to the network namespace of the thread that created it, so callers switch
a thread into a container's namespace (`in_netns`), open a socket there and switch back. setns with
CLONE_NEWNET is per thread, so this is safe in the threaded CLI."""

from __future__ import annotations

import _socket as socket  # socket.py's enums cost a `container run` on a bridge ~1.5 ms; the C half has all used here
import contextlib
import errno
import os
import struct
import time
from collections.abc import Iterator, Sequence

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR = 20
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
RTM_NEWNEIGH, NDA_DST, NDA_LLADDR, NUD_STALE = 28, 1, 2, 0x04
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_REPLACE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x300, 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_GATEWAY, RTA_TABLE = 1, 5, 15
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST = 254, 4, 1
CLONE_NEWNET = 0x40000000

_NLMSG = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTA = struct.Struct("=HH")
_NDMSG = struct.Struct("=BxxxiHBB")



def _attr(kind: int, payload: bytes) -> bytes:
    length = _RTA.size + len(payload)
    return _RTA.pack(length, kind) + payload + b"\0" * (-length % 4)


def _name(value: str) -> bytes:
    return value.encode() + b"\0"


def _attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + _RTA.size <= len(data):
        length, kind = _RTA.unpack_from(data, pos)
        if length < _RTA.size:
            break
        yield kind & 0x3FFF, data[pos + _RTA.size:pos + length]
        pos += (length + 3) & ~3


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP if up else 0)


def _mac(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


class Rtnl:
    """One NETLINK_ROUTE socket, bound to the netns of the thread that creates it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "Rtnl":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------
    def _send(self, msg_type: int, flags: int, body: bytes) -> int:
        self._seq += 1
        self._sock.send(_NLMSG.pack(_NLMSG.size + len(body), msg_type, flags, self._seq, 0) + body)
        return self._seq

    def request(self, msg_type: int, body: bytes, flags: int = 0) -> None:
        """Send one request and wait for its ack; a kernel error becomes OSError(errno)."""
        seq = self._send(msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, body)
        for kind, payload in self._receive(seq):
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", payload)[0]
                if code:
                    raise OSError(code, os.strerror(code))
                return

    def dump(self, msg_type: int, body: bytes) -> list[bytes]:
        seq = self._send(msg_type, NLM_F_REQUEST | NLM_F_DUMP, body)
        out = []
        for kind, payload in self._receive(seq):
            if kind == NLMSG_DONE:
                return out
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", payload)[0]
                raise OSError(code, os.strerror(code))
            out.append(payload)
        return out

    def _receive(self, seq: int) -> Iterator[tuple[int, bytes]]:
        while True:
            data = self._sock.recv(1 << 16)
            pos = 0
            while pos + _NLMSG.size <= len(data):
                length, kind, _flags, mseq, _pid = _NLMSG.unpack_from(data, pos)
                payload = data[pos + _NLMSG.size:pos + length]
                pos += (length + 3) & ~3
                if mseq == seq:
                    yield kind, payload
                    if kind in (NLMSG_ERROR, NLMSG_DONE):
                        return

    # -- links -----------------------------------------------------------------------------
    def add_bridge(self, name: str) -> None:
        info = _attr(IFLA_INFO_KIND, _name("bridge"))
        body = _ifinfo(up=True) + _attr(IFLA_IFNAME, _name(name)) + _attr(IFLA_LINKINFO, info)
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_veth(self, name: str, master: int, peer: str, peer_netns_fd: int, peer_mac: str) -> None:
        """Host end `name` enslaved to `master` and up; peer created directly in the target netns."""
        peer_body = (_ifinfo() + _attr(IFLA_IFNAME, _name(peer)) + _attr(IFLA_ADDRESS, _mac(peer_mac))
                     + _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd)))
        info = _attr(IFLA_INFO_KIND, _name("veth")) + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_body))
        body = (_ifinfo(up=True) + _attr(IFLA_IFNAME, _name(name)) + _attr(IFLA_MASTER, struct.pack("=I", master))
                + _attr(IFLA_LINKINFO, info))
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def delete_link(self, name: str) -> bool:
        """Delete by name; False if it did not exist."""
        try:
            self.request(RTM_DELLINK, _ifinfo() + _attr(IFLA_IFNAME, _name(name)))
        except OSError as err:
            if err.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    def link_index(self, name: str) -> int | None:
        try:
            return socket.if_nametoindex(name)
        except OSError:
            return None

    def links(self) -> list[tuple[int, str, str]]:
        """(index, name, kind) of every link in this socket's namespace; kind "" for plain devices."""
        found = []
        for payload in self.dump(RTM_GETLINK, _ifinfo()):
            index = _IFINFO.unpack_from(payload)[2]
            name = kind = ""
            for attr, value in _attrs(payload[_IFINFO.size:]):
                if attr == IFLA_IFNAME:
                    name = value.rstrip(b"\0").decode()
                elif attr == IFLA_LINKINFO:
                    kind = next((v.rstrip(b"\0").decode() for a, v in _attrs(value) if a == IFLA_INFO_KIND), "")
            found.append((index, name, kind))
        return found

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, _ifinfo(index, up=True))

    def set_neighbour(self, index: int, address: str, mac: str) -> None:
        """`ip neigh replace ADDRESS lladdr MAC dev INDEX nud stale`: a container's (known) MAC for
        its address on the bridge. A packet sent while the container was restarting leaves an
        INCOMPLETE entry whose next ARP probe comes a second later (retrans_time): the restarted
        container would answer only then. STALE is used at once and verified later by the kernel."""
        body = (_NDMSG.pack(socket.AF_INET, index, NUD_STALE, 0, 0)
                + _attr(NDA_DST, socket.inet_pton(socket.AF_INET, address)) + _attr(NDA_LLADDR, _mac(mac)))
        self.request(RTM_NEWNEIGH, body, NLM_F_CREATE | NLM_F_REPLACE)

    # -- addresses and routes --------------------------------------------------------------
    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        addr = socket.inet_pton(socket.AF_INET, address)  # no ipaddress: ~1.2 ms of every start
        host_bits = (1 << (32 - prefixlen)) - 1
        broadcast = (int.from_bytes(addr, "big") | host_bits).to_bytes(4, "big")
        body = (_IFADDR.pack(socket.AF_INET, prefixlen, 0, 0, index) + _attr(IFA_LOCAL, addr)
                + _attr(IFA_ADDRESS, addr) + _attr(IFA_BROADCAST, broadcast))
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, gateway: str) -> None:
        body = (_RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, 0, RTN_UNICAST, 0)
                + _attr(RTA_GATEWAY, socket.inet_pton(socket.AF_INET, gateway)))
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)

    def _route_entries(self) -> Iterator[tuple[bytes, int, int]]:
        """(destination, prefix length, table) of every IPv4 route of every table."""
        for payload in self.dump(RTM_GETROUTE, _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)):
            _fam, dst_len, _s, _t, table, _p, _sc, _ty, _f = _RTMSG.unpack_from(payload)
            dst = b"\0\0\0\0"
            for kind, value in _attrs(payload[_RTMSG.size:]):
                if kind == RTA_DST:
                    dst = value
                elif kind == RTA_TABLE:
                    table = struct.unpack("=I", value)[0]
            yield dst, dst_len, table

    def routes(self) -> list[tuple[ipaddress.IPv4Network, int]]:  # noqa: F821
        """Every IPv4 route of every table as (destination, table)."""
        import ipaddress  # only when a network is made

        return [(ipaddress.IPv4Network((ipaddress.IPv4Address(dst), dst_len), strict=False), table)
                for dst, dst_len, table in self._route_entries()]

    def has_default_route(self) -> bool:
        """A default route in the main table (without ipaddress: on every container attach)."""
        return any(dst_len == 0 and table == RT_TABLE_MAIN for _dst, dst_len, table in self._route_entries())


def link_exists(name: str) -> bool:
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def wait_gone(names: Sequence[str], timeout: float) -> list[str]:
    """Poll until no link of `names` exists (or timeout); returns those still there.
    A veth goes with its container's network namespace ~1 ms after the last process in it dies
    (the kernel unregisters a dying namespace's devices in one batch), while deleting it over
    netlink costs 16-40 ms (synchronize_net and the netdev refcount wait, per request)."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        left = [n for n in names if link_exists(n)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(delay)
        delay = min(delay * 2, 0.001)  # a veth goes 3-10 ms after its netns' last process: a coarser poll adds up to half that


def delete_links_detached(names: Sequence[str], timeout: float = 1.0) -> None:
    """Delete links, returning as soon as their names are gone from this namespace.

    A RTM_DELLINK is answered only after the kernel's teardown (rcu barrier, refcount wait: 35-50 ms
    for a bridge), but the device leaves the namespace ~1 ms after the request: from then on no
    listing shows it and the name can be reused. The request is sent by `ip link delete` started
    in its own session with no descriptor of ours, so neither we nor a caller reading our output wait
    for that teardown. Whatever is still listed after `timeout` (or when `ip` is missing) is deleted
    here, synchronously, so that a kernel error still surfaces as OSError."""
    present = [n for n in names if link_exists(n)]
    ip = _which("ip") if present else None
    if ip:
        import subprocess

        for name in present:
            try:
                subprocess.Popen([ip, "link", "delete", "dev", name], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            except OSError:
                break
        present = wait_gone(present, timeout)
    if present:
        with Rtnl() as nl:
            for name in present:
                nl.delete_link(name)


def _which(name: str) -> str | None:
    """shutil.which for one name, without importing shutil (~2 ms of a `container run`)."""
    for d in (os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        path = os.path.join(d or ".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def reap_detached(names: Sequence[str], grace: float) -> None:
    """Make sure that the links `names` of dead containers go, without waiting for them here.

    A dead container's veth vanishes with its network namespace 3-12 ms after the last process
    (the namespace's teardown runs in a kernel workqueue), a wait that every `container run --rm`
    on a bridge would pay. Its address is released already, and the name is the container's own,
    so nothing needs it any more. A shell spawned in its own session (posix_spawn: no fork of this
    big, possibly threaded process; only stdio, and that from /dev/null) waits `grace` and deletes
    what is still there: a namespace kept alive, e.g. by a joined container."""
    present = [n for n in names if link_exists(n)]
    if not present:
        return
    sh, ip = _which("sh"), _which("ip")
    if not sh or not ip:  # nothing to spawn: wait and delete here, as the synchronous path does
        left = wait_gone(present, grace)
        if left:
            delete_links_detached(left)
        return
    script = f'sleep {grace}; for n in "$@"; do [ -e /sys/class/net/"$n" ] && {ip} link delete dev "$n"; done'
    null = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    try:
        os.posix_spawn(sh, [sh, "-c", script, "sh", *present], {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                       file_actions=null, setsid=True)
    except OSError:
        left = wait_gone(present, grace)
        if left:
            delete_links_detached(left)


def configure_inside(nets: Sequence[dict]) -> None:
    """Run inside a container's netns (by its start helper, or a thread in_netns): each interface
    gets its address and goes up; the first network with a gateway gives the default route."""
    with Rtnl() as nl:
        for n in nets:
            index = nl.link_index(n["ifname"])
            if index is None:
                raise OSError(errno.ENODEV, f"no interface {n['ifname']}")
            nl.add_address(index, n["address"], n["prefixlen"])
            nl.set_up(index)
            if n.get("gateway") and not nl.has_default_route():
                nl.add_default_route(n["gateway"])


def setns(fd: int) -> None:
    from composer.runtime import syscalls  # ctypes, loaded on first use: only callers of in_netns pay

    syscalls.setns(fd, CLONE_NEWNET)


@contextlib.contextmanager
def in_netns(netns_fd: int) -> Iterator[None]:
    """Run the body with THIS thread in another network namespace, then return to our own."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(netns_fd)
        try:
            yield
        finally:
            setns(own)  # failing here would leave the thread in the container: let it raise loudly
    finally:
        os.close(own)
