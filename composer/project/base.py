"""What every part of ProjectRunner stands on: the option and event types its verbs take, and
RunnerBase: the runner's state, the per-project lock, events, the dependency graph, service
selection, the project's containers by label and running a step over them in dependency order.

The other parts (project_up, project_down, project_containers, project_networks, project_volumes,
readiness, oneoff) are mixins over this state; project.ProjectRunner puts them together."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from composer.config.model import Project
from composer.errors import NotFoundError
from composer.project.parallel import Dag, Once, map_parallel, run_graph
from composer.runtime import ContainerInfo, Runtime
from composer.service import service as svcmod
from composer.service.links import L_NUMBER, L_ONEOFF, L_PROJECT, L_SERVICE, Peer
from composer.service.volumes import VolumeStore

if TYPE_CHECKING:
    from composer.images.store import ImageStore


@dataclass(frozen=True)
class Event:
    """What the runner reports (the CLI renders it): a container, network or volume and what happened to it."""

    kind: str  # "container" | "network" | "volume"
    name: str
    action: str  # Creating Created Starting Started Waiting Healthy Stopping Stopped Removing Removed
    #              Recreating Recreated Running Exited Error Warning (and Killing Killed)
    service: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class UpOptions:
    """The options of `up` (and `create`)."""

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
    """The options of `down`."""

    volumes: bool = False
    remove_orphans: bool = False
    timeout: float | None = None


def number(c: ContainerInfo) -> int:
    """The container's replica number (0 when its label is missing or garbled)."""
    try:
        return int(c.label(L_NUMBER) or 0)
    except ValueError:
        return 0


class RunnerBase:
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

    # ------------------------------------------------------------ the project's containers

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
        return sorted(out, key=lambda c: (c.label(L_SERVICE) or "", number(c), c.name))

    def _orphans_in(self, containers: list[ContainerInfo]) -> list[ContainerInfo]:
        """Containers of services the stack file no longer declares (none without a stack file)."""
        if self.model is None:
            return []
        return [c for c in containers if c.label(L_SERVICE) not in self.model.services]

    def _warn_orphans(self, orphans: list[ContainerInfo]) -> None:
        names = ", ".join(sorted({c.label(L_SERVICE) or c.name for c in orphans}))
        self.emit("container", self.name, "Warning", None,
                  f"found orphan containers ({names}) for this project; remove them with --remove-orphans")

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
