"""Published ports of a state dir's containers: the table (`networks/ports.json`, and
`proxies.json` for ports forwarded by a userspace proxy) and the checks and binds that hand out
host ports. NAT rules come from the table through NetworkManager's firewall sync (runtime.net.nft);
where nft cannot be used, runtime.net.proxy forwards. Split from runtime.net.network so that attaching a
container, which every bridge start does, loads none of this."""

from __future__ import annotations

import errno
import os
from dataclasses import replace

from composer.errors import ConflictError, ContainerError, DamagedRecordError, HostError
from composer.runtime import records
from composer.runtime.net import ipam

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Sequence

    from composer.runtime.net import proxy
    from composer.runtime.net.network import NetworkManager
    from composer.runtime.net.nft import Published  # nft (subprocess, shutil) is imported where used
    from composer.runtime.spec import PortMapping


class PortTable:
    """The published ports of `nm`'s state dir; every change under nm's lock."""

    def __init__(self, nm: "NetworkManager") -> None:
        self.nm = nm

    def records(self) -> list[Published]:
        from composer.runtime.net.nft import Published

        try:
            return [Published.from_dict(p) for p in self.nm._read("ports.json", list)]
        except FileNotFoundError:
            return []
        except (DamagedRecordError, TypeError, KeyError) as e:
            err = e if isinstance(e, DamagedRecordError) else DamagedRecordError(
                os.path.join(self.nm.dir, "ports.json"), f"not a port table: {e!r}")
            records.damaged(err, "rebuilt from the containers' states")
            return _from_states(self.nm.state_dir)

    def _save(self, ports: list[Published]) -> None:
        self.nm._write(os.path.join(self.nm.dir, "ports.json"), [p.to_dict() for p in ports])

    def proxies(self) -> dict[str, proxy.ProxyProcess]:
        """container id -> its userspace port proxy (ports published by the proxy driver)."""
        try:
            data = self.nm._read("proxies.json", dict)
        except FileNotFoundError:
            return {}
        except DamagedRecordError as err:
            from composer.runtime.net import proxy

            records.damaged(err, "its proxies are found by their command line")
            return proxy.find(self.nm.state_dir)
        from composer.runtime.net import proxy

        return {cid: proxy.ProxyProcess.from_dict(d) for cid, d in data.items()}

    def _save_proxies(self, procs: dict[str, proxy.ProxyProcess]) -> None:
        self.nm._write(os.path.join(self.nm.dir, "proxies.json"), {cid: p.to_dict() for cid, p in procs.items()})

    def published(self, container_id: str | None = None) -> list[Published]:
        return [p for p in self.records() if container_id is None or p.container_id == container_id]

    def check_ports(self, ports: Sequence[PortMapping], *, _exclude: str | None = None) -> None:
        """ConflictError naming the first requested host port that is taken. _exclude: a container
        being (re)started, whose own earlier records (and proxy sockets) do not count."""
        records = self.records()
        taken = [p for p in records if p.container_id != _exclude]
        # sockets held by the container's own proxy (left from its last run) are its to take back
        own = [p for p in records if p.container_id == _exclude] if _exclude in self.proxies() else []
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
        used, see runtime.net.proxy); host_port 0 gets a free port. Returns resolved mappings."""
        if not ipam.is_ipv4(address):
            raise ContainerError(f"cannot publish ports to {address!r}: not an IPv4 address")
        from composer.runtime.net import proxy

        use_proxy = proxy.port_driver() == "proxy"
        with self.nm._locked():
            self._stop_proxy(container_id)  # an earlier start's proxy still holds this container's ports
            self.check_ports(ports, _exclude=container_id)
            if use_proxy:
                return self._publish_proxied(container_id, address, ports)
            others = [p for p in self.records() if p.container_id != container_id]
            resolved: list[PortMapping] = []
            for m in ports:
                if m.host_port == 0:
                    m = replace(m, host_port=_free_port(m, [*others, *self._as_published(container_id, address, resolved)]))
                resolved.append(m)
            new = self._as_published(container_id, address, resolved)
            self._save(others + new)
            try:
                self.nm._sync_firewall()
            except HostError:
                self._save(others)
                if proxy.forced_driver():
                    raise
                # nft runs but refuses the port rules (e.g. a kernel without nat expressions)
                return self._publish_proxied(container_id, address, ports)
            except BaseException:
                self._save(others)
                raise
        return tuple(resolved)

    @staticmethod
    def _as_published(cid: str, address: str, ports: Sequence[PortMapping]) -> list[Published]:
        from composer.runtime.net.nft import Published

        return [Published(cid, address, m.container_port, m.host_port, m.host_ip, m.protocol) for m in ports]

    def _publish_proxied(self, container_id: str, address: str, ports: Sequence[PortMapping]) -> tuple[PortMapping, ...]:
        """Under the lock: bind every host port here (a taken one is a ConflictError now), then
        hand the sockets to one cmp-proxy process, recorded by pid and start time."""
        from composer.runtime.net import proxy

        others = [p for p in self.records() if p.container_id != container_id]
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
        self._save_proxies({**self.proxies(), container_id: proc})
        self._save(others + self._as_published(container_id, address, resolved))
        return tuple(resolved)

    def _stop_proxy(self, container_id: str) -> bool:
        """Under the lock: kill the container's proxy (verified pid) and forget it. True if it had one."""
        procs = self.proxies()
        proc = procs.pop(container_id, None)
        if proc is None:
            return False
        from composer.runtime.net import proxy

        if not proxy.stop(proc):
            raise ContainerError(f"the port proxy (pid {proc.pid}) of container {container_id[:12]} did not exit")
        self._save_proxies(procs)
        return True

    def unpublish(self, container_id: str) -> None:
        with self.nm._locked():
            proxied = self._stop_proxy(container_id)
            ports = self.records()
            keep = [p for p in ports if p.container_id != container_id]
            if len(keep) != len(ports):
                self._save(keep)
                if not proxied:  # a proxied container's ports never were nft rules
                    self.nm._sync_firewall()


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
    from composer.runtime.net import proxy

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


def _from_states(state_dir: str) -> list[Published]:
    """The port table as the containers' states record it (each publishes on its first endpoint's address)."""
    from composer.runtime.net.nft import Published

    out = []
    base = os.path.join(state_dir, "containers")
    for cid in sorted(os.listdir(base)) if os.path.isdir(base) else ():
        try:
            s = records.read_dict(os.path.join(base, cid, "state.json"))
        except (OSError, DamagedRecordError):
            continue
        eps, ports = s.get("endpoints") or (), s.get("ports") or ()
        if not eps or not ports:
            continue
        for p in ports:
            try:
                out.append(Published(cid, eps[0]["ipv4_address"], int(p["container_port"]), int(p["host_port"]),
                                     p.get("host_ip", ""), p.get("protocol", "tcp")))
            except (KeyError, TypeError, ValueError):
                continue
    return out
