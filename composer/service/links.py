"""How containers of a project see each other: /etc/hosts entries per shared network and Fig's
legacy link environment variables. Pure: works on Peer records (a running container as others
see it), built from ContainerInfo by `peer_from_info`, so it is unit tested without root."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

L_PROJECT = "composer.project"
L_SERVICE = "composer.service"
L_NUMBER = "composer.number"
L_ONEOFF = "composer.oneoff"
L_EXPOSED = "composer.exposed"  # "5432/tcp,80/tcp": what legacy links advertise


@dataclass(frozen=True)
class Peer:
    """A running container as the others of its project see it: names, addresses, link variables."""

    id: str
    name: str  # container name
    service: str
    number: int
    hostname: str
    addresses: tuple[tuple[str, str], ...] = ()  # (network real name, ipv4)
    aliases: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (network, aliases on it)
    env: tuple[tuple[str, str], ...] = ()
    exposed: tuple[tuple[int, str], ...] = ()  # (port, protocol), sorted
    oneoff: bool = False

    def address_on(self, network: str) -> str | None:
        return dict(self.addresses).get(network)

    @property
    def first_address(self) -> str | None:
        return self.addresses[0][1] if self.addresses else None


def parse_exposed(text: str) -> tuple[tuple[int, str], ...]:
    out = set()
    for item in filter(None, (text or "").split(",")):
        port, _, proto = item.partition("/")
        lo, _, hi = port.partition("-")
        try:
            for p in range(int(lo), int(hi or lo) + 1):
                out.add((p, proto or "tcp"))
        except ValueError:
            continue
    return tuple(sorted(out))


def format_exposed(ports: Iterable[tuple[int, str]]) -> str:
    return ",".join(f"{p}/{proto}" for p, proto in sorted(set(ports)))


def peer_from_info(info) -> Peer:
    """A runtime ContainerInfo -> Peer (addresses from its live endpoints)."""
    spec = info.spec
    try:
        number = int(spec.label(L_NUMBER) or 0)
    except ValueError:
        number = 0
    return Peer(
        id=info.id, name=info.name, service=spec.label(L_SERVICE) or "", number=number,
        hostname=spec.hostname or info.id[:12],
        addresses=tuple((e.network, e.ipv4_address) for e in info.endpoints),
        aliases=tuple((a.network, tuple(a.aliases)) for a in spec.networks),
        env=tuple(spec.env), exposed=parse_exposed(spec.label(L_EXPOSED) or ""),
        oneoff=spec.label(L_ONEOFF) == "True",
    )


def _dedupe(names: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for n in names:
        if n and n not in seen:
            seen[n] = None
    return tuple(seen)


def hosts_entries(networks: Sequence[str], peers: Iterable[Peer], *, links: Sequence[tuple[str, str]] = (),
                  external: Iterable[tuple[Peer, str]] = (), extra_hosts: Sequence[str] = (),
                  self_id: str | None = None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """/etc/hosts lines (beyond localhost and the container's own hostname) for a container on
    `networks`: every peer on a shared network under its service name, container name,
    `<service>-<n>`, hostname and aliases, plus the viewer's link aliases; then external links,
    then extra_hosts ("name:ip")."""
    link_aliases: dict[str, list[str]] = {}
    for svc, alias in links:
        link_aliases.setdefault(svc, []).append(alias)
    out: list[tuple[str, tuple[str, ...]]] = []
    nets = set(networks)
    ordered = sorted(peers, key=lambda p: (p.id != self_id, p.service, p.number, p.name))
    for peer in ordered:
        aliases = dict(peer.aliases)
        for net, ip in peer.addresses:
            if net not in nets:
                continue
            names: list[str] = []
            if not peer.oneoff:
                names += [peer.service, peer.name, f"{peer.service}-{peer.number}", peer.hostname]
                names += aliases.get(net, ())
                if self_id != peer.id:
                    names += link_aliases.get(peer.service, ())
            else:
                names += [peer.name, peer.hostname]
            out.append((ip, _dedupe(names)))
    for peer, alias in external:
        ip = next((ip for net, ip in peer.addresses if net in nets), peer.first_address)
        if ip:
            out.append((ip, _dedupe([alias, peer.name])))
    for item in extra_hosts:
        host, _, ip = item.partition(":")
        if host and ip:
            out.append((ip.strip("[]"), (host,)))
    return tuple(out)


def link_env(container_name: str, links: Sequence[tuple[str, Peer]]) -> tuple[tuple[str, str], ...]:
    """Docker's legacy link variables: for link alias `db` to a peer exposing 5432/tcp,
    DB_PORT, DB_PORT_5432_TCP{,_ADDR,_PORT,_PROTO}, DB_NAME=/<container>/db, DB_ENV_<X>."""
    out: list[tuple[str, str]] = []
    for alias, peer in links:
        ip = peer.first_address
        prefix = alias.upper().replace("-", "_").replace(".", "_")
        if ip and peer.exposed:
            port, proto = peer.exposed[0]
            out.append((f"{prefix}_PORT", f"{proto}://{ip}:{port}"))
            for port, proto in peer.exposed:
                key = f"{prefix}_PORT_{port}_{proto.upper()}"
                out += [(key, f"{proto}://{ip}:{port}"), (f"{key}_ADDR", ip), (f"{key}_PORT", str(port)),
                        (f"{key}_PROTO", proto)]
        out.append((f"{prefix}_NAME", f"/{container_name}/{alias}"))
        for key, value in peer.env:
            if key not in ("HOME", "PATH", "HOSTNAME"):  # docker leaves out what every container has
                out.append((f"{prefix}_ENV_{key}", value))
    return tuple(out)
