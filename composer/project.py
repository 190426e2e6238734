"""ProjectRunner: a whole stack. The services form a graph (parallel.Dag) over depends_on (which the
model already fills from links, volumes_from and network_mode service:x); containers start in
topological generations, in parallel within one, and stop in reverse. Never prints: everything a
user sees arrives as Events through `on_event`.

Identity lives in container labels, so everything except `up`/`create` also works without a
stack file (model None), by project name, like docker compose. Mutating verbs hold an fcntl lock
on `$COMPOSER_STATE_DIR/projects/<name>.lock`, so two commands on one project never interleave."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from composer import recovery
from composer import service as svcmod
from composer.config.model import Project, Service
from composer.errors import ComposerError, ConflictError, ContainerError, NotFoundError
from composer.links import L_NUMBER, L_ONEOFF, L_PROJECT, L_SERVICE, Peer, peer_from_info
from composer.mounts import L_VOLUME, MountMaker, anonymous_volumes, requests_for
from composer.parallel import Dag, DependencyFailed, Once, map_parallel, run_graph
from composer.project_ops import ProjectSummary, list_projects, restart_set, top_rows
from composer.oneoff import OneOffMixin
from composer.readiness import DependencyError, ReadinessMixin
from composer.runtime import ContainerInfo, Runtime
from composer.runtime.spec import ContainerSpec
from composer.volumes import VolumeStore

if TYPE_CHECKING:
    from composer.images.store import ImageStore

L_NETWORK = "composer.network"


@dataclass(frozen=True)
class Event:
    kind: str  # "container" | "network" | "volume"
    name: str
    action: str  # Creating Created Starting Started Waiting Healthy Stopping Stopped Removing Removed
    #              Recreating Recreated Running Exited Error Warning (and Killing Killed)
    service: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class UpOptions:
    services: tuple[str, ...] = ()
    no_deps: bool = False
    force_recreate: bool = False
    no_recreate: bool = False
    no_start: bool = False
    remove_orphans: bool = False
    scale: tuple[tuple[str, int], ...] = ()
    timeout: float | None = None
    renew_anon_volumes: bool = False
    always_recreate_deps: bool = False


@dataclass(frozen=True)
class DownOptions:
    volumes: bool = False
    remove_orphans: bool = False
    timeout: float | None = None


def _number(c: ContainerInfo) -> int:
    try:
        return int(c.label(L_NUMBER) or 0)
    except ValueError:
        return 0


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


class ProjectRunner(ReadinessMixin, OneOffMixin):
    def __init__(self, model: Project | None, *, name: str | None = None, runtime: Runtime | None = None,
                 store: "ImageStore | None" = None, on_event: Callable[[Event], None] | None = None) -> None:
        if model is None and not name:
            raise NotFoundError("no stack file found and no project name given",
                                hint="run in the project's directory, or pass -f FILE or -p NAME")
        self.model = model
        self.name = name or model.name  # type: ignore[union-attr]
        self.runtime = runtime or Runtime()
        self._store = store
        self._on_event = on_event
        self.volumes = VolumeStore(self.runtime.data_dir)
        self._event_lock = threading.Lock()
        self._peer_lock = threading.Lock()
        self._peers: dict[str, Peer] = {}
        self._hosts_written: dict[str, tuple] = {}
        self._dirty = False  # a container came or went since the last /etc/hosts refresh
        self._lock_depth = 0
        self._once = Once()

    # ------------------------------------------------------------ plumbing

    @property
    def store(self) -> "ImageStore":
        if self._store is None:
            from pathlib import Path

            from composer.images.store import ImageStore

            self._store = ImageStore(Path(self.runtime.data_dir))
        return self._store

    @cached_property
    def graph(self) -> Dag:
        """Dependency -> dependent over depends_on (parallel.Dag: networkx's import alone cost
        ~70 ms of an `up` with nothing to do)."""
        g = Dag()
        if self.model is None:
            return g
        g.add_nodes_from(self.model.services)
        for name, s in self.model.services.items():
            for dep in s.depends_on:
                if dep in self.model.services:  # a missing optional (required: false) dep is no edge
                    g.add_edge(dep, name)
        cycle = g.find_cycle()
        if cycle:
            raise svcmod.ConfigError(f"dependency cycle between services: {' -> '.join(map(str, cycle + cycle[:1]))}")
        return g

    def emit(self, kind: str, name: str, action: str, service: str | None = None, detail: str = "") -> None:
        if self._on_event is not None:
            with self._event_lock:
                self._on_event(Event(kind, name, action, service, detail))

    def _warn_once(self, service: str, text: str) -> None:
        if self._once.first((service, text)):
            self.emit("container", service, "Warning", service, text)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """fcntl lock per project; re-entrant within this runner (restart = stop + start)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        d = os.path.join(self.runtime.state_dir, "projects")
        os.makedirs(d, exist_ok=True)
        fd = os.open(os.path.join(d, f"{self.name}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lock_depth = 1
            yield
        finally:
            self._lock_depth = 0
            os.close(fd)

    def _need_model(self) -> Project:
        if self.model is None:
            raise NotFoundError("no stack file found (compose.yaml, docker-compose.yml, fig.yml)",
                                hint="run in the project's directory or pass -f FILE")
        return self.model

    def _check_services(self, services: Iterable[str]) -> None:
        if self.model is None:
            return
        for s in services:
            if s not in self.model.services:
                raise NotFoundError(f"no such service: {s}")

    def _select(self, services: Sequence[str], no_deps: bool) -> list[str]:
        model = self._need_model()
        self._check_services(services)
        if not services:
            return list(model.services)
        chosen = set(services)
        if not no_deps:
            for s in services:
                chosen |= self.graph.ancestors(s)
        return sorted(chosen)

    def _ctx(self) -> svcmod.ProjectContext:
        model = self._need_model()
        return svcmod.ProjectContext(self.name, model.working_dir, tuple(model.files),
                                     {k: n.name for k, n in model.networks.items()})

    # ------------------------------------------------------------ queries

    def containers(self, services: Sequence[str] = (), *, all: bool = False,
                   oneoff: bool | None = False) -> list[ContainerInfo]:
        """The project's containers by labels, sorted by service and number."""
        self._check_services(services)
        out = []
        for c in self.runtime.list(all=all, labels={L_PROJECT: self.name}):
            if services and c.label(L_SERVICE) not in services:
                continue
            if oneoff is not None and (c.label(L_ONEOFF) == "True") != oneoff:
                continue
            out.append(c)
        return sorted(out, key=lambda c: (c.label(L_SERVICE) or "", _number(c), c.name))

    def container_for(self, service: str, index: int = 1) -> ContainerInfo:
        self._check_services([service])
        for c in self.containers([service]):
            if _number(c) == index:
                return c
        if index != 1 and self.containers([service]):
            raise NotFoundError(f"service {service} has no running container with index {index}")
        raise NotFoundError(f"service {service} is not running")

    def exec(self, service: str, argv: Sequence[str], *, index: int = 1, env: Sequence[tuple[str, str]] = (),
             cwd: str | None = None, user: str | None = None, tty: bool = False, detach: bool = False) -> int:
        c = self.container_for(service, index)
        return self.runtime.exec(c.id, list(argv), env=tuple(env), cwd=cwd, user=user, tty=tty, detach=detach)

    def port(self, service: str, private_port: int, protocol: str = "tcp", index: int = 1) -> tuple[str, int] | None:
        c = self.container_for(service, index)
        for p in c.ports:
            if p.container_port == private_port and p.protocol == protocol:
                return (p.host_ip or "0.0.0.0", p.host_port)
        return None

    def top(self, services: Sequence[str] = ()) -> list[tuple[ContainerInfo, list[tuple[str, ...]]]]:
        return [(c, top_rows(c.pid)) for c in self.containers(services) if c.pid]

    def images(self, services: Sequence[str] = ()) -> list[tuple[str, str, str]]:
        return [(c.name, c.spec.image, c.spec.image_id) for c in self.containers(services, all=True, oneoff=None)]

    # ------------------------------------------------------------ up / create

    def create(self, opts: UpOptions = UpOptions()) -> list[ContainerInfo]:
        from dataclasses import replace

        return self.up(replace(opts, no_start=True))

    def up(self, opts: UpOptions = UpOptions()) -> list[ContainerInfo]:
        model = self._need_model()
        self.runtime.prepare()  # fork the launcher before any thread exists
        with self._locked():
            names = self._select(opts.services, opts.no_deps)
            scale = dict(opts.scale)
            self._check_services(scale)
            images = {n: self._image(model.services[n]) for n in names}
            replicas = {n: scale.get(n, model.services[n].replicas) for n in names}
            for n in names:
                svcmod.check_network_mode(model.services[n])
                svcmod.check_replicas(model.services[n], replicas[n])
            existing = self.containers(all=True, oneoff=None)
            self._orphans(existing, opts.remove_orphans, opts.timeout)
            plans = {}
            deps_only = set(names) - set(opts.services) if opts.services else set()
            for n in names:
                mine = [c for c in existing if c.label(L_SERVICE) == n and c.label(L_ONEOFF) != "True"]
                force = opts.force_recreate or (opts.always_recreate_deps and n in deps_only)
                plans[n] = svcmod.plan(model.services[n], replicas[n], images[n].id, mine, force_recreate=force,
                                       no_recreate=opts.no_recreate)
            if not opts.no_start:
                self._check_ports(plans)
            self._ensure_networks(names)
            self._ensure_volumes(names)
            self._peers = {c.id: peer_from_info(c) for c in existing if c.running}
            maker = MountMaker(self.volumes, self.name)
            failed: set[str] = set()
            recreated: set[str] = set()

            def node(n: str) -> list[ContainerInfo]:
                s = model.services[n]
                try:
                    if not opts.no_start:
                        self._wait_dependencies(s, names, failed)
                        if svcmod.network_service(s):  # its netns owner may have been recreated just now
                            with self._peer_lock:
                                plans[n] = svcmod.follow_network_target(s, plans[n], list(self._peers.values()))
                    bounce = {d for d, dep in s.depends_on.items() if dep.restart and d in recreated}
                    out = self._converge(s, plans[n], images[n], maker, opts, restart_for=bounce)
                except BaseException:
                    failed.add(n)
                    raise
                if any(a.kind in ("recreate", "create") for a in plans[n]):
                    recreated.add(n)
                return out

            # dependents are not skipped by run_graph: each decides (required: false only warns)
            outcome = run_graph(self.graph, node, nodes=names, skip_dependents=False,
                                between=lambda _gen: self._refresh_hosts(only_if_changed=True))
            self._report(outcome)
            return self.containers(names, all=True)

    def _up_dependencies(self, services: Sequence[str]) -> None:
        """For `run`: bring up what a one-off depends on."""
        self.up(UpOptions(services=tuple(services)))

    def _report(self, outcome) -> None:
        for node, dep in outcome.skipped.items():
            self.emit("container", node, "Error", node, f"not started: dependency {dep} failed")
        errors = list(outcome.errors.items())
        if not errors:
            return
        for node, err in errors:
            if isinstance(err, (DependencyError, DependencyFailed)):
                self.emit("container", node, "Error", node, str(err))
        # a dependent not started because its dependency failed repeats the cause: raise the cause
        errors = [(n, e) for n, e in errors if not isinstance(e, DependencyFailed)] or errors
        if len(errors) == 1:
            raise errors[0][1]
        first = errors[0][1]
        names = ", ".join(n for n, _ in errors)
        err = ContainerError(f"services {names} failed; first: {first}")
        err.exit_code = getattr(first, "exit_code", 1)
        raise err

    def _image(self, service: Service):
        from composer.builds import image_ref

        ref = image_ref(self._need_model(), service)
        try:
            return self.store.resolve(ref)
        except NotFoundError:
            hint = ("`composer build` builds it" if service.build is not None else
                    "`composer pull` fetches it; `composer image bootstrap busybox` makes a base image")
            raise NotFoundError(f"image {ref} for service {service.name} not found", hint=hint) from None

    def _orphans(self, existing: list[ContainerInfo], remove: bool, timeout: float | None) -> None:
        model = self._need_model()
        orphans = [c for c in existing if c.label(L_SERVICE) not in model.services]
        if not orphans:
            return
        if not remove:
            names = ", ".join(sorted({c.label(L_SERVICE) or c.name for c in orphans}))
            self.emit("container", self.name, "Warning", None,
                      f"found orphan containers ({names}) for this project; remove them with --remove-orphans")
            return
        map_parallel(orphans, lambda c: self._remove_container(c, timeout))

    def _check_ports(self, plans: dict[str, list[svcmod.Action]]) -> None:
        """Every host port this up will publish must be free, before anything changes."""
        model = self._need_model()
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
        nm = self.runtime.network
        held = {(p.host_ip, p.host_port, p.protocol) for cid in replaced for p in nm.published(cid)}
        todo = [m for m in wanted if (m.host_ip, m.host_port, m.protocol) not in held]
        try:
            nm.check_ports(todo)
        except ConflictError as err:
            owner = next((n for n, acts in plans.items() for a in acts
                          if any(str(m.host_port) in err.message for m in svcmod.port_mappings(model.services[n], a.number))), None)
            raise ConflictError(f"service {owner}: {err.message}" if owner else err.message, hint=err.hint) from None

    def _ensure_networks(self, names: Sequence[str]) -> None:
        model = self._need_model()
        keys = sorted({k for n in names for k in model.services[n].networks
                       if svcmod.check_network_mode(model.services[n]) == "bridge"})
        if not keys:
            return
        nm = self.runtime.network
        for key in keys:
            if key not in model.networks:
                raise svcmod.ConfigError(f"network {key} is used but not declared", key="networks")
            net = model.networks[key]
            if net.external:
                if nm.get(net.name) is None:
                    raise NotFoundError(f"network {net.name} declared as external, but could not be found",
                                        hint=f"create it first: composer network create {net.name}")
                continue
            if net.driver not in (None, "bridge"):
                self._warn_once(key, f"network {key}: driver {net.driver!r} is not supported, using bridge")
            existed = nm.get(net.name) is not None
            if not existed:
                self.emit("network", net.name, "Creating")
            pool = net.ipam[0] if net.ipam else None
            labels = {**net.labels, L_PROJECT: self.name, L_NETWORK: key}
            info = nm.ensure(net.name, subnet=pool.subnet if pool else None, gateway=pool.gateway if pool else None,
                             internal=net.internal, labels=tuple(sorted(labels.items())))
            recovery.tag_bridge(info.bridge, recovery.BridgeTag(recovery.scope_of(self.runtime), self.name, net.name))
            if not existed:
                self.emit("network", net.name, "Created")

    def _ensure_volumes(self, names: Sequence[str]) -> None:
        model = self._need_model()
        keys = sorted({v.source for n in names for v in model.services[n].volumes if v.type == "volume" and v.source})
        for key in keys:
            if key not in model.volumes:
                raise svcmod.ConfigError(f"volume {key} is used but not declared", key="volumes")
            vol = model.volumes[key]
            if vol.external:
                if not self.volumes.exists(vol.name):
                    raise NotFoundError(f"volume {vol.name} declared as external, but could not be found",
                                        hint=f"create it first: composer volume create {vol.name}")
                continue
            if not self.volumes.exists(vol.name):
                self.emit("volume", vol.name, "Creating")
                labels = {**vol.labels, L_PROJECT: self.name, L_VOLUME: key}
                self.volumes.ensure(vol.name, tuple(sorted(labels.items())))
                self.emit("volume", vol.name, "Created")

    def _converge(self, s: Service, actions: list[svcmod.Action], image, maker: MountMaker,
                  opts: UpOptions, restart_for: set[str] = frozenset()) -> list[ContainerInfo]:
        """The service's plan: removals first (highest number first), then every replica in
        parallel. restart_for: recreated dependencies with `restart: true` (running replicas bounce)."""
        removals = sorted((a for a in actions if a.kind == "remove"), key=lambda a: -a.number)
        map_parallel(removals, lambda a: self._remove_container(a.container, opts.timeout)).raise_first()
        rest = [a for a in actions if a.kind != "remove"]
        done = map_parallel(rest, lambda a: self._apply(s, a, image, maker, opts, restart_for))
        done.raise_first()
        return [done.results[a] for a in rest]

    def _apply(self, s: Service, a: svcmod.Action, image, maker: MountMaker, opts: UpOptions,
               restart_for: set[str]) -> ContainerInfo:
        if a.kind == "noop" and restart_for and not opts.no_start:
            self.emit("container", a.container.name, "Restarting", s.name,
                      f"dependency {', '.join(sorted(restart_for))} was recreated")
            self._stop(a.container, opts.timeout, quiet=True)
            return self._start(a.container)
        if a.kind == "noop":
            self.emit("container", a.container.name, "Running", s.name)
            return a.container
        if a.kind == "start":
            return a.container if opts.no_start else self._start(a.container)
        if a.kind == "create":
            info = self._create(s, a.number, image, maker)
            return info if opts.no_start else self._start(info)
        old = a.container  # recreate
        self.emit("container", old.name, "Recreating", s.name, a.reason)
        self._stop(old, opts.timeout, quiet=True)
        self.runtime.remove(old.id, force=True)
        self._forget(old.id)
        info = self._create(s, a.number, image, maker, previous=old, renew=opts.renew_anon_volumes, quiet=True)
        self.emit("container", info.name, "Recreated", s.name)
        return info if opts.no_start else self._start(info)

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

    def _volumes_from(self, s: Service) -> list[tuple[tuple, bool]]:
        out = []
        for item in s.volumes_from:
            parts = item.split(":")
            if parts[0] == "container":
                ref, mode = parts[1], (parts[2] if len(parts) > 2 else "rw")
                src = self.runtime.get(ref)
            else:
                ref, mode = parts[0], (parts[1] if len(parts) > 1 else "rw")
                found = [c for c in self.containers([ref], all=True)]
                if not found:
                    raise NotFoundError(f"service {s.name}: volumes_from {ref} has no container")
                src = found[0]
            out.append((src.spec.mounts, mode == "ro"))
        return out

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

    # ------------------------------------------------------------ lifecycle verbs

    def _by_service(self, containers: list[ContainerInfo]) -> dict[str, list[ContainerInfo]]:
        out: dict[str, list[ContainerInfo]] = {}
        for c in containers:
            out.setdefault(c.label(L_SERVICE) or c.name, []).append(c)
        return out

    def _run_services(self, containers: list[ContainerInfo], fn: Callable[[ContainerInfo], object], *,
                      reverse: bool) -> None:
        """fn over containers, service by service in dependency order (reverse: dependents first),
        in parallel within a generation; raises the first error after all ran."""
        groups = self._by_service(containers)
        services = self.model.services if self.model is not None else {}
        if not any(d in groups for s in groups if s in services for d in services[s].depends_on):
            # no order to keep (no stack file, or independent services): one parallel map
            out = map_parallel(list(containers), fn)
            out.raise_first()
            return
        g = Dag()
        g.add_nodes_from(groups)
        g.add_edges_from((a, b) for a, b in self.graph.edges if a in groups and b in groups)
        outcome = run_graph(g, lambda n: map_parallel(groups[n], fn), reverse=reverse, skip_dependents=False)
        errors = [e for o in outcome.results.values() for e in o.errors.values()]
        errors += list(outcome.errors.values())
        if errors:
            raise errors[0]

    def start(self, services: Sequence[str] = ()) -> list[ContainerInfo]:
        self.runtime.prepare()
        with self._locked():
            todo = [c for c in self.containers(services, all=True) if not c.running]
            if not todo and not self.containers(services):
                raise NotFoundError("no containers to start" + (f" for {', '.join(services)}" if services else ""),
                                    hint="run `composer up` first")
            try:
                self._run_services(todo, self._start, reverse=False)
            finally:
                self._refresh_hosts()
            return self.containers(services)

    def stop(self, services: Sequence[str] = (), timeout: float | None = None) -> None:
        self.runtime.prepare()
        with self._locked():
            self._run_services(self.containers(services), lambda c: self._stop(c, timeout), reverse=True)
            self._refresh_hosts()

    def restart(self, services: Sequence[str] = (), timeout: float | None = None, *,
                no_deps: bool = False) -> list[ContainerInfo]:
        """Stop dependents first, start dependencies first; takes along the services that declare
        `depends_on: {x: {restart: true}}` on a restarted x (unless no_deps)."""
        services = restart_set(self.model, services, no_deps=no_deps)
        with self._locked():
            self.stop(services, timeout)
            return self.start(services)

    def kill(self, services: Sequence[str] = (), sig: int = signal.SIGKILL) -> None:
        self.runtime.prepare()
        with self._locked():
            def one(c: ContainerInfo) -> None:
                self.emit("container", c.name, "Killing", c.label(L_SERVICE))
                self.runtime.kill(c.id, sig)
                self.emit("container", c.name, "Killed", c.label(L_SERVICE))

            out = map_parallel(self.containers(services), one)
            out.raise_first()

    def pause(self, services: Sequence[str] = (), paused: bool = True) -> None:
        """Freeze (or thaw) the running containers; ones already in that state are skipped."""
        verb = ("Pausing", "Paused") if paused else ("Unpausing", "Unpaused")
        with self._locked():
            todo = [c for c in self.containers(services) if (c.status == "paused") != paused]
            if not todo:
                raise ConflictError("no container to " + ("pause" if paused else "unpause")
                                    + (f" for {', '.join(services)}" if services else ""))

            def one(c: ContainerInfo) -> None:
                self.emit("container", c.name, verb[0], c.label(L_SERVICE))
                (self.runtime.pause if paused else self.runtime.unpause)(c.id)
                self.emit("container", c.name, verb[1], c.label(L_SERVICE))

            map_parallel(todo, one).raise_first()

    def wait_first(self, services: Sequence[str] = (), poll: float = 0.1) -> ContainerInfo:
        """`composer wait`: block until the first of the services' containers has exited."""
        import time

        containers = self.containers(services, all=True)
        if not containers:
            raise NotFoundError("no containers to wait for" + (f" ({', '.join(services)})" if services else ""))
        while True:
            for c in containers:
                info = self._refetch(c)
                if not info.running and info.status != "created" and (info.exit_code is not None
                                                                       or info.monitor_pid is None):
                    return info
            time.sleep(poll)

    def rm(self, services: Sequence[str] = (), *, force: bool = False, stop: bool = False,
           volumes: bool = False) -> list[str]:
        self.runtime.prepare()
        with self._locked():
            if stop:
                self._run_services(self.containers(services), lambda c: self._stop(c, None), reverse=True)
            todo = [c for c in self.containers(services, all=True, oneoff=None) if force or not c.running]
            out = map_parallel(todo, lambda c: self._remove_container(c, None, volumes))
            self._refresh_hosts()
            out.raise_first()
            return sorted(out.results.values())

    def down(self, opts: DownOptions = DownOptions()) -> None:
        # No runtime.prepare(): down spawns no monitor, and a launcher started for nothing costs an
        # interpreter start (~15 ms of CPU on a 2-core host) while we work.
        with self._locked():
            containers = self.containers(all=True, oneoff=None)
            if self.model is not None and not opts.remove_orphans:
                orphans = [c for c in containers if c.label(L_SERVICE) not in self.model.services]
                if orphans:
                    names = ", ".join(sorted({c.label(L_SERVICE) or c.name for c in orphans}))
                    self.emit("container", self.name, "Warning", None,
                              f"found orphan containers ({names}) for this project; remove them with --remove-orphans")
                    containers = [c for c in containers if c not in orphans]
            # Stop everything first, then remove: by the time we remove, the kernel has torn down
            # the dead containers' network namespaces and their veths (the removal just checks
            # they are gone), which is much cheaper than deleting each veth through netlink.
            unpublishing = self._unpublish_in_background(containers)
            try:
                self._run_services(containers, lambda c: self._stop_for_removal(c, opts.timeout), reverse=True)
            except ComposerError as err:  # removal kills what did not stop: down must go on
                self.emit("container", self.name, "Warning", None, str(err))
            if unpublishing is not None:
                unpublishing.join()
            out = map_parallel(containers, lambda c: self._remove_container(c, opts.timeout, opts.volumes, stop=False))
            out.raise_first()
            self._remove_networks()
            if opts.volumes:
                self._remove_volumes()

    def _stop_for_removal(self, c: ContainerInfo, timeout: float | None) -> None:
        """down's stop: stop signal, grace period, SIGKILL, as runtime.stop, but without waiting for
        the monitor to record the exit: the removal that follows kills the monitor and cleans up
        after it. Measured with 30 services: the exit is recorded 80-200 ms after PID 1 is gone
        (30 monitors at once on 2 cores), the process itself exits in 5-30 ms. Paused or
        restarting containers, and stop signals that do not mark a manual stop (so the restart
        policy could start the container again), take the full runtime.stop."""
        sig = c.spec.stop_signal
        if c.status != "running" or not c.pid or sig not in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
            self._stop(c, timeout)
            return
        try:
            pidfd = os.pidfd_open(c.pid)
        except OSError:
            self._stop(c, timeout)  # gone already, or no pidfd: the runtime knows best
            return
        svc = c.label(L_SERVICE)
        self.emit("container", c.name, "Stopping", svc)
        try:
            grace = c.spec.stop_timeout if timeout is None else timeout
            try:
                self.runtime.kill(c.id, sig)  # verifies pid and start time; marks a manual stop
            except ConflictError:
                grace = 0  # not running any more
            if grace and not select.select([pidfd], [], [], grace)[0]:
                with contextlib.suppress(ConflictError):
                    self.runtime.kill(c.id, signal.SIGKILL)
                select.select([pidfd], [], [], 10.0)
        finally:
            os.close(pidfd)
        self._forget(c.id)
        self.emit("container", c.name, "Stopped", svc)

    def _unpublish_in_background(self, containers: list[ContainerInfo]) -> threading.Thread | None:
        """Withdraw the published ports of containers that are going away, beside their stops (as
        docker, a stopping container stops forwarding): the nft commit (13-30 ms) would otherwise
        be on the critical path of the removals. Errors are left to the removal, which retries."""
        if not os.path.isdir(os.path.join(self.runtime.state_dir, "networks")):
            return None
        nm = self.runtime.network
        ids = {c.id for c in containers} & {p.container_id for p in nm.published()}
        if not ids:
            return None

        def run() -> None:
            for cid in sorted(ids):
                with contextlib.suppress(Exception):
                    nm.unpublish(cid)

        thread = threading.Thread(target=run, name="composer-unpublish", daemon=True)
        thread.start()
        return thread

    def _remove_networks(self) -> None:
        names = set()
        if self.model is not None:
            names |= {n.name for n in self.model.networks.values() if not n.external}
        for name in recovery.reclaim_networks(self.runtime, self.name, names):  # records lost in a crash
            self.emit("network", name, "Removed")
        if not os.path.isdir(os.path.join(self.runtime.state_dir, "networks")):
            return  # nothing was ever made (or the state dir went with a reboot)
        nm = self.runtime.network
        names |= {n.name for n in nm.list() if dict(n.labels).get(L_PROJECT) == self.name}
        for name in sorted(names):
            if nm.get(name) is None:
                continue
            self.emit("network", name, "Removing")
            try:
                nm.remove(name)
            except ConflictError:
                nm.gc({c.id for c in self.runtime.list(all=True)})  # endpoints of containers lost in a crash
                try:
                    nm.remove(name)
                except ConflictError as err:
                    self.emit("network", name, "Warning", None, str(err))
                    continue
            self.emit("network", name, "Removed")

    def _remove_volumes(self) -> None:
        names = {v.name for v in self.volumes.list({L_PROJECT: self.name})}
        if self.model is not None:
            names |= {v.name for v in self.model.volumes.values() if not v.external and self.volumes.exists(v.name)}
        for name in sorted(names):
            info = self.volumes.get(name)
            label = name[:12] if info.anonymous else name
            self.emit("volume", label, "Removing")
            self.volumes.remove(name)
            self.emit("volume", label, "Removed")


__all__ = ["DownOptions", "Event", "ProjectRunner", "ProjectSummary", "UpOptions", "list_projects"]
