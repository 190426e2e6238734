"""Finding a project's host objects when the records are gone: a crash between making a bridge
and recording it, `rm -rf` of the state dir (or a reboot of /run while links survive elsewhere),
a second state dir. Without records, ownership comes from a tag on the object itself.

Each project bridge carries an alias (IFLA_IFALIAS, written through sysfs, 255 bytes at most):
`composer scope=<tag> project=<name> network=<name>`, where the scope tag is the hash of the state
dir that the firewall chains use too (runtime.net.nft.scope_tag). `down` deletes exactly the bridges
whose alias names this scope and this project and whose network has no record; untagged links, and
links of other scopes or projects, are never touched. Bridges made before tags existed are still
found by their deterministic name (runtime.net.ipam) for the networks the stack file declares."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass

from composer.errors import ComposerError
from composer.runtime import Runtime

SYS_NET = "/sys/class/net"
PREFIX = "composer"


@dataclass(frozen=True)
class BridgeTag:
    """Who made a bridge (state dir scope, project, network), kept in its ifalias."""

    scope: str
    project: str
    network: str

    def text(self) -> str:
        return f"{PREFIX} scope={self.scope} project={self.project} network={self.network}"[:255]

    @classmethod
    def parse(cls, text: str) -> "BridgeTag | None":
        words = text.strip().split(" ")
        if len(words) != 4 or words[0] != PREFIX:
            return None
        fields = dict(w.partition("=")[::2] for w in words[1:])
        if set(fields) != {"scope", "project", "network"} or not all(fields.values()):
            return None
        return cls(fields["scope"], fields["project"], fields["network"])


def scope_of(runtime: Runtime) -> str:
    from composer.runtime.net import nft

    return nft.scope_tag(os.path.realpath(runtime.state_dir))  # as NetworkManager's scope


def tag_bridge(bridge: str, tag: BridgeTag, sys_net: str = SYS_NET) -> None:
    """Best effort: an untagged bridge is still found through its deterministic name."""
    with contextlib.suppress(OSError):
        with open(os.path.join(sys_net, bridge, "ifalias"), "w") as f:
            f.write(tag.text())


def tagged_bridges(sys_net: str = SYS_NET) -> dict[str, BridgeTag]:
    """link name -> tag, for every `cmp*` link with a composer alias."""
    out = {}
    for name in _links(sys_net):
        if not name.startswith("cmp"):
            continue
        try:
            with open(os.path.join(sys_net, name, "ifalias")) as f:
                tag = BridgeTag.parse(f.read())
        except OSError:
            continue
        if tag is not None:
            out[name] = tag
    return out


def _links(sys_net: str = SYS_NET) -> list[str]:
    try:
        return os.listdir(sys_net)
    except OSError:
        return []


def enslaved(bridge: str, sys_net: str = SYS_NET) -> list[str]:
    """Our veth host ends still attached to the bridge (their containers outlived the records)."""
    try:
        return sorted(n for n in os.listdir(os.path.join(sys_net, bridge, "brif")) if n.startswith("cmp"))
    except OSError:
        return []


def lost_networks(runtime: Runtime, project: str, declared: Iterable[str] = ()) -> dict[str, str]:
    """network name -> bridge, for this project's bridges that exist without a record."""
    nm = runtime.network
    scope = scope_of(runtime)
    found = {tag.network: link for link, tag in tagged_bridges().items()
             if tag.scope == scope and tag.project == project}
    for name in declared:  # untagged (older) bridges: by the name this scope gives them
        with contextlib.suppress(ComposerError):
            bridge = nm._bridge_name(name)
            if name not in found and os.path.exists(os.path.join(SYS_NET, bridge)):
                found[name] = bridge
    return {name: bridge for name, bridge in found.items() if nm.get(name) is None}


def reclaim_networks(runtime: Runtime, project: str, declared: Iterable[str] = ()) -> list[str]:
    """Delete the project's bridges that have no record (and the veths left on them), then the
    scope's firewall chains that name them. Returns the network names reclaimed."""
    from composer.runtime.net import nft, rtnl

    lost = lost_networks(runtime, project, declared)
    if lost:
        with rtnl.Rtnl() as nl:
            for bridge in lost.values():
                for veth in enslaved(bridge):
                    nl.delete_link(veth)
                nl.delete_link(bridge)
        for name in lost:
            runtime.network.remove(name)  # no record: resyncs this scope's firewall from the rest
    elif not runtime.network.list() and f"_{scope_of(runtime)}" in nft.table_text():
        # the state dir lost every record while our chains stayed: nothing of ours they name lives
        nft.apply(nft.ruleset(scope_of(runtime), [], []))
        nft.drop_table_if_empty()
        if not any(n.startswith("cmp") for n in _links()):
            nft.docker_user(False)  # present only while some composer network exists
    return sorted(lost)


__all__ = ["BridgeTag", "enslaved", "lost_networks", "reclaim_networks", "scope_of", "tag_bridge",
           "tagged_bridges"]
