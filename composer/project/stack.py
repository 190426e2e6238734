"""The context every part of the orchestrator reads: `Stack`, one project as the runner sees it
(model or just its name, the runtime, the image and volume stores, the dependency graph) with the
read-only questions about it (which services, which containers, in which order), and the two small
collaborators whose state every part shares: `Reporter` (events out, warnings once, one lock) and
`ProjectLock` (the per-project fcntl lock, re-entrant within one runner).

Stack is frozen: the parts receive it and cannot rebind what it holds. What changes while a verb
runs lives in named collaborators that own their lock (Reporter, ProjectLock here; the peers and
hosts files in hostsbook.HostsBook)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from composer.config.model import Project
from composer.errors import ComposerError, NotFoundError
from composer.project.base import Event, dependency_graph, number
from composer.project.parallel import Once, ancestors, map_parallel, run_graph
from composer.runtime import ContainerInfo, Runtime
from composer.service import service as svcmod
from composer.service.links import L_ONEOFF, L_PROJECT, L_SERVICE
from composer.service.volumes import VolumeStore

if TYPE_CHECKING:
    from composer.images.store import ImageStore


class Reporter:
    """Events to the runner's `on_event`, one at a time (callbacks come from worker threads), and
    warnings that are said once per runner."""

    def __init__(self, on_event: Callable[[Event], None] | None) -> None:
        self._on_event = on_event
        self._lock = threading.Lock()
        self._once = Once()

    def emit(self, kind: str, name: str, action: str, service: str | None = None, detail: str = "", *,
             planned: bool = False) -> None:
        if self._on_event is not None:
            with self._lock:
                self._on_event(Event(kind, name, action, service, detail, planned))

    def warn_once(self, service: str, text: str) -> None:
        if self._once.first((service, text)):
            self.emit("container", service, "Warning", service, text)


class ProjectLock:
    """fcntl lock on `$STATE/projects/<name>.lock`: two commands on one project never interleave.
    Re-entrant within this runner (restart = stop + start); the depth is only touched by the
    thread that runs the verb (worker threads never take it)."""

    def __init__(self, state_dir: str, name: str) -> None:
        self._path = os.path.join(state_dir, "projects", f"{name}.lock")
        self._depth = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._depth = 1
            yield
        finally:
            self._depth = 0
            os.close(fd)


@dataclass(frozen=True)
class Stack:
    """One project: its model (None when only the name is known: everything but up/create/run
    works by labels), its runtime and stores, and the questions every part asks about it."""

    model: Project | None
    name: str
    runtime: Runtime
    volumes: VolumeStore
    report: Reporter
    lock: ProjectLock
    _store: list = field(default_factory=list, repr=False, compare=False)  # the ImageStore, made on first use

    @classmethod
    def open(cls, model: Project | None, *, name: str | None = None, runtime: Runtime | None = None,
             store: "ImageStore | None" = None, on_event: Callable[[Event], None] | None = None) -> "Stack":
        if model is None and not name:
            raise NotFoundError("no stack file found and no project name given",
                                hint="run in the project's directory, or pass -f FILE or -p NAME")
        name = name or model.name  # type: ignore[union-attr]
        runtime = runtime or Runtime()
        return cls(model, name, runtime, VolumeStore(runtime.data_dir), Reporter(on_event),
                   ProjectLock(runtime.state_dir, name), [store] if store is not None else [])

    @property
    def store(self) -> "ImageStore":
        if not self._store:
            from pathlib import Path

            from composer.images.store import ImageStore

            self._store.append(ImageStore(Path(self.runtime.data_dir)))
        return self._store[0]

    @cached_property
    def graph(self) -> dict[str, tuple[str, ...]]:
        """Dependency -> dependent over depends_on (base.dependency_graph)."""
        return dependency_graph(self.model)

    def emit(self, kind: str, name: str, action: str, service: str | None = None, detail: str = "", *,
             planned: bool = False) -> None:
        self.report.emit(kind, name, action, service, detail, planned=planned)

    # ------------------------------------------------------------ services

    def need_model(self) -> Project:
        if self.model is None:
            raise NotFoundError("no stack file found (compose.yaml, docker-compose.yml, fig.yml)",
                                hint="run in the project's directory or pass -f FILE")
        return self.model

    def check_services(self, services: Iterable[str]) -> None:
        if self.model is None:
            return
        for s in services:
            if s not in self.model.services:
                raise NotFoundError(f"no such service: {s}")

    def select(self, services: Sequence[str], no_deps: bool) -> list[str]:
        """The services named (all when none) and, unless no_deps, everything they depend on."""
        model = self.need_model()
        self.check_services(services)
        if not services:
            return list(model.services)
        chosen = set(services)
        if not no_deps:
            for s in services:
                chosen |= ancestors(self.graph, s)
        return sorted(chosen)

    def service_context(self) -> svcmod.ProjectContext:
        model = self.need_model()
        return svcmod.ProjectContext(self.name, model.working_dir, tuple(model.files),
                                     {k: n.name for k, n in model.networks.items()})

    # ------------------------------------------------------------ the project's containers

    def containers(self, services: Sequence[str] = (), *, all: bool = False,
                   oneoff: bool | None = False) -> list[ContainerInfo]:
        """The project's containers by labels, sorted by service and number."""
        self.check_services(services)
        out = []
        for c in self.runtime.list(all=all, labels={L_PROJECT: self.name}):
            if services and c.label(L_SERVICE) not in services:
                continue
            if oneoff is not None and (c.label(L_ONEOFF) == "True") != oneoff:
                continue
            out.append(c)
        return sorted(out, key=lambda c: (c.label(L_SERVICE) or "", number(c), c.name))

    def refetch(self, info: ContainerInfo) -> ContainerInfo:
        """The container's current state (the old one when it is gone)."""
        try:
            return self.runtime.get(info.id)
        except ComposerError:
            return info

    def orphans_in(self, containers: list[ContainerInfo]) -> list[ContainerInfo]:
        """Containers of services the stack file no longer declares (none without a stack file)."""
        if self.model is None:
            return []
        return [c for c in containers if c.label(L_SERVICE) not in self.model.services]

    def warn_orphans(self, orphans: list[ContainerInfo]) -> None:
        names = ", ".join(sorted({c.label(L_SERVICE) or c.name for c in orphans}))
        self.emit("container", self.name, "Warning", None,
                  f"found orphan containers ({names}) for this project; remove them with --remove-orphans")

    def run_services(self, containers: list[ContainerInfo], fn: Callable[[ContainerInfo], object], *,
                     reverse: bool) -> None:
        """fn over containers, service by service in dependency order (reverse: dependents first),
        in parallel within a generation; raises the first error after all ran."""
        groups: dict[str, list[ContainerInfo]] = {}
        for c in containers:
            groups.setdefault(c.label(L_SERVICE) or c.name, []).append(c)
        services = self.model.services if self.model is not None else {}
        if not any(d in groups for s in groups if s in services for d in services[s].depends_on):
            # no order to keep (no stack file, or independent services): one parallel map
            out = map_parallel(list(containers), fn)
            out.raise_first()
            return
        g = {n: tuple(d for d in self.graph.get(n, ()) if d in groups) for n in groups}
        outcome = run_graph(g, lambda n: map_parallel(groups[n], fn), reverse=reverse, skip_dependents=False)
        errors = [e for o in outcome.results.values() for e in o.errors.values()]
        errors += list(outcome.errors.values())
        if errors:
            raise errors[0]
