"""A container's steps (`ContainerSteps`, a collaborator of the runner): create (spec built from
the service, mounts made, links resolved), start, stop and remove, each reported as events, and
every running container's /etc/hosts kept in step with its peers as containers come and go. The
peers and the hosts entries written are the HostsBook's, which this class tells of every start and
stop; it keeps no state of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from composer.config.model import Service
from composer.errors import ComposerError, NotFoundError
from composer.project.hostsbook import HostsBook
from composer.project.stack import Stack
from composer.project.volumes import Volumes
from composer.runtime import ContainerInfo
from composer.runtime.spec import ContainerSpec
from composer.service import service as svcmod
from composer.service.links import L_SERVICE, Peer, peer_from_info
from composer.service.mounts import MountMaker, anonymous_volumes, requests_for
from composer import faults


SERVICE_NAME_MAX = 63


def _host_rlimits() -> tuple[dict[str, int], bool]:
    """(name -> this process's hard limit, whether it may raise hard limits: CAP_SYS_RESOURCE)."""
    import resource

    hard = {}
    for name in ("core", "cpu", "data", "fsize", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
                 "rtprio", "sigpending", "stack", "as"):
        const = getattr(resource, "RLIMIT_" + name.upper(), None)
        if const is not None:
            hard[name] = resource.getrlimit(const)[1]
    caps = 0
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                caps = int(line.split()[1], 16)
    return hard, bool(caps & (1 << 24))


class ContainerSteps:
    def __init__(self, stack: Stack, hosts: HostsBook, volumes: Volumes) -> None:
        self.stack, self.hosts, self.volumes = stack, hosts, volumes

    def create(self, s: Service, number: int, image, maker: MountMaker, *, previous: ContainerInfo | None = None,
               renew: bool = False, quiet: bool = False, oneoff: bool = False, name: str | None = None,
               adjust: Callable[[ContainerSpec], ContainerSpec] | None = None) -> ContainerInfo:
        """adjust: a last change to the spec (one-off runs: their flags)."""
        model = self.stack.need_model()
        cid = svcmod.new_id()
        ctx = self.stack.service_context()
        name = name or (svcmod.oneoff_name(self.stack.name, s.name, cid) if oneoff else
                        svcmod.container_name(self.stack.name, s, number))
        if not quiet:
            self.stack.emit("container", name, "Creating", s.name)
        try:
            if s.ulimits:
                svcmod.check_ulimits(s, *_host_rlimits())
            mounts = maker.make(s, requests_for(s, model, image.config), tuple(image.layers),
                                previous=previous.spec.mounts if previous else (), renew_anonymous=renew,
                                volumes_from=self.volumes.volumes_from(s))
            peers = self.hosts.peers()
            faults.point("up.mounts")
            built = svcmod.build_spec(s, ctx, image, number=number, id=cid, mounts=mounts, peers=peers,
                                      external=self.external(s), oneoff=oneoff, name=name)
            for w in built.warnings:
                self.stack.report.warn_once(s.name, w)
            info = self.stack.runtime.create(adjust(built.spec) if adjust else built.spec)
            faults.point("up.created")
        except ComposerError as err:
            self.stack.emit("container", name, "Error", s.name, str(err))
            raise
        if not quiet:
            self.stack.emit("container", name, "Created", s.name)
        return info

    def check(self, s: Service, image) -> None:
        """What create would refuse for this service (its spec as a whole: limits, names, policies),
        found before `up` makes any network, volume or container. Bind sources, peers and the
        container a network is shared with are not looked at: they may come into being on the way."""
        import dataclasses

        try:
            if len(s.name) > SERVICE_NAME_MAX:
                raise svcmod.ConfigError(f"service name {s.name[:40]}... is {len(s.name)} characters long: use at "
                                         f"most {SERVICE_NAME_MAX} (peers look a service up by its name, a DNS label)")
            if s.ulimits:
                svcmod.check_ulimits(s, *_host_rlimits())
            for r in requests_for(s, self.stack.need_model(), image.config):
                if not r.target.startswith("/"):
                    raise svcmod.ConfigError(f"invalid mount target {r.target!r}: must be an absolute path")
            if svcmod.network_service(s):  # service:x needs x running; the rest of the spec is checked
                s = dataclasses.replace(s, network_mode="none")
            built = svcmod.build_spec(s, self.stack.service_context(), image, number=1, id=svcmod.new_id())
            self.stack.runtime.check(built.spec)
        except ComposerError as err:
            if not err.message.startswith(f"service {s.name}"):
                err.message = f"service {s.name}: {err.message}"
            raise

    def external(self, s: Service | None) -> list[tuple[Peer, str]]:
        out = []
        for item in (s.external_links if s else ()):
            ref, _, alias = item.partition(":")
            try:
                out.append((peer_from_info(self.stack.runtime.get(ref)), alias or ref))
            except NotFoundError:
                self.stack.report.warn_once(s.name, f"service {s.name}: external link {ref} not found")
        return out

    def start(self, info: ContainerInfo) -> ContainerInfo:
        svc = info.label(L_SERVICE)
        self.stack.emit("container", info.name, "Starting", svc)
        try:
            info = self.stack.runtime.start(info.id)
        except ComposerError as err:
            self.stack.emit("container", info.name, "Error", svc, str(err))
            raise
        self.hosts.add(info)
        self.stack.emit("container", info.name, "Started", svc)
        return info

    def stop(self, c: ContainerInfo, timeout: float | None, *, quiet: bool = False) -> None:
        if not c.running:
            return
        svc = c.label(L_SERVICE)
        if not quiet:
            self.stack.emit("container", c.name, "Stopping", svc)
        self.stack.runtime.stop(c.id, timeout)
        self.hosts.forget(c.id)
        if not quiet:
            self.stack.emit("container", c.name, "Stopped", svc)

    def remove(self, c: ContainerInfo, timeout: float | None, volumes: bool = False, *,
               stop: bool = True) -> str:
        svc = c.label(L_SERVICE)
        if stop:
            self.stop(c, timeout)
        self.stack.emit("container", c.name, "Removing", svc)
        anon = anonymous_volumes(self.stack.volumes, c.spec.mounts) if volumes else []
        self.stack.runtime.remove(c.id, force=True)
        self.hosts.forget(c.id)
        for v in anon:
            self.stack.volumes.remove(v)
        self.stack.emit("container", c.name, "Removed", svc)
        return c.name

    # ------------------------------------------------------------ /etc/hosts

    def refresh_hosts(self, only_if_changed: bool = False) -> None:
        """Rewrite (in place) the hosts file of every running container whose entries changed.
        only_if_changed: skip when no container came or went (an `up` with nothing to do)."""
        services = self.stack.model.services if self.stack.model else {}

        def entries_for(c: ContainerInfo, peers) -> tuple:
            s = services.get(c.label(L_SERVICE) or "")
            return svcmod.hosts_for(s, c.spec, peers, self.external(s))

        def write(c: ContainerInfo, entries: tuple) -> bool:
            try:
                self.stack.runtime.set_hosts(c.id, entries)
            except NotFoundError:
                return False
            return True

        self.hosts.refresh(lambda: self.stack.containers(oneoff=None), entries_for, write,
                           only_if_changed=only_if_changed)
