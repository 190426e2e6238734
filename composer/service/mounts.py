"""A service's mounts, made real on the host: bind sources (created when create_host_path),
named volumes (ensured, external ones must exist), anonymous volumes (reused from the container
being replaced unless renewed), the image's VOLUMEs, tmpfs, volumes_from, file-based configs and
secrets. Volumes are seeded from the image on first use (composer.service.volumes)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from composer.config.model import Project, Service
from composer.errors import ConfigError, NotFoundError
from composer.runtime.spec import Mount
from composer.service.links import L_PROJECT, L_SERVICE
from composer.service.volumes import VolumeStore
from composer.units import parse_size

L_VOLUME = "composer.volume"


@dataclass(frozen=True)
class MountRequest:
    """What a service asks for, before anything exists: kind bind | volume | anonymous | tmpfs."""

    kind: str
    target: str
    source: str = ""  # host path (bind) or real volume name (volume)
    read_only: bool = False
    options: tuple[str, ...] = ()
    create_host_path: bool = True
    nocopy: bool = False
    subpath: str | None = None
    external: bool = False


def _tmpfs_options(size: int | None, mode: int | None) -> tuple[str, ...]:
    opts = []
    if size:
        opts.append(f"size={size}")
    if mode is not None:
        opts.append(f"mode={mode:o}")
    return tuple(opts)


def requests_for(service: Service, project: Project | None, image_config=None) -> list[MountRequest]:
    """Pure: the service's volumes/tmpfs/configs/secrets and the image's VOLUMEs as requests."""
    out: list[MountRequest] = []
    volumes = project.volumes if project else {}
    for v in service.volumes:
        target = os.path.normpath(v.target)
        if v.type == "bind":
            out.append(MountRequest("bind", target, v.source or "", v.read_only,
                                    create_host_path=v.create_host_path))
        elif v.type == "volume" and v.source:
            if v.source not in volumes:
                raise ConfigError(f"service {service.name} refers to undefined volume {v.source}",
                                  service=service.name, key="volumes")
            decl = volumes[v.source]
            out.append(MountRequest("volume", target, decl.name, v.read_only, nocopy=v.nocopy, subpath=v.subpath,
                                    external=decl.external))
        elif v.type == "volume":
            out.append(MountRequest("anonymous", target, read_only=v.read_only, nocopy=v.nocopy))
        elif v.type == "tmpfs":
            out.append(MountRequest("tmpfs", target, options=_tmpfs_options(v.tmpfs_size, v.tmpfs_mode)))
        else:
            raise ConfigError(f"service {service.name}: volume type {v.type!r} is not supported",
                              service=service.name, key="volumes")
    for item in service.tmpfs:
        target, _, opts = item.partition(":")
        options = []
        for opt in filter(None, opts.split(",")):
            key, _, value = opt.partition("=")
            options.append(f"size={parse_size(value, what='tmpfs size')}" if key == "size" else opt)
        out.append(MountRequest("tmpfs", os.path.normpath(target), options=tuple(options)))
    for kind, refs, base in (("secret", service.secrets, "/run/secrets"), ("config", service.configs, "/")):
        objects = (project.secrets if kind == "secret" else project.configs) if project else {}
        for ref in refs:
            obj = objects.get(ref.source)
            if obj is None or not obj.file:
                raise ConfigError(f"service {service.name}: {kind} {ref.source} has no file (only file-based "
                                  f"{kind}s are supported)", service=service.name, key=kind + "s")
            target = ref.target or ref.source
            out.append(MountRequest("bind", os.path.join(base, target) if not target.startswith("/") else target,
                                    obj.file, True, create_host_path=False))
    taken = {r.target for r in out}
    for path in getattr(image_config, "volumes", ()) or ():
        if os.path.normpath(path) not in taken:
            out.append(MountRequest("anonymous", os.path.normpath(path)))
    return out


class MountMaker:
    """Turns requests into runtime Mounts, creating what is missing. One per project command."""

    def __init__(self, store: VolumeStore, project: str) -> None:
        self.store = store
        self.project = project

    def make(self, service: Service, requests: Sequence[MountRequest], layers: tuple[str, ...], *,
             previous: Sequence[Mount] = (), renew_anonymous: bool = False,
             volumes_from: Sequence[tuple[Sequence[Mount], bool]] = ()) -> tuple[Mount, ...]:
        """`previous`: mounts of the container being replaced (its anonymous volumes are kept);
        `volumes_from`: (mounts of the source container, read-only) pairs."""
        old_anon = {} if renew_anonymous else {
            m.target: m.source for m in previous
            if m.type == "bind" and (info := self.store.owner_of(m.source)) is not None and info.anonymous}
        out: list[Mount] = []
        for src_mounts, ro in volumes_from:
            for m in src_mounts:
                out.append(Mount(m.target, m.type, m.source, m.read_only or ro, m.options))
        for r in requests:
            out = [m for m in out if m.target != r.target]  # the service's own mount wins
            out.append(self._one(service, r, layers, old_anon))
        return tuple(out)

    def _one(self, service: Service, r: MountRequest, layers: tuple[str, ...], old_anon: dict) -> Mount:
        if r.kind == "tmpfs":
            return Mount(r.target, "tmpfs", "", r.read_only, r.options)
        if r.kind == "bind":
            if not os.path.exists(r.source):
                if not r.create_host_path:
                    raise NotFoundError(f"service {service.name}: bind source path does not exist: {r.source}")
                os.makedirs(r.source, exist_ok=True)
            return Mount(r.target, "bind", r.source, r.read_only, ("rprivate",))
        if r.kind == "volume":
            if r.external:
                if not self.store.exists(r.source):
                    raise NotFoundError(f"external volume {r.source} not found (service {service.name})",
                                        hint=f"create it first: composer volume create {r.source}")
                info = self.store.get(r.source)
            else:
                info = self.store.ensure(r.source, ((L_PROJECT, self.project), (L_VOLUME, r.source)))
        else:
            source = old_anon.get(r.target)
            info = self.store.get(os.path.basename(os.path.dirname(source))) if source else \
                self.store.new_anonymous(((L_PROJECT, self.project), (L_SERVICE, service.name)))
        if not r.nocopy:
            self.store.seed(info.name, layers, r.target)
        path = info.path
        if r.subpath:
            path = os.path.join(info.path, r.subpath.lstrip("/"))
            os.makedirs(path, exist_ok=True)
        return Mount(r.target, "bind", path, r.read_only, ("rprivate",))


def anonymous_volumes(store: VolumeStore, mounts: Sequence[Mount]) -> list[str]:
    """Names of the anonymous volumes among a container's mounts (for rm -v)."""
    out = []
    for m in mounts:
        info = store.owner_of(m.source) if m.type == "bind" else None
        if info is not None and info.anonymous:
            out.append(info.name)
    return out
