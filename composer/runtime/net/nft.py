"""Firewall for composer networks: one nft table `ip composer`, text generated from state.

Each state dir (a "scope": the real /run/composer, or a test's temp dir) owns its own chains,
suffixed with a tag, inside the one table; a sync replaces exactly that scope's chains in one
atomic `nft -f -` transaction, so a test never wipes the rules of a stack that is running.
Rules carry comments naming their network or container.

Traffic between containers of one network when dockerd set FORWARD to DROP (measured here in a
private netns with FORWARD DROP + br_netfilter): a drop in any table is final and an accept in our
table does not override it; setting our bridge's IFLA_BR_NF_CALL_IPTABLES to 0 does NOT help
either, because the kernel ORs it with the per-netns bridge-nf-call-iptables sysctl (=1 here) and
that sysctl is host-wide for our host-side bridges. What works is docker's documented spot: two
ACCEPT rules of our own in its DOCKER-USER chain, tagged `composer`, present while any composer
network exists. Isolation and `internal` drops live in our table and stay final.

composer neither needs nor loads br_netfilter (Debian ships it as a module, loaded by nothing until
dockerd or an admin does): every rule here filters or translates routed traffic, which meets the
hooks either way, and the hairpin masquerade sends a neighbour's reply back through the host.
Bridged traffic between containers of one network passes unfiltered, as docker with icc=true."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from composer.runtime.net.rtnl import _which  # shutil.which without shutil's imports (bz2, lzma: ~2 ms)

try:  # the builtin module, same digests: hashlib loads OpenSSL first (~2 ms of `container run`)
    from _sha256 import sha256
except ImportError:  # 3.12+
    from hashlib import sha256

from composer.errors import HostError

TABLE = "composer"
_HOOKS = ("fwd", "post", "pre", "out")  # base chains; `ports` is jumped to, so it is deleted last


class NetworkLike(Protocol):
    name: str
    bridge: str
    subnet: str
    internal: bool


@dataclass(frozen=True)
class Published:
    """One published port: host_ip:host_port/protocol -> address:container_port."""

    container_id: str
    address: str
    container_port: int
    host_port: int
    host_ip: str = ""  # "" = every address of the host
    protocol: str = "tcp"

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> "Published":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def scope_tag(state_dir: str) -> str:
    return sha256(state_dir.encode()).hexdigest()[:8]


def _chain(kind: str, tag: str) -> str:
    return f"{kind}_{tag}"


def ruleset(tag: str, networks: Sequence[NetworkLike], published: Sequence[Published]) -> str:
    """The nft script that replaces this scope's chains (or just deletes them when empty)."""
    lines = [f"table ip {TABLE} {{}}"]
    for kind in (*_HOOKS, "ports"):
        lines += [f"add chain ip {TABLE} {_chain(kind, tag)}", f"delete chain ip {TABLE} {_chain(kind, tag)}"]
    if not networks:
        return "\n".join(lines) + "\n"
    fwd, post, pre, out, ports = (_chain(k, tag) for k in (*_HOOKS, "ports"))
    nets = sorted(networks, key=lambda n: n.name)
    body = [f"table ip {TABLE} {{", f"\tchain {fwd} {{",
            "\t\ttype filter hook forward priority filter; policy accept;",
            "\t\tct state established,related accept"]
    for n in nets:
        if n.internal:
            body.append(f'\t\tiifname "{n.bridge}" oifname != "{n.bridge}" drop comment "network {n.name}: internal"')
            body.append(f'\t\toifname "{n.bridge}" iifname != "{n.bridge}" drop comment "network {n.name}: internal"')
    body.append('\t\tct status dnat accept comment "published ports"')
    for n in nets:
        body.append(f'\t\tiifname "{n.bridge}" oifname "cmp*" oifname != "{n.bridge}" drop '
                    f'comment "network {n.name}: isolated from other networks"')
    body += ["\t}", f"\tchain {post} {{", "\t\ttype nat hook postrouting priority srcnat; policy accept;",
             '\t\toifname "cmp*" ip saddr 127.0.0.0/8 masquerade comment "published ports on loopback"']
    for n in nets:
        if not n.internal:
            body.append(f'\t\tip saddr {n.subnet} oifname != "{n.bridge}" masquerade comment "network {n.name}"')
        # hairpin: a container reaching a neighbour through a published host port must see the
        # reply come back through the host, not straight from the neighbour
        body.append(f'\t\toifname "{n.bridge}" ip saddr {n.subnet} ct status dnat masquerade '
                    f'comment "network {n.name}: hairpin"')
    body += ["\t}", f"\tchain {ports} {{"]
    for p in sorted(published, key=lambda p: (p.protocol, p.host_port, p.host_ip)):
        match = f"ip daddr {p.host_ip} " if p.host_ip and p.host_ip != "0.0.0.0" else ""
        body.append(f"\t\t{match}{p.protocol} dport {p.host_port} dnat to {p.address}:{p.container_port} "
                    f'comment "container {p.container_id[:12]}"')
    body += ["\t}", f"\tchain {pre} {{", "\t\ttype nat hook prerouting priority dstnat; policy accept;",
             f"\t\tfib daddr type local jump {ports}", "\t}", f"\tchain {out} {{",
             "\t\ttype nat hook output priority -100; policy accept;",
             f"\t\tfib daddr type local jump {ports}", "\t}", "}"]
    return "\n".join(lines + body) + "\n"


def _nft(script: str) -> subprocess.CompletedProcess:
    if _which("nft") is None:
        raise HostError("nft is not installed", hint="apt-get install nftables")
    return subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)


def apply(script: str) -> None:
    res = _nft(script)
    if res.returncode != 0:
        raise HostError(f"nft refused composer's rules: {res.stderr.strip().splitlines()[0] if res.stderr else '?'}")


def drop_table_if_empty() -> None:
    """Delete the table once no scope has chains left in it."""
    if _which("nft") is None:
        return
    res = subprocess.run(["nft", "list", "table", "ip", TABLE], capture_output=True, text=True)
    if res.returncode == 0 and "chain " not in res.stdout:
        subprocess.run(["nft", "delete", "table", "ip", TABLE], capture_output=True)


def table_text() -> str:
    res = subprocess.run(["nft", "list", "table", "ip", TABLE], capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else ""


# -- docker's DOCKER-USER chain ------------------------------------------------------------------
DOCKER_USER_RULES: tuple[tuple[str, ...], ...] = (
    ("-i", "cmp+", "-m", "comment", "--comment", "composer", "-j", "ACCEPT"),
    ("-o", "cmp+", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT",
     "-m", "comment", "--comment", "composer", "-j", "ACCEPT"),
)


def docker_user(enable: bool) -> None:
    """Add (or remove) our two ACCEPT rules in DOCKER-USER, only if that chain exists. The changes
    go in one iptables-restore batch: one ruleset commit, where an `iptables -I/-D` per rule made
    one each (14-25 ms apiece, a kernel RCU wait: the longest step of `down` while dockerd runs)."""
    if _which("iptables") is None:
        return
    if not enable and _restore([("-D", rule) for rule in DOCKER_USER_RULES]):
        return  # both were there (the usual case): gone, without a listing first
    listing = subprocess.run(["iptables", "-w", "5", "-S", "DOCKER-USER"], capture_output=True, text=True)
    if listing.returncode != 0:
        return  # no dockerd rules on this host: nothing of ours is needed
    lines = listing.stdout.splitlines()
    changes = []
    for rule in DOCKER_USER_RULES:
        present = lines.count("-A DOCKER-USER " + " ".join(rule))
        if enable and not present:
            changes.append(("-I", rule))
        changes += [("-D", rule)] * (0 if enable else present)
    if changes and not _restore(changes):
        raise HostError("iptables refused composer's rules in docker's DOCKER-USER chain",
                        hint="iptables -S DOCKER-USER")


def _restore(changes: Sequence[tuple[str, tuple[str, ...]]]) -> bool:
    """Apply `-I`/`-D` changes to DOCKER-USER in one iptables-restore commit (all or none)."""
    if _which("iptables-restore") is None:
        return all(subprocess.run(["iptables", "-w", "5", op, "DOCKER-USER", *rule], capture_output=True).returncode == 0
                   for op, rule in changes)
    lines = ["*filter"]
    for op, rule in changes:
        lines.append(" ".join([op, "DOCKER-USER", *(["1"] if op == "-I" else []), *rule]))  # constants: no quoting
    script = "\n".join([*lines, "COMMIT", ""])
    return subprocess.run(["iptables-restore", "-w", "5", "--noflush"], input=script, text=True,
                          capture_output=True).returncode == 0


def enable_ip_forward(path: str = "/proc/sys/net/ipv4/ip_forward") -> None:
    """As docker does: bridged containers need routing to reach beyond the host."""
    with open(path, "r+") as f:
        if f.read().strip() != "1":
            f.seek(0)
            f.write("1")


def set_route_localnet(bridge: str) -> None:
    """Per-interface: lets DNAT from 127.0.0.1 be routed out through this bridge."""
    with open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "w") as f:
        f.write("1")
