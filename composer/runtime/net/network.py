"""Container networks: one bridge per network, a veth per container, addresses, egress
masquerade and isolation (nft, see runtime.net.nft); published ports are runtime.net.ports.

State: `<state_dir>/networks/<name>.json` holds a network and its endpoints, `ports.json` the
published ports; every change happens under one fcntl lock (`.lock`), so parallel starts from
threads or processes never hand out one address twice. Netlink work (runtime.net.rtnl) happens outside
the lock: an endpoint is recorded first and released again if the kernel side fails."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
TYPE_CHECKING = False  # typing itself is not imported: ~2 ms of start-up

from composer.errors import ConflictError, ContainerError, DamagedRecordError, NotFoundError
from composer.runtime import records
from composer.runtime.net import ipam, rtnl
from composer.runtime.net.records import Endpoint, NetworkInfo
from composer.runtime.spec import NetworkAttachment

if TYPE_CHECKING:
    from composer.runtime.net.ports import PortTable

# nft, ports, subprocess and threading are imported where used: a container's attach and
# detach need none of them, and they cost every `container run` on a bridge ~5 ms.

DEFAULT_STATE_DIR = "/run/composer"


class NetworkManager:
    def __init__(self, state_dir: str | os.PathLike) -> None:
        self.state_dir = os.fspath(state_dir)
        self.dir = os.path.join(self.state_dir, "networks")
        self._scope = os.path.realpath(self.state_dir)
        self._seen: dict[str, NetworkInfo] = {}  # as reserve() last read them: plumb needs no re-read
        self._deferred: list[str] | None = None  # host veths whose wait defer_settling() put off

    @property
    def _tag(self) -> str:
        from composer.runtime.net import nft

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

    def _read(self, name: str, kind: type = object):
        """The record `name` in our dir; FileNotFoundError if absent, DamagedRecordError if damaged."""
        return records.read(os.path.join(self.dir, name), kind)

    def _load(self, name: str, *, strict: bool = False) -> tuple[NetworkInfo, dict[str, Endpoint]] | None:
        """The network and its endpoints. A damaged record: None, said once (its bridge is then found by
        its tag, project.recovery, and `down` removes it); strict: DamagedRecordError (a change would
        build on it)."""
        path = f"{ipam.check_name(name)}.json"
        try:
            data = self._read(path, dict)
            eps = {cid: Endpoint.from_dict(e) for cid, e in data.get("endpoints", {}).items()}
            return NetworkInfo.from_dict(data["network"]), eps
        except FileNotFoundError:
            return None
        except (KeyError, TypeError, ValueError, AttributeError, DamagedRecordError) as e:
            err = e if isinstance(e, DamagedRecordError) else DamagedRecordError(
                os.path.join(self.dir, path), f"not a network record: {e!r}")
            if strict:
                err.hint = "`composer down` removes what it recorded, found on the host; then up again"
                raise err from None
            records.damaged(err, "its bridge and endpoints are found on the host")
            return None

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

    @property
    def ports(self) -> PortTable:
        """The published ports of this state dir's containers."""
        from composer.runtime.net.ports import PortTable

        return PortTable(self)

    def _sync_firewall(self) -> None:
        from composer.runtime.net import nft

        networks = [info for info, _ in self._all()]
        ports = self.ports
        proxied = ports.proxies()  # their ports are the proxies' sockets, not DNAT rules
        nft.apply(nft.ruleset(self._tag, networks, [p for p in ports.records() if p.container_id not in proxied]))
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
            rec = self._load(name, strict=True)
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
                    from composer.runtime.net import nft

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
        from composer.runtime.net import nft

        nft.set_route_localnet(info.bridge)
        if not info.internal:
            nft.enable_ip_forward()

    def remove(self, name: str) -> None:
        """Delete bridge, rules and record. ConflictError while containers are attached.

        Ordered by what the kernel makes each step wait for (`down`'s last ~60 ms):
        - the firewall (an nft commit for our table, one iptables-restore for DOCKER-USER: ~20 ms
          each, RCU grace periods) starts first, in the background: nothing in it needs the bridge;
        - the veths of the containers just removed are waited for (settle(): they go with their
          network namespace, one RCU grace period after the last listening socket in it closed,
          15-25 ms) *before* the bridge goes: a bridge's teardown holds the rtnl lock for 35-50
          ms, and the namespace cleanup that takes the veths would queue behind it;
        - the bridge then goes detached (rtnl.delete_links_detached: gone from the host in ~3 ms)."""
        with self._locked():
            rec = self._load(name)
            if rec and rec[1]:
                ids = ", ".join(sorted(cid[:12] for cid in rec[1]))
                raise ConflictError(f"network {name} is in use by container(s) {ids}")
            from composer.runtime.net import nft

            last = not any(info.name != name for info, _ in self._all())  # the scope's last network
            bridge = rec[0].bridge if rec else self._bridge_name(name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(name))  # first: the firewall below is made from the records left
            firewall = _Background(self._firewall_without, last)
            # The DOCKER-USER accepts match every `cmp+` link: they stay while any composer bridge
            # (of any state dir) other than this one is left on the host.
            cleanup = _Background(nft.docker_user, False) if not _bridges_left(but=bridge) else None
            try:
                self.settle()
                rtnl.delete_links_detached([bridge])
            finally:
                firewall.join()
                if cleanup is not None:
                    cleanup.join()

    def _firewall_without(self, last: bool) -> None:
        """The firewall once a network's record is gone: the scope's last network drops our whole
        table in one commit when nothing else of the scope is in it, else the scope's chains are
        written again without it."""
        from composer.runtime.net import nft

        text = nft.table_text() if last else None
        if (text is None or self._all() or self.ports.records() or self.ports.proxies()
                or not self._drop_own_table(text)):
            self._sync_firewall()

    def _drop_own_table(self, text: str) -> bool:
        """The scope's last network went: when the shared table (listed: `text`) holds no other
        scope's chains, delete it in one nft commit, instead of deleting our chains and then the
        table (each deleting commit waits 13-30 ms in the kernel). False: other scopes' chains
        are there."""
        import subprocess

        from composer.runtime.net import nft

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
        """Give the netns of `pid` an interface `ifname` on network `name`: reserve, then plumb."""
        return self.plumb(self.reserve(name, container_id, attachment, ifname), pid, inside=inside)

    def reserve(self, name: str, container_id: str, attachment: NetworkAttachment, ifname: str) -> Endpoint:
        """Record the container's endpoint on network `name` (address, MAC, veth name): all of an
        attach that needs no process yet, so a start does it while the monitor forks."""
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
        self._seen[name] = info
        return ep

    def _info_of(self, name: str) -> NetworkInfo | None:
        """The network as reserve() read it (no second read on a start), else from its record."""
        return self._seen.get(name) or self.get(name)

    def plumb(self, ep: Endpoint, pid: int, *, inside: bool = True) -> Endpoint:
        """The kernel side of a reserved endpoint: a veth into the netns of `pid`, enslaved to the
        bridge. inside=False: only the host side; the caller has the interface's address and routes
        set from within the netns (see inside_config: a container's start helper does). A failure
        releases the endpoint."""
        try:
            self._plumb(ep, pid, inside)
        except BaseException:
            self._release(ep.container_id, {ep.network})
            raise
        return ep

    def inside_config(self, ep: Endpoint) -> dict:
        """What configure_inside needs, as plain data (it crosses to the container's start helper)."""
        info = self._info_of(ep.network)
        internal = info.internal if info else False
        return {"network": ep.network, "ifname": ep.interface, "address": ep.ipv4_address,
                "prefixlen": ep.prefixlen, "gateway": None if internal else ep.gateway}

    def _plumb(self, ep: Endpoint, pid: int, inside: bool = True) -> None:
        info = self._info_of(ep.network)
        bridge_name = info.bridge if info else self._bridge_name(ep.network)
        try:
            netns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            raise ContainerError(f"container {ep.container_id[:12]} is not running (pid {pid})") from None
        try:
            with rtnl.Rtnl() as nl:
                bridge = nl.link_index(bridge_name)
                if bridge is None:
                    raise ContainerError(f"bridge {bridge_name} of network {ep.network} is missing")
                try:
                    nl.add_veth(ep.host_veth, bridge, ep.interface, netns, ep.mac_address)
                except FileExistsError:  # left from a crash between create and record
                    nl.delete_link(ep.host_veth)
                    nl.add_veth(ep.host_veth, bridge, ep.interface, netns, ep.mac_address)
                with contextlib.suppress(OSError):  # a restarted container answers at once (rtnl.set_neighbour)
                    nl.set_neighbour(bridge, ep.ipv4_address, ep.mac_address)
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
            raise ContainerError(f"cannot attach container {ep.container_id[:12]} to network {ep.network}: {what}") from None
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
        if exited and settle and self._deferred is not None:
            self._deferred.extend(veths)  # settle() waits for them, all at once
            return gone
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

    def defer_settling(self) -> None:
        """From now on a dead container's release (disconnect_all) returns without waiting for
        its host veths to vanish with its network namespace; settle() waits for all of them at
        once. `down` removes the networks meanwhile: each wait took 30-40 ms (the kernel's netns
        teardown, under load), before the bridge and firewall removal instead of beside it."""
        if self._deferred is None:
            self._deferred = []

    def settle(self) -> None:
        """The waits defer_settling() put off: until those veths are gone, deleting what is left
        after VETH_GRACE (as _release does). Idempotent; ends the deferral."""
        veths, self._deferred = self._deferred or [], None
        left = rtnl.wait_gone(veths, VETH_GRACE) if veths else []
        if left:
            rtnl.delete_links_detached(left)

    def network_endpoints(self, name: str) -> list[Endpoint]:
        rec = self._load(name)
        return list(rec[1].values()) if rec else []

    def endpoints(self, container_id: str) -> list[Endpoint]:
        return [eps[container_id] for _, eps in self._all() if container_id in eps]

    def gc(self, live_container_ids: set[str]) -> None:
        """Forget endpoints and ports of containers that no longer exist (crash, reboot)."""
        ports = self.ports
        dead = ({cid for _, eps in self._all() for cid in eps} | {p.container_id for p in ports.records()}
                | set(ports.proxies()))
        for cid in dead - set(live_container_ids):
            self._release(cid, exited=True)
            ports.unpublish(cid)


# How long a dead container's veth may take to vanish with its network namespace before it is
# deleted explicitly. Measured: ~1 ms after the last process in the namespace exits.
VETH_GRACE = 0.2


def _bridges_left(but: str = "") -> bool:
    """Any composer bridge (`cmpb*`, `cmp0`; veth host ends are `cmpv*`) in this network namespace,
    whichever state dir made it, other than `but`. Read from /proc/net/dev: it is our namespace's (unlike /sys/class/net,
    which shows the namespace sysfs was mounted in) and needs no rtnl lock, which a netlink dump would
    wait for while a just-deleted bridge is still being torn down (measured: 25-36 ms)."""
    try:
        with open("/proc/net/dev") as f:
            names = [line.split(":", 1)[0].strip() for line in f.readlines()[2:]]
    except OSError:
        return False
    return any(n.startswith("cmp") and not n.startswith("cmpv") and n != but for n in names)


class _Background:
    """fn(*args) in a thread; join() re-raises its exception in the caller."""

    def __init__(self, fn, *args) -> None:
        import threading

        self._error: BaseException | None = None
        self._result = None

        def run() -> None:
            try:
                self._result = fn(*args)
            except BaseException as err:  # handed to join()
                self._error = err

        self._thread = threading.Thread(target=run, name="composer-net", daemon=True)
        self._thread.start()

    def join(self):
        """fn's result, or its exception raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


