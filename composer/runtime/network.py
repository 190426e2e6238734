"""Container networks: one bridge per network, a veth per container, addresses, egress
masquerade, isolation and published ports (nft, see runtime.nft).

State: `<state_dir>/networks/<name>.json` holds a network and its endpoints, `ports.json` the
published ports; every change happens under one fcntl lock (`.lock`), so parallel starts from
threads or processes never hand out one address twice. Netlink work (runtime.rtnl) happens outside
the lock: an endpoint is recorded first and released again if the kernel side fails."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
TYPE_CHECKING = False  # typing itself is not imported: ~2 ms of start-up

from composer.errors import ConflictError, ContainerError, HostError, NotFoundError
from composer.runtime import ipam, rtnl
from composer.runtime.spec import NetworkAttachment, PortMapping

if TYPE_CHECKING:
    import socket

    from composer.runtime import proxy
    from composer.runtime.nft import Published

# nft, proxy, socket, subprocess, threading and pathlib are imported where used: a container's
# attach and detach need none of them, and they cost every `container run` on a bridge ~5 ms.

DEFAULT_STATE_DIR = "/run/composer"


@dataclass(frozen=True)
class NetworkInfo:
    """A network as recorded in the state dir: bridge, subnet, gateway."""

    name: str
    bridge: str
    subnet: str
    gateway: str
    internal: bool = False
    labels: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict:
        return {**self.__dict__, "labels": [list(kv) for kv in self.labels]}

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkInfo":
        return cls(d["name"], d["bridge"], d["subnet"], d["gateway"], bool(d.get("internal")),
                   tuple((k, v) for k, v in d.get("labels", ())))


@dataclass(frozen=True)
class Endpoint:
    """A container's attachment to a network: interface, address, gateway, host veth."""

    network: str
    container_id: str
    interface: str
    ipv4_address: str
    prefixlen: int
    gateway: str
    mac_address: str
    host_veth: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "Endpoint":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


class NetworkManager:
    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.state_dir = os.fspath(state_dir)
        self.dir = os.path.join(self.state_dir, "networks")
        self._scope = os.path.realpath(self.state_dir)

    @property
    def _tag(self) -> str:
        from composer.runtime import nft

        return nft.scope_tag(self._scope)

    # -- records ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(self.dir, exist_ok=True)
        # a fresh open file description per call: flock then also excludes our own threads
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, f"{ipam.check_name(name)}.json")

    def _write(self, path: str, data: object) -> None:
        head, name = os.path.split(path)
        tmp = os.path.join(head, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def _read(self, name: str):
        """The JSON file `name` in our dir; FileNotFoundError if absent."""
        with open(os.path.join(self.dir, name)) as f:
            return json.loads(f.read())

    def _load(self, name: str) -> tuple[NetworkInfo, dict[str, Endpoint]] | None:
        try:
            data = self._read(f"{ipam.check_name(name)}.json")
        except FileNotFoundError:
            return None
        eps = {cid: Endpoint.from_dict(e) for cid, e in data.get("endpoints", {}).items()}
        return NetworkInfo.from_dict(data["network"]), eps

    def _save(self, info: NetworkInfo, eps: dict[str, Endpoint]) -> None:
        self._write(self._path(info.name), {"network": info.to_dict(),
                                            "endpoints": {c: e.to_dict() for c, e in eps.items()}})

    def _all(self) -> list[tuple[NetworkInfo, dict[str, Endpoint]]]:
        try:
            names = sorted(os.listdir(self.dir))
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for name in names:
            if name.endswith(".json") and not name.startswith(".") and name not in ("ports.json", "proxies.json"):
                rec = self._load(name[:-5])
                if rec:
                    out.append(rec)
        return out

    def _ports(self) -> list[Published]:
        try:
            data = self._read("ports.json")
        except FileNotFoundError:
            return []
        from composer.runtime.nft import Published

        return [Published.from_dict(p) for p in data]

    def _save_ports(self, ports: list[Published]) -> None:
        self._write(os.path.join(self.dir, "ports.json"), [p.to_dict() for p in ports])

    def _proxies(self) -> dict[str, proxy.ProxyProcess]:
        """container id -> its userspace port proxy (ports published by the proxy driver)."""
        try:
            data = self._read("proxies.json")
        except FileNotFoundError:
            return {}
        from composer.runtime import proxy

        return {cid: proxy.ProxyProcess.from_dict(d) for cid, d in data.items()}

    def _save_proxies(self, procs: dict[str, proxy.ProxyProcess]) -> None:
        self._write(os.path.join(self.dir, "proxies.json"), {cid: p.to_dict() for cid, p in procs.items()})

    def _sync_firewall(self) -> None:
        from composer.runtime import nft

        networks = [info for info, _ in self._all()]
        proxied = self._proxies()  # their ports are the proxies' sockets, not DNAT rules
        nft.apply(nft.ruleset(self._tag, networks, [p for p in self._ports() if p.container_id not in proxied]))
        if not networks:
            nft.drop_table_if_empty()

    def _bridge_name(self, name: str) -> str:
        # Scoped by state dir so that a test's networks never collide with a running stack's;
        # the real state dir keeps the plain names (`cmp0` for "bridge").
        return ipam.bridge_name(name if self._scope == DEFAULT_STATE_DIR else f"{self._scope}\0{name}")

    # -- networks ---------------------------------------------------------------------------
    def get(self, name: str) -> NetworkInfo | None:
        rec = self._load(name)
        return rec[0] if rec else None

    def list(self) -> list[NetworkInfo]:
        return [info for info, _ in self._all()]

    def ensure(self, name: str, *, subnet: str | None = None, gateway: str | None = None,
               internal: bool = False, labels: Sequence[tuple[str, str]] = ()) -> NetworkInfo:
        """Create the network if missing (idempotent); recreate its bridge if it vanished."""
        with self._locked():
            rec = self._load(name)
            if rec:
                info = rec[0]
                if subnet and ipam.parse_subnet(subnet) != ipam.parse_subnet(info.subnet):
                    raise ConflictError(f"network {name} exists with subnet {info.subnet}, not {subnet}")
                with rtnl.Rtnl() as nl:
                    if nl.link_index(info.bridge) is None:
                        self._create_bridge(nl, info)
                        self._sync_firewall()
                return info
            info = self._new_network(name, subnet, gateway, internal, tuple(labels))
            with rtnl.Rtnl() as nl:
                nl.delete_link(info.bridge)  # no record: a leftover of a crash
                try:
                    self._create_bridge(nl, info)
                    self._save(info, {})
                    self._sync_firewall()
                    from composer.runtime import nft

                    nft.docker_user(True)
                except BaseException:
                    nl.delete_link(info.bridge)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self._path(name))
                    with contextlib.suppress(Exception):
                        self._sync_firewall()
                    raise
            return info

    def _new_network(self, name: str, subnet: str | None, gateway: str | None, internal: bool,
                     labels: tuple[tuple[str, str], ...]) -> NetworkInfo:
        with rtnl.Rtnl() as nl:
            taken = [net for net, _table in nl.routes()]
        ours = [ipam.parse_subnet(info.subnet) for info, _ in self._all()]
        if subnet:
            net = ipam.parse_subnet(subnet)
            clash = ipam.overlaps_any(net, taken + ours)
            if clash is not None:
                raise ConflictError(f"subnet {net} of network {name} overlaps {clash}, already in use on this host")
        else:
            net = ipam.pick_subnet(taken + ours)
        gw = ipam.check_gateway(net, gateway) if gateway else ipam.default_gateway(net)
        return NetworkInfo(name, self._bridge_name(name), str(net), str(gw), internal, labels)

    def _create_bridge(self, nl: rtnl.Rtnl, info: NetworkInfo) -> None:
        try:
            nl.add_bridge(info.bridge)
            index = nl.link_index(info.bridge)
            assert index is not None
            nl.add_address(index, info.gateway, int(info.subnet.partition("/")[2]))
        except OSError as err:
            raise ContainerError(f"cannot create bridge {info.bridge} for network {info.name}: {err.strerror}") from None
        from composer.runtime import nft

        nft.set_route_localnet(info.bridge)
        if not info.internal:
            nft.enable_ip_forward()

    def remove(self, name: str) -> None:
        """Delete bridge, rules and record. ConflictError while containers are attached.
        The bridge goes first (rtnl.delete_links_detached: gone from the host in ~3 ms, not the
        35-50 ms of a waited delete); the firewall sync and the DOCKER-USER cleanup are separate
        kernel waits (~30 ms each, mostly RCU grace periods), so they run side by side."""
        with self._locked():
            rec = self._load(name)
            if rec and rec[1]:
                ids = ", ".join(sorted(cid[:12] for cid in rec[1]))
                raise ConflictError(f"network {name} is in use by container(s) {ids}")
            bridge = rec[0].bridge if rec else self._bridge_name(name)
            rtnl.delete_links_detached([bridge])
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(name))
            from composer.runtime import nft

            # The DOCKER-USER accepts match every `cmp+` link: they stay while any composer bridge
            # (of any state dir) is left on the host.
            cleanup = _Background(nft.docker_user, False) if not _bridges_left() else None
            try:
                if self._all() or self._ports() or self._proxies() or not self._drop_own_table():
                    self._sync_firewall()
            finally:
                if cleanup is not None:
                    cleanup.join()

    def _drop_own_table(self) -> bool:
        """The scope's last network went: when the shared table holds no other scope's chains,
        delete it in one nft commit, instead of deleting our chains and then the table (each
        deleting commit waits 13-30 ms in the kernel). False: other scopes' chains are there."""
        import subprocess

        from composer.runtime import nft

        text = nft.table_text()
        chains = [line.split()[1] for line in text.splitlines() if line.strip().startswith("chain ")]
        if any(not c.endswith(f"_{self._tag}") for c in chains):
            return False
        if text:
            res = subprocess.run(["nft", "delete", "table", "ip", nft.TABLE], capture_output=True, text=True)
            if res.returncode != 0 and nft.table_text():
                return False  # let the full sync report what is wrong
        return True

    # -- endpoints --------------------------------------------------------------------------
    def connect(self, name: str, container_id: str, pid: int, attachment: NetworkAttachment,
                ifname: str, *, inside: bool = True) -> Endpoint:
        """Give the netns of `pid` an interface `ifname` on network `name`. inside=False: only the
        host side (veth, peer moved into the netns, bridge); the caller has the interface's address
        and routes set from within the netns (see inside_config: a container's start helper does)."""
        mac = ipam.check_mac(attachment.mac_address) if attachment.mac_address else None
        if name == ipam.DEFAULT_NETWORK:
            self.ensure(name)  # made on first use (see disconnect_all)
        with self._locked():
            rec = self._load(name)
            if rec is None:
                raise NotFoundError(f"network {name} not found")
            info, eps = rec
            old = eps.pop(container_id, None)
            used = [e.ipv4_address for e in eps.values()]
            addr = ipam.allocate(info.subnet, info.gateway, used, network=name,
                                 requested=attachment.ipv4_address or (old.ipv4_address if old else None))
            prefixlen = int(info.subnet.partition("/")[2])
            ep = Endpoint(name, container_id, ifname, addr, prefixlen, info.gateway,
                          mac or ipam.mac_for(addr), ipam.veth_name(container_id, name))
            eps[container_id] = ep
            self._save(info, eps)
        try:
            self._plumb(info, ep, pid, inside)
        except BaseException:
            self._release(container_id, {name})
            raise
        return ep

    def inside_config(self, ep: Endpoint) -> dict:
        """What configure_inside needs, as plain data (it crosses to the container's start helper)."""
        info = self.get(ep.network)
        internal = info.internal if info else False
        return {"network": ep.network, "ifname": ep.interface, "address": ep.ipv4_address,
                "prefixlen": ep.prefixlen, "gateway": None if internal else ep.gateway}

    def _plumb(self, info: NetworkInfo, ep: Endpoint, pid: int, inside: bool = True) -> None:
        try:
            netns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            raise ContainerError(f"container {ep.container_id[:12]} is not running (pid {pid})") from None
        try:
            with rtnl.Rtnl() as nl:
                nl.delete_link(ep.host_veth)  # left from a crash between create and record
                bridge = nl.link_index(info.bridge)
                if bridge is None:
                    raise ContainerError(f"bridge {info.bridge} of network {info.name} is missing")
                nl.add_veth(ep.host_veth, bridge, ep.interface, netns, ep.mac_address)
            if not inside:
                return
            with rtnl.in_netns(netns):
                with rtnl.Rtnl() as inner:
                    inner.set_up(inner.link_index("lo") or 1)
                rtnl.configure_inside([self.inside_config(ep)])
        except OSError as err:
            with contextlib.suppress(OSError), rtnl.Rtnl() as nl:
                nl.delete_link(ep.host_veth)
            what = "interface name in use" if err.errno == errno.EEXIST else err.strerror
            raise ContainerError(f"cannot attach container {ep.container_id[:12]} to network {info.name}: {what}") from None
        finally:
            os.close(netns)

    def _release(self, container_id: str, only: set[str] | None = None, *,
                 exited: bool = False, settle: bool = True) -> list[Endpoint]:
        """Forget the container's endpoints, then make sure their host veths are gone. exited:
        the container's processes are dead, so its veths go with its network namespace: wait for
        that (~1 ms) instead of deleting each (16-40 ms of netlink wait); delete what is left
        after VETH_GRACE (a namespace kept alive by a joined container). settle=False (exited
        only): a detached child does that wait and delete (rtnl.reap_detached), we return now."""
        gone = []
        with self._locked():
            for info, eps in self._all():
                if (only is None or info.name in only) and container_id in eps:
                    gone.append(eps.pop(container_id))
                    self._save(info, eps)
        veths = [ep.host_veth for ep in gone]
        if exited and not settle:
            rtnl.reap_detached(veths, VETH_GRACE)
            return gone
        if exited:
            veths = rtnl.wait_gone(veths, VETH_GRACE)
        if veths:
            rtnl.delete_links_detached(veths)
        return gone

    def disconnect_all(self, container_id: str, *, settle: bool = True) -> None:
        """Release addresses and remove host veths. Idempotent. Call it once the container's
        processes are dead (remove, a failed start's undo): the veths then vanish by themselves.
        The default network stays, like docker0: making and deleting its bridge costs ~110 ms,
        which every `container run --rm` would pay (measured: 0.13 s with it kept, 0.25 s without).
        `composer network rm bridge` (NetworkManager.remove) removes it when no container uses it.
        settle=False: return before the veths are gone (see _release), for a caller about to exit."""
        self._release(container_id, exited=True, settle=settle)

    def network_endpoints(self, name: str) -> list[Endpoint]:
        rec = self._load(name)
        return list(rec[1].values()) if rec else []

    def endpoints(self, container_id: str) -> list[Endpoint]:
        return [eps[container_id] for _, eps in self._all() if container_id in eps]

    # -- published ports --------------------------------------------------------------------
    def published(self, container_id: str | None = None) -> list[Published]:
        return [p for p in self._ports() if container_id is None or p.container_id == container_id]

    def check_ports(self, ports: Sequence[PortMapping], *, _exclude: str | None = None) -> None:
        """ConflictError naming the first requested host port that is taken. _exclude: a container
        being (re)started, whose own earlier records (and proxy sockets) do not count."""
        records = self._ports()
        taken = [p for p in records if p.container_id != _exclude]
        # sockets held by the container's own proxy (left from its last run) are its to take back
        own = [p for p in records if p.container_id == _exclude] if _exclude in self._proxies() else []
        seen: list[PortMapping] = []
        for m in ports:
            _check_mapping(m)
            if m.host_port == 0:
                continue
            if any(_clash(m.host_ip, m.host_port, m.protocol, o.host_ip, o.host_port, o.protocol)
                   for o in [*taken, *seen]) or not (
                    _host_port_free(m.host_ip, m.host_port, m.protocol)
                    or any(_clash(m.host_ip, m.host_port, m.protocol, o.host_ip, o.host_port, o.protocol) for o in own)):
                raise ConflictError(f"port {m.host_port}/{m.protocol} on {m.host_ip or '0.0.0.0'} is already in use")
            seen.append(m)

    def publish(self, container_id: str, address: str, ports: Sequence[PortMapping]) -> tuple[PortMapping, ...]:
        """DNAT host ports to address (or forward them with a userspace proxy when nft cannot be
        used, see runtime.proxy); host_port 0 gets a free port. Returns resolved mappings."""
        if not ipam.is_ipv4(address):
            raise ContainerError(f"cannot publish ports to {address!r}: not an IPv4 address")
        from composer.runtime import proxy

        use_proxy = proxy.port_driver() == "proxy"
        with self._locked():
            self._stop_proxy(container_id)  # an earlier start's proxy still holds this container's ports
            self.check_ports(ports, _exclude=container_id)
            if use_proxy:
                return self._publish_proxied(container_id, address, ports)
            others = [p for p in self._ports() if p.container_id != container_id]
            resolved: list[PortMapping] = []
            for m in ports:
                if m.host_port == 0:
                    m = replace(m, host_port=_free_port(m, [*others, *self._as_published(container_id, address, resolved)]))
                resolved.append(m)
            new = self._as_published(container_id, address, resolved)
            self._save_ports(others + new)
            try:
                self._sync_firewall()
            except HostError:
                self._save_ports(others)
                if proxy.forced_driver():
                    raise
                # nft runs but refuses the port rules (e.g. a kernel without nat expressions)
                return self._publish_proxied(container_id, address, ports)
            except BaseException:
                self._save_ports(others)
                raise
        return tuple(resolved)

    @staticmethod
    def _as_published(cid: str, address: str, ports: Sequence[PortMapping]) -> list[Published]:
        from composer.runtime.nft import Published

        return [Published(cid, address, m.container_port, m.host_port, m.host_ip, m.protocol) for m in ports]

    def _publish_proxied(self, container_id: str, address: str, ports: Sequence[PortMapping]) -> tuple[PortMapping, ...]:
        """Under the lock: bind every host port here (a taken one is a ConflictError now), then
        hand the sockets to one cmp-proxy process, recorded by pid and start time."""
        from composer.runtime import proxy

        others = [p for p in self._ports() if p.container_id != container_id]
        resolved: list[PortMapping] = []
        forwards: list[proxy.Forward] = []
        try:
            for m in ports:
                sock = _bind_published(m, [*others, *self._as_published(container_id, address, resolved)])
                forwards.append(proxy.Forward(sock, m.protocol, address, m.container_port))
                resolved.append(replace(m, host_port=sock.getsockname()[1]))
            try:
                proc = proxy.spawn(container_id, forwards)
            except OSError as err:
                raise ContainerError(f"cannot start the port proxy of container {container_id[:12]}: "
                                     f"{err.strerror}") from None
        finally:
            for f in forwards:
                f.sock.close()  # the proxy has its own copies
        self._save_proxies({**self._proxies(), container_id: proc})
        self._save_ports(others + self._as_published(container_id, address, resolved))
        return tuple(resolved)

    def _stop_proxy(self, container_id: str) -> bool:
        """Under the lock: kill the container's proxy (verified pid) and forget it. True if it had one."""
        procs = self._proxies()
        proc = procs.pop(container_id, None)
        if proc is None:
            return False
        from composer.runtime import proxy

        if not proxy.stop(proc):
            raise ContainerError(f"the port proxy (pid {proc.pid}) of container {container_id[:12]} did not exit")
        self._save_proxies(procs)
        return True

    def unpublish(self, container_id: str) -> None:
        with self._locked():
            proxied = self._stop_proxy(container_id)
            ports = self._ports()
            keep = [p for p in ports if p.container_id != container_id]
            if len(keep) != len(ports):
                self._save_ports(keep)
                if not proxied:  # a proxied container's ports never were nft rules
                    self._sync_firewall()

    def gc(self, live_container_ids: set[str]) -> None:
        """Forget endpoints and ports of containers that no longer exist (crash, reboot)."""
        dead = ({cid for _, eps in self._all() for cid in eps} | {p.container_id for p in self._ports()}
                | set(self._proxies()))
        for cid in dead - set(live_container_ids):
            self._release(cid, exited=True)
            self.unpublish(cid)


# How long a dead container's veth may take to vanish with its network namespace before it is
# deleted explicitly. Measured: ~1 ms after the last process in the namespace exits.
VETH_GRACE = 0.2


def _bridges_left() -> bool:
    """Any composer bridge (`cmpb*`, `cmp0`; veth host ends are `cmpv*`) in this network namespace,
    whichever state dir made it. Read from /proc/net/dev: it is our namespace's (unlike /sys/class/net,
    which shows the namespace sysfs was mounted in) and needs no rtnl lock, which a netlink dump would
    wait for while a just-deleted bridge is still being torn down (measured: 25-36 ms)."""
    try:
        with open("/proc/net/dev") as f:
            names = [line.split(":", 1)[0].strip() for line in f.readlines()[2:]]
    except OSError:
        return False
    return any(n.startswith("cmp") and not n.startswith("cmpv") for n in names)


class _Background:
    """fn(*args) in a thread; join() re-raises its exception in the caller."""

    def __init__(self, fn, *args) -> None:
        import threading

        self._error: BaseException | None = None

        def run() -> None:
            try:
                fn(*args)
            except BaseException as err:  # handed to join()
                self._error = err

        self._thread = threading.Thread(target=run, name="composer-net", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


# -- port helpers ------------------------------------------------------------------------------
def _check_mapping(m: PortMapping) -> None:
    if m.protocol not in ("tcp", "udp"):
        raise ContainerError(f"unsupported protocol {m.protocol!r} for port {m.container_port}: use tcp or udp")
    if not 0 < m.container_port < 65536 or not 0 <= m.host_port < 65536:
        raise ContainerError(f"invalid port mapping {m.host_port}:{m.container_port}")
    if m.host_ip and not ipam.is_ipv4(m.host_ip):
        raise ContainerError(f"invalid host address {m.host_ip!r} for port {m.container_port}")


def _clash(ip1: str, port1: int, proto1: str, ip2: str, port2: int, proto2: str) -> bool:
    wild = ("", "0.0.0.0")
    return port1 == port2 and proto1 == proto2 and (ip1 in wild or ip2 in wild or ip1 == ip2)


def _bind(host_ip: str, port: int, protocol: str) -> int:
    """Bind a throwaway socket; returns the port bound. Raises OSError."""
    import socket

    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        s.bind((host_ip or "0.0.0.0", port))
        return s.getsockname()[1]


def _host_port_free(host_ip: str, port: int, protocol: str) -> bool:
    try:
        _bind(host_ip, port, protocol)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            return False
        if err.errno == errno.EADDRNOTAVAIL:
            raise ContainerError(f"cannot publish port {port}: {host_ip} is not an address of this host") from None
        raise
    return True


def _bind_published(m: PortMapping, taken: Sequence[Published]) -> socket.socket:
    """The proxy driver's socket for m: its host port, or a free one not in `taken`."""
    from composer.runtime import proxy

    for _ in range(50):
        try:
            sock = proxy.bind(m.host_ip, m.host_port, m.protocol)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ConflictError(f"port {m.host_port}/{m.protocol} on {m.host_ip or '0.0.0.0'} is already in use") from None
            if err.errno == errno.EADDRNOTAVAIL:
                raise ContainerError(f"cannot publish port {m.host_port}: {m.host_ip} is not an address of this host") from None
            raise ContainerError(f"cannot publish port {m.host_port}/{m.protocol}: {err.strerror}") from None
        port = sock.getsockname()[1]
        if m.host_port or not any(_clash(m.host_ip, port, m.protocol, o.host_ip, o.host_port, o.protocol) for o in taken):
            return sock
        sock.close()
    raise ConflictError(f"no free host port for {m.container_port}/{m.protocol}")


def _free_port(m: PortMapping, taken: Sequence[Published]) -> int:
    for _ in range(50):
        port = _bind(m.host_ip, 0, m.protocol)  # the kernel's pick from the ephemeral range
        if not any(_clash(m.host_ip, port, m.protocol, o.host_ip, o.host_port, o.protocol) for o in taken):
            return port
    raise ConflictError(f"no free host port for {m.container_port}/{m.protocol}")
