"""The project's networks (`Networks`, a collaborator of the runner; stateless beyond its Stack): every host port an `up` publishes checked free
before anything changes, the stack's bridge networks made (labelled with project and key, their
bridges tagged for recovery), published ports withdrawn beside `down`'s stops, and the networks
removed at `down` (with those whose records a crash lost)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence

from composer.errors import ConflictError, NotFoundError
from composer.project import recovery
from composer.project.stack import Stack
from composer.runtime import ContainerInfo
from composer.service import service as svcmod
from composer.service.links import L_PROJECT


L_NETWORK = "composer.network"


class Networks:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def check_ports(self, plans: dict[str, list[svcmod.Action]]) -> None:
        """Every host port this up will publish must be free, before anything changes."""
        model = self.stack.need_model()
        wanted, replaced = [], []
        for n, actions in plans.items():
            s = model.services[n]
            if svcmod.check_network_mode(s) != "bridge":
                continue
            for a in actions:
                if a.kind in ("create", "recreate"):
                    wanted += [m for m in svcmod.port_mappings(s, a.number) if m.host_port]
                elif a.kind == "start":
                    wanted += [m for m in a.container.spec.ports if m.host_port]
                if a.kind in ("recreate", "remove", "start") and a.container is not None:
                    replaced.append(a.container.id)
        if not wanted:
            return
        nm = self.stack.runtime.network
        held = {(p.host_ip, p.host_port, p.protocol) for cid in replaced for p in nm.ports.published(cid)}
        todo = [m for m in wanted if (m.host_ip, m.host_port, m.protocol) not in held]
        try:
            nm.ports.check_ports(todo)
        except ConflictError as err:
            owner = next((n for n, acts in plans.items() for a in acts
                          if any(str(m.host_port) in err.message for m in svcmod.port_mappings(model.services[n], a.number))), None)
            raise ConflictError(f"service {owner}: {err.message}" if owner else err.message, hint=err.hint) from None

    def check(self, names: Sequence[str]) -> list:
        """The declared bridge networks the services use, refused now (nothing made yet) when one is
        not declared or an external one is missing."""
        model = self.stack.need_model()
        keys = sorted({k for n in names for k in model.services[n].networks
                       if svcmod.check_network_mode(model.services[n]) == "bridge"})
        out = []
        for key in keys:
            if key not in model.networks:
                raise svcmod.ConfigError(f"network {key} is used but not declared", key="networks")
            net = model.networks[key]
            if net.external:
                if self.stack.runtime.network.get(net.name) is None:
                    raise NotFoundError(f"network {net.name} declared as external, but could not be found",
                                        hint=f"create it first: composer network create {net.name}")
                continue
            out.append((key, net))
        return out

    def ensure(self, names: Sequence[str], *, dry_run: bool = False) -> None:
        """Make the services' networks (dry_run: report the missing ones as planned Events)."""
        todo = self.check(names)
        nm = self.stack.runtime.network if todo else None
        for key, net in todo:
            if net.driver not in (None, "bridge"):
                self.stack.report.warn_once(key, f"network {key}: driver {net.driver!r} is not supported, using bridge")
            existed = nm.get(net.name) is not None
            if dry_run:
                if not existed:
                    self.stack.emit("network", net.name, "Create", None, "not created yet", planned=True)
                continue
            if not existed:
                self.stack.emit("network", net.name, "Creating")
            pool = net.ipam[0] if net.ipam else None
            labels = {**net.labels, L_PROJECT: self.stack.name, L_NETWORK: key}
            info = nm.ensure(net.name, subnet=pool.subnet if pool else None, gateway=pool.gateway if pool else None,
                             internal=net.internal, labels=tuple(sorted(labels.items())))
            recovery.tag_bridge(info.bridge, recovery.BridgeTag(recovery.scope_of(self.stack.runtime), self.stack.name, net.name))
            if not existed:
                self.stack.emit("network", net.name, "Created")

    def unpublish_in_background(self, containers: list[ContainerInfo]) -> threading.Thread | None:
        """Withdraw the published ports of containers that are going away, beside their stops (as
        docker, a stopping container stops forwarding): the nft commit (13-30 ms) would otherwise
        be on the critical path of the removals. Errors are left to the removal, which retries."""
        if not os.path.isdir(os.path.join(self.stack.runtime.state_dir, "networks")):
            return None
        nm = self.stack.runtime.network
        ids = {c.id for c in containers} & {p.container_id for p in nm.ports.published()}
        if not ids:
            return None

        def run() -> None:
            for cid in sorted(ids):
                with contextlib.suppress(Exception):
                    nm.ports.unpublish(cid)

        thread = threading.Thread(target=run, name="composer-unpublish", daemon=True)
        thread.start()
        return thread

    def defer_settling(self) -> bool:
        """down's removals release the containers' addresses without waiting for their host veths
        (NetworkManager.defer_settling); settle() waits for them once the networks are removed.
        False (nothing deferred) when this state dir never made a network."""
        if not os.path.isdir(os.path.join(self.stack.runtime.state_dir, "networks")):
            return False
        self.stack.runtime.network.defer_settling()
        return True

    def settle(self) -> None:
        self.stack.runtime.network.settle()

    def remove(self) -> None:
        names = set()
        if self.stack.model is not None:
            names |= {n.name for n in self.stack.model.networks.values() if not n.external}
        for name in recovery.reclaim_networks(self.stack.runtime, self.stack.name, names):  # records lost in a crash
            self.stack.emit("network", name, "Removed")
        if not os.path.isdir(os.path.join(self.stack.runtime.state_dir, "networks")):
            return  # nothing was ever made (or the state dir went with a reboot)
        nm = self.stack.runtime.network
        names |= {n.name for n in nm.list() if dict(n.labels).get(L_PROJECT) == self.stack.name}
        for name in sorted(names):
            if nm.get(name) is None:
                continue
            self.stack.emit("network", name, "Removing")
            try:
                nm.remove(name)
            except ConflictError:
                nm.gc({c.id for c in self.stack.runtime.list(all=True)})  # endpoints of containers lost in a crash
                try:
                    nm.remove(name)
                except ConflictError as err:
                    self.stack.emit("network", name, "Warning", None, str(err))
                    continue
            self.stack.emit("network", name, "Removed")

    def to_remove(self) -> list[str]:
        """The networks remove() would remove (read-only: the records a crash lost are not looked for)."""
        names = set()
        if self.stack.model is not None:
            names |= {n.name for n in self.stack.model.networks.values() if not n.external}
        if not os.path.isdir(os.path.join(self.stack.runtime.state_dir, "networks")):
            return []
        nm = self.stack.runtime.network
        names |= {n.name for n in nm.list() if dict(n.labels).get(L_PROJECT) == self.stack.name}
        return sorted(n for n in names if nm.get(n) is not None)
