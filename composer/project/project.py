"""ProjectRunner: a whole stack. The services form a graph (parallel.Dag) over depends_on (which the
model already fills from links, volumes_from and network_mode service:x); containers start in
topological generations, in parallel within one, and stop in reverse. Never prints: everything a
user sees arrives as Events through `on_event`.

Identity lives in container labels, so everything except `up`/`create` also works without a
stack file (model None), by project name, like docker compose. Mutating verbs hold an fcntl lock
on `$COMPOSER_STATE_DIR/projects/<name>.lock`, so two commands on one project never interleave.

This module is the facade the CLI calls: the queries and the simple lifecycle verbs. The rest is
in mixins over project_base.RunnerBase's state: project_up (up/create), project_down (down),
project_containers (one container's steps, /etc/hosts), project_networks, project_volumes,
readiness (depends_on conditions, up --wait) and oneoff (run)."""

from __future__ import annotations

import signal
from collections.abc import Sequence

from composer.errors import ConflictError, NotFoundError
from composer.project.base import DownOptions, Event, RunnerBase, UpOptions, number
from composer.project.containers import ContainersMixin
from composer.project.down import DownMixin
from composer.project.networks import NetworksMixin
from composer.project.oneoff import OneOffMixin
from composer.project.ops import ProjectSummary, list_projects, restart_set, top_rows
from composer.project.parallel import map_parallel
from composer.project.readiness import ReadinessMixin
from composer.project.up import UpMixin
from composer.project.volumes import VolumesMixin
from composer.runtime import ContainerInfo
from composer.service.links import L_SERVICE


class ProjectRunner(UpMixin, DownMixin, ContainersMixin, NetworksMixin, VolumesMixin, ReadinessMixin, OneOffMixin,
                    RunnerBase):
    # ------------------------------------------------------------ queries

    def container_for(self, service: str, index: int = 1) -> ContainerInfo:
        self._check_services([service])
        for c in self.containers([service]):
            if number(c) == index:
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

    # ------------------------------------------------------------ lifecycle verbs

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


__all__ = ["DownOptions", "Event", "ProjectRunner", "ProjectSummary", "UpOptions", "list_projects"]
