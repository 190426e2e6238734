"""ProjectRunner: a whole stack, the facade the CLI (and any library user) calls. The services form
a graph (project.parallel, on graphlib) over depends_on (which the model already fills from links, volumes_from and network_mode
service:x); containers start in topological generations, in parallel within one, and stop in
reverse. Never prints: everything a user sees arrives as Events through `on_event`, and image
builds and pulls report through `on_image` (builds.BuildProgress, images.pull.PullEvent).

Identity lives in container labels, so everything except `up`/`create`/`run` also works without a
stack file (model None), by project name, like docker compose. Mutating verbs hold an fcntl lock
on `$COMPOSER_STATE_DIR/projects/<name>.lock`, so two commands on one project never interleave.

The runner holds a Stack (the context) and its Parts (the collaborators, parts.py says who owns
which state); the queries and simple lifecycle verbs are here, the long verbs are modules of
functions over the Parts: up, down, oneoff; images prepares what up and run need; attach decides
what an attached up follows and returns. This facade is the only place that composes them (run
brings up its dependencies here, so oneoff never calls into up)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from composer.config.model import Project
from composer.errors import ConflictError, NotFoundError
from composer.project import down as downmod
from composer.project.base import DownOptions, Event, UpOptions, number
from composer.project.ops import ProjectSummary, list_projects, restart_set, top_rows
from composer.project.parallel import map_parallel
from composer.project.parts import Parts
from composer.project.stack import Stack
from composer.runtime import ContainerInfo, Runtime
from composer.service.links import L_SERVICE

if TYPE_CHECKING:
    from composer.images.store import ImageStore
    from composer.project import attach as attachmod
    from composer.project import oneoff as oneoffmod
    from composer.service.volumes import VolumeStore


# up, images (and builds) and oneoff are imported by the verbs that use them: down, stop, ps...
# do not pay for them (~2 ms of every start).
def _up():
    from composer.project import up

    return up


def _images():
    from composer.project import images

    return images


def _oneoff():
    from composer.project import oneoff

    return oneoff


class ProjectRunner:
    def __init__(self, model: Project | None, *, name: str | None = None, runtime: Runtime | None = None,
                 store: "ImageStore | None" = None, on_event: Callable[[Event], None] | None = None,
                 on_image: Callable[[Any], None] | None = None) -> None:
        self.stack = Stack.open(model, name=name, runtime=runtime, store=store, on_event=on_event)
        self.parts = Parts.assemble(self.stack)
        self._on_image = on_image

    # ------------------------------------------------------------ what the stack is

    @property
    def model(self) -> Project | None:
        return self.stack.model

    @property
    def name(self) -> str:
        return self.stack.name

    @property
    def runtime(self) -> Runtime:
        return self.stack.runtime

    @property
    def store(self) -> "ImageStore":
        return self.stack.store

    @property
    def volumes(self) -> "VolumeStore":
        return self.stack.volumes

    @property
    def graph(self) -> dict[str, tuple[str, ...]]:
        return self.stack.graph

    def emit(self, kind: str, name: str, action: str, service: str | None = None, detail: str = "", *,
             planned: bool = False) -> None:
        self.stack.emit(kind, name, action, service, detail, planned=planned)

    # ------------------------------------------------------------ queries

    def containers(self, services: Sequence[str] = (), *, all: bool = False,
                   oneoff: bool | None = False) -> list[ContainerInfo]:
        return self.stack.containers(services, all=all, oneoff=oneoff)

    def container_for(self, service: str, index: int = 1) -> ContainerInfo:
        self.stack.check_services([service])
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

    # ------------------------------------------------------------ up, down, run, images

    def up(self, opts: UpOptions = UpOptions()) -> list[ContainerInfo]:
        """The whole of `up`: images prepared (built, pulled) as the options say, then the stack
        converged. Returns the selected services' containers. opts.dry_run: the plan of both, as
        planned Events; nothing built, pulled, created or started (and none returned)."""
        self.stack.need_model()
        if not opts.dry_run:
            self.runtime.prepare()  # fork the launcher before any thread exists
        _images().prepare(self.stack, build=opts.build, no_build=opts.no_build, pull=opts.pull,
                          progress=self._on_image, dry_run=opts.dry_run)
        return _up().up(self.parts, opts)

    def create(self, opts: UpOptions = UpOptions()) -> list[ContainerInfo]:
        return self.up(replace(opts, no_start=True))

    def down(self, opts: DownOptions = DownOptions()) -> None:
        downmod.down(self.parts, opts)

    def build(self, services: Sequence[str] = (), *, no_cache: bool = False, pull: bool = False,
              build_args: Sequence[tuple[str, str]] = (), with_dependencies: bool = False,
              dry_run: bool = False) -> dict[str, str]:
        """compose's `build`: every service with `build:` (or those named, and with_dependencies what
        they depend on). pull: pull the base images first; build_args override the files' args.
        Returns service -> image id (dry_run: planned Events, nothing built)."""
        self.stack.need_model()
        if not dry_run:
            self.runtime.prepare()  # RUN steps start containers
        return _images().build_images(self.stack, self._with_deps(services, with_dependencies), force=True,
                                      no_cache=no_cache, pull=pull, build_args=tuple(build_args),
                                      progress=self._on_image, dry_run=dry_run)

    def bake_file(self, services: Sequence[str] = (), *, build_args: Sequence[tuple[str, str]] = (),
                  with_dependencies: bool = False) -> dict:
        """`build --print`: the build as the bake file docker compose prints (builds.bake_file)."""
        from composer.project.builds import bake_file

        model = self.stack.need_model()
        return bake_file(model, self._with_deps(services, with_dependencies), tuple(build_args))

    def pull(self, services: Sequence[str] = (), *, policy: str | None = None, include_deps: bool = False,
             ignore_failures: bool = False, dry_run: bool = False) -> list[str]:
        """compose's `pull` (policy None, "missing" or "always"); include_deps: the named services'
        dependencies too; ignore_failures: a failed pull is a Warning event. Returns the references
        pulled (dry_run: planned Events, nothing pulled)."""
        return _images().pull_images(self.stack, self._with_deps(services, include_deps), policy=policy,
                                     progress=self._on_image, ignore_failures=ignore_failures, dry_run=dry_run)

    def _with_deps(self, services: Sequence[str], deps: bool) -> tuple[str, ...]:
        if not services or not deps:
            return tuple(services)
        return tuple(self.stack.select(services, no_deps=False))

    def push(self, services: Sequence[str] = (), *, include_deps: bool = False,
             ignore_failures: bool = False) -> list:
        """compose's `push`: built services' images to their registries (images.push.PushResult each)."""
        return _images().push_images(self.stack, services, include_deps=include_deps,
                                     ignore_failures=ignore_failures, progress=self._on_image)

    def create_oneoff(self, opts: oneoffmod.OneOffOptions) -> object:
        """`run`: prepare the images, start the dependencies (unless no_deps) and wait for them as
        `up` does, then create the one-off container (not started: the caller starts it, attached
        or not)."""
        model = self.stack.need_model()
        deps = _oneoff().dependencies(self.stack, opts)
        if opts.dry_run:  # the same steps, each reporting its plan
            _images().prepare(self.stack, build=opts.build, pull=opts.pull, dry_run=True)
            if opts.remove_orphans:
                _up().report_plan(self.stack, [], {}, UpOptions(remove_orphans=True),
                                  self.stack.orphans_in(self.stack.containers(all=True, oneoff=None)))
            if deps:
                _up().up(self.parts, UpOptions(services=tuple(deps), dry_run=True))
            _oneoff().report_plan(self.parts, opts)
            return None
        self.runtime.prepare()
        _images().prepare(self.stack, build=opts.build, pull=opts.pull, progress=self._on_image)
        if opts.remove_orphans:
            with self.stack.lock.held():
                _up().orphans(self.parts, self.stack.containers(all=True, oneoff=None), True, None)
        if deps:
            _up().up(self.parts, UpOptions(services=tuple(deps)))
            self.parts.readiness.wait_dependencies(model.services[opts.service], deps, set())
        return _oneoff().create(self.parts, opts)

    def start_oneoff(self, info, *, attach: bool = False):
        return _oneoff().start(self.parts, info, attach=attach)

    def attach_plan(self, infos: Sequence[ContainerInfo], opts: attachmod.AttachOptions) -> attachmod.AttachPlan:
        """What an attached `up` follows, when it aborts, what it stops (attach.py; loaded by an
        attached up only)."""
        from composer.project.attach import plan

        return plan(self.model, infos, opts)

    def exit_code(self, plan: attachmod.AttachPlan, aborted: tuple[int | None] | None,
                  codes: Sequence[int | None]) -> int:
        """The exit code of an attached `up` once its log stream has ended."""
        from_code = None
        if plan.opts.exit_code_from:
            found = self.containers((plan.opts.exit_code_from,), all=True)
            from_code = found[0].exit_code if found else None
        return plan.exit_code(aborted, codes, from_code)

    # ------------------------------------------------------------ lifecycle verbs

    def planned(self, containers: Sequence[ContainerInfo], action: str, detail: str = "") -> None:
        """A dry run of a simple verb: the containers it would act on, as planned Events."""
        for c in containers:
            self.emit("container", c.name, action, c.label(L_SERVICE), detail, planned=True)

    def start(self, services: Sequence[str] = (), *, dry_run: bool = False) -> list[ContainerInfo]:
        if dry_run:
            self.planned([c for c in self.containers(services, all=True) if not c.running], "Start")
            return []
        self.runtime.prepare()
        with self.stack.lock.held():
            todo = [c for c in self.containers(services, all=True) if not c.running]
            if not todo and not self.containers(services):
                raise NotFoundError("no containers to start" + (f" for {', '.join(services)}" if services else ""),
                                    hint="run `composer up` first")
            try:
                self.stack.run_services(todo, self.parts.steps.start, reverse=False)
            finally:
                self.parts.steps.refresh_hosts()
            return self.containers(services)

    def stop(self, services: Sequence[str] = (), timeout: float | None = None, *, dry_run: bool = False) -> None:
        if dry_run:
            self.planned(self.containers(services), "Stop")
            return
        self.runtime.prepare()
        with self.stack.lock.held():
            self.stack.run_services(self.containers(services), lambda c: self.parts.steps.stop(c, timeout),
                                    reverse=True)
            self.parts.steps.refresh_hosts()

    def restart(self, services: Sequence[str] = (), timeout: float | None = None, *,
                no_deps: bool = False, dry_run: bool = False) -> list[ContainerInfo]:
        """Stop dependents first, start dependencies first; takes along the services that declare
        `depends_on: {x: {restart: true}}` on a restarted x (unless no_deps)."""
        services = restart_set(self.model, services, no_deps=no_deps)
        if dry_run:
            self.planned(self.containers(services, all=True), "Restart")
            return []
        with self.stack.lock.held():
            self.stop(services, timeout)
            return self.start(services)

    def kill(self, services: Sequence[str] = (), sig: int = signal.SIGKILL, *, dry_run: bool = False) -> None:
        if dry_run:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            self.planned(self.containers(services), "Kill", name)
            return
        self.runtime.prepare()
        with self.stack.lock.held():
            def one(c: ContainerInfo) -> None:
                self.emit("container", c.name, "Killing", c.label(L_SERVICE))
                self.runtime.kill(c.id, sig)
                self.emit("container", c.name, "Killed", c.label(L_SERVICE))

            out = map_parallel(self.containers(services), one)
            out.raise_first()

    def pause(self, services: Sequence[str] = (), paused: bool = True, *, dry_run: bool = False) -> None:
        """Freeze (or thaw) the running containers; ones already in that state are skipped."""
        verb = ("Pausing", "Paused") if paused else ("Unpausing", "Unpaused")
        if dry_run:
            todo = [c for c in self.containers(services) if (c.status == "paused") != paused]
            self.planned(todo, "Pause" if paused else "Unpause")
            return
        with self.stack.lock.held():
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
                info = self.stack.refetch(c)
                if not info.running and info.status != "created" and (info.exit_code is not None
                                                                       or info.monitor_pid is None):
                    return info
            time.sleep(poll)

    def wait_ready(self, services: Sequence[str] = (), timeout: float | None = None) -> list[ContainerInfo]:
        """`up --wait`: until every container of `services` is ready (readiness.Readiness.wait_ready)."""
        return self.parts.readiness.wait_ready(services, timeout)

    def rm(self, services: Sequence[str] = (), *, force: bool = False, stop: bool = False,
           volumes: bool = False, dry_run: bool = False) -> list[str]:
        if dry_run:
            every = self.containers(services, all=True, oneoff=None)
            if stop:
                self.planned([c for c in every if c.running], "Stop")
            self.planned([c for c in every if force or stop or not c.running], "Remove")
            return []
        self.runtime.prepare()
        steps = self.parts.steps
        with self.stack.lock.held():
            if stop:
                self.stack.run_services(self.containers(services), lambda c: steps.stop(c, None), reverse=True)
            todo = [c for c in self.containers(services, all=True, oneoff=None) if force or not c.running]
            out = map_parallel(todo, lambda c: steps.remove(c, None, volumes))
            steps.refresh_hosts()
            out.raise_first()
            return sorted(out.results.values())


__all__ = ["DownOptions", "Event", "ProjectRunner", "ProjectSummary", "UpOptions", "list_projects"]
