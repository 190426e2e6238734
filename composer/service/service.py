"""A service of the model -> the ContainerSpec of each of its containers (names, labels, config
hash, env with link variables, ports, network mode and attachments, hosts entries), and the
convergence plan for its existing containers (create / recreate / start / nothing / remove).
The per-key fields (command, resources, restart, healthcheck, logging, security, ulimits) and the
warnings for keys the runtime cannot honour are `composer.service.keys`'.

Pure: mounts, peers and the image come in as arguments, so every rule here is unit tested
without root."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from composer.config import config_hash
from composer.config.serialize import changed_keys, config_key_hashes
from composer.config.model import Service
from composer.errors import ConfigError, ConflictError, ContainerError
from composer.service.links import (L_EXPOSED, L_NUMBER, L_ONEOFF, L_PROJECT, L_SERVICE, Peer, format_exposed,
                            hosts_entries, link_env, parse_exposed)
from composer.runtime.spec import ContainerSpec, Mount, NetworkAttachment, PortMapping, Ulimit
from composer.service.keys import (argv_for, devices_for, healthcheck_for, logging_for, parse_signal, resources_for,
                                   restart_for, security_for, warnings_for)
from composer.service.keys import check_ulimits as check_ulimits  # the project checks ulimits through this module

L_HASH = "composer.config-hash"
L_KEYS = "composer.config-keys"  # the hash key by key: a recreate names the keys that changed
L_FILES = "composer.config-files"
L_WORKDIR = "composer.working-dir"
L_IMAGE = "composer.image"
L_VERSION = "composer.version"


@dataclass(frozen=True)
class ProjectContext:
    """What a container's spec needs to know of its project: name, directory, files, network names."""

    name: str
    working_dir: str = ""
    config_files: tuple[str, ...] = ()
    networks: Mapping[str, str] = field(default_factory=dict)  # key in the file -> real name


@dataclass(frozen=True)
class BuiltSpec:
    """A container spec built from a service, with the warnings about keys it could not honour."""

    spec: ContainerSpec
    warnings: tuple[str, ...] = ()


def container_name(project: str, service: Service, number: int) -> str:
    return service.container_name or f"{project}-{service.name}-{number}"


def oneoff_name(project: str, service: str, id: str) -> str:
    return f"{project}-{service}-run-{id[:12]}"


def exposed_ports(service: Service, image_config) -> tuple[tuple[int, str], ...]:
    text = ",".join([*(getattr(image_config, "exposed_ports", ()) or ()), *service.expose,
                     *(f"{p.target}/{p.protocol}" for p in service.ports)])
    return parse_exposed(text)


def network_names(service: Service, ctx: ProjectContext) -> list[tuple[str, object]]:
    """(real name, ServiceNetwork) in attach order: priority (high first), then key."""
    items = sorted(service.networks.items(), key=lambda kv: (-(kv[1].priority or 0), kv[0]))
    out = []
    for key, net in items:
        if key not in ctx.networks:
            raise ConfigError(f"service {service.name} refers to undefined network {key}",
                              service=service.name, key="networks")
        out.append((ctx.networks[key], net))
    return out


def check_network_mode(service: Service) -> str:
    """The service's network mode: bridge (its networks; `network_mode: bridge` is the default
    network, like docker's), none, host, service:<name> or container:<name|id>; or a ConfigError."""
    mode = service.network_mode
    if mode is None:
        return "bridge" if service.networks else "none"
    if mode in ("none", "host", "bridge"):
        return mode
    kind, _, ref = mode.partition(":")
    if kind in ("service", "container") and ref:
        return mode
    raise ConfigError(f"service {service.name}: network_mode {mode!r} is not supported by composer's runtime "
                      "(use none, host, bridge, service:<name>, container:<name|id> or networks)",
                      service=service.name, key="network_mode")


def network_service(service: Service) -> str | None:
    """x for `network_mode: service:x` (a dependency: x starts first), else None."""
    mode = service.network_mode or ""
    return mode[8:] if mode.startswith("service:") else None


def network_target(service: Service, peers: Sequence[Peer]) -> str | None:
    """The runtime network_mode `container:<id>` for `service:x`: x's running replica with the
    lowest number (compose joins the first). None when no replica runs."""
    x = network_service(service)
    running = sorted((p for p in peers if p.service == x and not p.oneoff), key=lambda p: p.number)
    return f"container:{running[0].id}" if x and running else None


def runtime_network_mode(service: Service, peers: Sequence[Peer]) -> str:
    """check_network_mode with service:x resolved to the id of x's running container."""
    mode = check_network_mode(service)
    if not mode.startswith("service:"):
        return mode
    target = network_target(service, peers)
    if target is None:
        raise ContainerError(f"service {service.name}: network_mode {mode}: service {mode[8:]} has no running "
                             "container to share the network of")
    return target


def follow_network_target(service: Service, actions: Sequence["Action"], peers: Sequence[Peer]) -> list["Action"]:
    """Replicas of a `network_mode: service:x` service joined a namespace of an earlier x
    container (x recreated or restarted since): recreate them, as compose does."""
    target = network_target(service, peers)
    if target is None:
        return list(actions)
    out = []
    for a in actions:
        if a.kind in ("noop", "start") and a.container is not None and a.container.spec.network_mode != target:
            a = Action("recreate", a.service, a.number, a.container,
                       f"network_mode {service.network_mode}: its container changed")
        out.append(a)
    return out


def port_mappings(service: Service, number: int) -> tuple[PortMapping, ...]:
    """Host ports of replica `number`: a published range gives replica n its n-th port; no
    published port means an ephemeral one."""
    out = []
    for p in service.ports:
        if not p.published:  # `ports: ["80"]` publishes on an ephemeral host port, as docker
            out.append(PortMapping(container_port=p.target, host_port=0, host_ip=p.host_ip or "",
                                   protocol=p.protocol))
            continue
        lo, _, hi = p.published.partition("-")
        host = int(lo)
        if hi:
            host = int(lo) + number - 1
            if host > int(hi):
                raise ConflictError(f"service {service.name}: port range {p.published} has no port left for "
                                    f"replica {number}")
        out.append(PortMapping(container_port=p.target, host_port=host, host_ip=p.host_ip or "",
                               protocol=p.protocol))
    return tuple(out)


def check_replicas(service: Service, replicas: int) -> None:
    if replicas <= 1:
        return
    if service.container_name:
        raise ConfigError(f"service {service.name}: container_name {service.container_name!r} cannot be used "
                          f"with {replicas} replicas (names must be unique)", service=service.name, key="container_name")
    for p in service.ports:
        if p.published and "-" not in p.published and p.published != "0":
            raise ConflictError(f"service {service.name}: host port {p.published} is fixed, so it cannot be "
                                f"published by {replicas} replicas (use a range or leave the host port out)")


def labels_for(service: Service, ctx: ProjectContext, number: int, image_id: str, image_labels=(), *,
               oneoff: bool = False, exposed: Sequence[tuple[int, str]] = ()) -> tuple[tuple[str, str], ...]:
    labels = dict(image_labels)
    labels.update(service.labels)
    labels.update({
        L_PROJECT: ctx.name, L_SERVICE: service.name, L_NUMBER: str(number), L_ONEOFF: str(oneoff),
        L_HASH: config_hash(service), L_KEYS: config_key_hashes(service), L_FILES: ",".join(ctx.config_files), L_WORKDIR: ctx.working_dir,
        L_IMAGE: image_id,
    })
    if exposed:
        labels[L_EXPOSED] = format_exposed(exposed)
    return tuple(sorted(labels.items()))


def build_spec(service: Service, ctx: ProjectContext, image, *, number: int, id: str,
               mounts: Sequence[Mount] = (), peers: Sequence[Peer] = (),
               external: Sequence[tuple[Peer, str]] = (), oneoff: bool = False,
               name: str | None = None) -> BuiltSpec:
    """The ContainerSpec of replica `number` of `service`. `image` has id, layers and config
    (composer.images.model.Image); `peers` are the project's running containers (hosts entries,
    link variables); `external` the resolved external_links (peer, alias)."""
    config = image.config
    warn = warnings_for(service)
    nnp, seccomp = security_for(service, warn, ctx.working_dir)
    mode = runtime_network_mode(service, peers)
    nets = network_names(service, ctx) if mode == "bridge" else []
    attachments = tuple(NetworkAttachment(network=real, ipv4_address=n.ipv4_address, mac_address=n.mac_address,
                                          aliases=tuple(n.aliases), interface=f"eth{i}")
                        for i, (real, n) in enumerate(nets))
    cname = name or (oneoff_name(ctx.name, service.name, id) if oneoff else container_name(ctx.name, service, number))
    linked = []
    for svc, alias in service.links:
        target = sorted((p for p in peers if p.service == svc and not p.oneoff), key=lambda p: p.number)
        if target:
            linked.append((alias, target[0]))
    env = dict(link_env(cname, linked))
    env.update(config.env)
    env.update((k, v) for k, v in service.environment if v is not None)
    exposed = exposed_ports(service, config)
    workdir = service.working_dir or config.working_dir or "/"
    hosts = hosts_entries([a.network for a in attachments], peers, links=service.links, external=external,
                          extra_hosts=service.extra_hosts) if mode == "bridge" else \
        hosts_entries([], (), extra_hosts=service.extra_hosts)
    spec = ContainerSpec(
        id=id, name=cname, image=service.image or "", image_id=image.id, layers=tuple(image.layers),
        argv=argv_for(service, config), env=tuple(env.items()), cwd=workdir,
        user=service.user if service.user is not None else (config.user or ""),
        hostname=service.hostname or "", domainname=service.domainname or "", hosts=hosts,
        dns=tuple(service.dns), dns_search=tuple(service.dns_search), mounts=tuple(mounts),
        resources=resources_for(service), network_mode=mode, networks=attachments,
        ports=port_mappings(service, number) if mode == "bridge" else (),
        labels=labels_for(service, ctx, number, image.id, config.labels, oneoff=oneoff, exposed=exposed),
        stop_signal=parse_signal(service.stop_signal or config.stop_signal, service.name),
        stop_timeout=service.stop_grace_period if service.stop_grace_period is not None else 10.0,
        cap_add=tuple(service.cap_add), cap_drop=tuple(service.cap_drop), privileged=service.privileged,
        cgroupns=service.cgroup or "", devices=devices_for(service), read_only=service.read_only,
        no_new_privileges=nnp, seccomp=seccomp, init=bool(service.init),
        tty=service.tty, stdin_open=service.stdin_open,
        ulimits=tuple(Ulimit(k, u.soft, u.hard) for k, u in service.ulimits.items()),
        sysctls=tuple(service.sysctls.items()), shm_size=service.shm_size, restart=restart_for(service),
        healthcheck=healthcheck_for(service, config.healthcheck), log=logging_for(service, warn),
    )
    if mode != "bridge" and service.ports:
        warn.append(f"service {service.name}: ports are ignored with network_mode {mode}")
    return BuiltSpec(spec, tuple(warn))


def hosts_for(service: Service | None, spec: ContainerSpec, peers: Sequence[Peer],
              external: Sequence[tuple[Peer, str]] = ()) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The hosts entries a running container should have now (for set_hosts)."""
    if spec.network_mode != "bridge":
        return spec.hosts
    return hosts_entries([a.network for a in spec.networks], peers,
                         links=service.links if service else (), external=external,
                         extra_hosts=service.extra_hosts if service else (), self_id=spec.id)


# ---------------------------------------------------------------- convergence


@dataclass(frozen=True)
class Action:
    """One step of a convergence plan for one container of a service."""

    kind: str  # create | recreate | start | noop | remove
    service: str
    number: int
    container: object | None = None  # ContainerInfo of the existing container
    reason: str = ""


def diverged(container, service: Service, image_id: str) -> str:
    """Why the container no longer matches the service ("" if it does)."""
    if container.label(L_HASH) != config_hash(service):
        keys = changed_keys(container.label(L_KEYS), service) if container.label(L_KEYS) else []
        return "configuration changed" + (f": {', '.join(keys)}" if keys else "")
    if container.label(L_IMAGE, container.spec.image_id) != image_id:
        return "image changed"
    return ""


def unsupervised(container) -> str:
    """Why a running container must be recreated although its config is current: its monitor died.
    A new monitor cannot adopt it (PID 1 is not its child, and the log pipes died with the old one),
    so `up` replaces it (docs/ARCHITECTURE.md, "A container whose monitor died")."""
    return "its monitor died (unsupervised)" if getattr(container, "supervised", True) is False else ""


def plan(service: Service, replicas: int, image_id: str, existing: Sequence, *, force_recreate: bool = False,
         no_recreate: bool = False) -> list[Action]:
    """What to do with each replica: existing containers (ContainerInfo of this service, not
    one-off) are matched by number; missing numbers are created, extra ones removed."""
    by_number: dict[int, list] = {}
    for c in existing:
        try:
            n = int(c.label(L_NUMBER) or 0)
        except ValueError:
            n = 0
        by_number.setdefault(n, []).append(c)
    actions: list[Action] = []
    kept = sorted(by_number)
    # keep the lowest numbers; numbers beyond the replica count go (scale down)
    keep_numbers = [n for n in kept if n >= 1][:replicas]
    for n in kept:
        group = sorted(by_number[n], key=lambda c: (not c.running, -(c.created_at or 0)))
        extra = group[1:] if n in keep_numbers else group
        actions += [Action("remove", service.name, n, c, "scale") for c in extra]
        if n not in keep_numbers:
            continue
        c = group[0]
        why = "forced" if force_recreate else (unsupervised(c) or diverged(c, service, image_id))
        if why and not no_recreate:
            actions.append(Action("recreate", service.name, n, c, why))
        elif c.running:
            actions.append(Action("noop", service.name, n, c))
        else:
            actions.append(Action("start", service.name, n, c))
    free = (n for n in range(1, 1 << 20) if n not in keep_numbers)
    for _ in range(replicas - len(keep_numbers)):
        actions.append(Action("create", service.name, next(free)))
    return sorted(actions, key=lambda a: (a.kind != "remove", a.number))


def new_id() -> str:
    return os.urandom(32).hex()
