"""A container's steps, as part of ProjectRunner: create (spec built from the service, mounts
made, links resolved), start, stop and remove, each reported as events, and keeping every running
container's /etc/hosts in step with its peers as containers come and go."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from composer.config.model import Service
from composer.errors import ComposerError, NotFoundError
from composer.runtime import ContainerInfo
from composer.runtime.spec import ContainerSpec
from composer.service import service as svcmod
from composer.service.links import L_SERVICE, Peer, peer_from_info
from composer.service.mounts import MountMaker, anonymous_volumes, requests_for


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


class ContainersMixin:
    """ProjectRunner's container steps (uses its runtime, volumes, _peers, _dirty, emit, _ctx,
    _volumes_from)."""

    def _create(self, s: Service, number: int, image, maker: MountMaker, *, previous: ContainerInfo | None = None,
                renew: bool = False, quiet: bool = False, oneoff: bool = False, name: str | None = None,
                adjust: Callable[[ContainerSpec], ContainerSpec] | None = None) -> ContainerInfo:
        """adjust: a last change to the spec (one-off runs: their flags)."""
        model = self._need_model()
        cid = svcmod.new_id()
        ctx = self._ctx()
        name = name or (svcmod.oneoff_name(self.name, s.name, cid) if oneoff else
                        svcmod.container_name(self.name, s, number))
        if not quiet:
            self.emit("container", name, "Creating", s.name)
        try:
            if s.ulimits:
                svcmod.check_ulimits(s, *_host_rlimits())
            mounts = maker.make(s, requests_for(s, model, image.config), tuple(image.layers),
                                previous=previous.spec.mounts if previous else (), renew_anonymous=renew,
                                volumes_from=self._volumes_from(s))
            with self._peer_lock:
                peers = list(self._peers.values())
            built = svcmod.build_spec(s, ctx, image, number=number, id=cid, mounts=mounts, peers=peers,
                                      external=self._external(s), oneoff=oneoff, name=name)
            for w in built.warnings:
                self._warn_once(s.name, w)
            info = self.runtime.create(adjust(built.spec) if adjust else built.spec)
        except ComposerError as err:
            self.emit("container", name, "Error", s.name, str(err))
            raise
        if not quiet:
            self.emit("container", name, "Created", s.name)
        return info

    def _external(self, s: Service | None) -> list[tuple[Peer, str]]:
        out = []
        for item in (s.external_links if s else ()):
            ref, _, alias = item.partition(":")
            try:
                out.append((peer_from_info(self.runtime.get(ref)), alias or ref))
            except NotFoundError:
                self._warn_once(s.name, f"service {s.name}: external link {ref} not found")
        return out

    def _start(self, info: ContainerInfo) -> ContainerInfo:
        svc = info.label(L_SERVICE)
        self.emit("container", info.name, "Starting", svc)
        try:
            info = self.runtime.start(info.id)
        except ComposerError as err:
            self.emit("container", info.name, "Error", svc, str(err))
            raise
        with self._peer_lock:
            self._peers[info.id] = peer_from_info(info)
            self._dirty = True
        self.emit("container", info.name, "Started", svc)
        return info

    def _stop(self, c: ContainerInfo, timeout: float | None, *, quiet: bool = False) -> None:
        if not c.running:
            return
        svc = c.label(L_SERVICE)
        if not quiet:
            self.emit("container", c.name, "Stopping", svc)
        self.runtime.stop(c.id, timeout)
        self._forget(c.id)
        if not quiet:
            self.emit("container", c.name, "Stopped", svc)

    def _forget(self, cid: str) -> None:
        with self._peer_lock:
            self._peers.pop(cid, None)
            self._dirty = True
        self._hosts_written.pop(cid, None)

    def _remove_container(self, c: ContainerInfo, timeout: float | None, volumes: bool = False, *,
                          stop: bool = True) -> str:
        svc = c.label(L_SERVICE)
        if stop:
            self._stop(c, timeout)
        self.emit("container", c.name, "Removing", svc)
        anon = anonymous_volumes(self.volumes, c.spec.mounts) if volumes else []
        self.runtime.remove(c.id, force=True)
        self._forget(c.id)
        for v in anon:
            self.volumes.remove(v)
        self.emit("container", c.name, "Removed", svc)
        return c.name

    # ------------------------------------------------------------ /etc/hosts

    def _refresh_hosts(self, only_if_changed: bool = False) -> None:
        """Rewrite (in place) the hosts file of every running container whose entries changed.
        only_if_changed: skip when no container came or went (an `up` with nothing to do)."""
        if only_if_changed and not self._dirty:
            return
        self._dirty = False
        running = self.containers(oneoff=None)
        peers = [peer_from_info(c) for c in running]
        with self._peer_lock:
            self._peers = {p.id: p for p in peers}
        services = self.model.services if self.model else {}
        for c in running:
            s = services.get(c.label(L_SERVICE) or "")
            entries = svcmod.hosts_for(s, c.spec, peers, self._external(s))
            if self._hosts_written.get(c.id) == entries:
                continue
            try:
                self.runtime.set_hosts(c.id, entries)
            except NotFoundError:
                continue
            self._hosts_written[c.id] = entries
