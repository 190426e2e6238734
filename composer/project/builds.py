"""Images for a stack's services: build the ones with `build:` (compose's `build` verb, `up --build`,
and `up` when a built image is missing; images.py decides which). It knows the config model and the
images package, and reports progress through a callback (it never prints)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from composer.config.model import Project, Service
from composer.errors import NotFoundError, UsageError


@dataclass(frozen=True)
class BuildProgress:
    """A step of an image build that `up` runs, for the display."""

    service: str
    kind: str  # start | step | cached | output | stored | done
    text: str = ""


def image_ref(project: Project, service: Service) -> str:
    """The tag a built service gets: its `image:` if set, else `<project>-<service>` (compose v2)."""
    return service.image or f"{project.name}-{service.name}"


def services_to_build(project: Project, names: Sequence[str] = (), *, force: bool,
                      exists: Callable[[str], bool]) -> list[Service]:
    """Services with `build:` among `names` (all when empty); unless `force`, only those whose
    image is not in the store yet (what `up` does without --build)."""
    unknown = [n for n in names if n not in project.services]
    if unknown:
        raise UsageError(f"no such service: {unknown[0]}")
    chosen = [project.services[n] for n in names] if names else list(project.services.values())
    return [s for s in chosen if s.build is not None and (force or not exists(image_ref(project, s)))]


def build_services(project: Project, services: Sequence[Service], store, runtime, *,
                   no_cache: bool = False, pull: bool = False, build_args: tuple[tuple[str, str], ...] = (),
                   progress: Callable[[BuildProgress], None] | None = None) -> dict[str, str]:
    """Build each service's image in turn (RUN steps share the machine's two cores better one at a
    time than in parallel). Returns service -> image id. `runtime.prepare()` must have run."""
    from composer.images.dockerfile.builder import build_service_image

    report = progress or (lambda _p: None)
    built: dict[str, str] = {}
    for svc in services:
        ref = image_ref(project, svc)
        report(BuildProgress(svc.name, "start", ref))
        image = build_service_image(
            svc.build, ref, store, runtime, no_cache=no_cache, pull=pull, build_args=build_args,
            progress=lambda ev, name=svc.name: report(BuildProgress(name, ev.kind, ev.text)))
        built[svc.name] = image.id
        report(BuildProgress(svc.name, "done", image.id))
    return built


def require_images(project: Project, services: Sequence[Service], exists: Callable[[str], bool]) -> None:
    """A service without `build:` whose image is missing: say what to do, naming the service."""
    for svc in services:
        if svc.build is None and svc.image and not exists(svc.image):
            raise NotFoundError(
                f"service {svc.name}: image '{svc.image}' not found",
                hint="'composer pull' fetches it, 'composer image bootstrap busybox' makes a base image")


def bake_file(project: Project, names: Sequence[str] = (), build_args: tuple[tuple[str, str], ...] = ()) -> dict:
    """`build --print`: the build as a bake file, in the shape docker compose prints it (group
    "default" naming the services asked for, one target per service with `build:`, those asked for
    and what they depend on). Labels are the build's own: composer adds none to what it builds."""
    from composer.project.parallel import ancestors
    from composer.project.base import dependency_graph

    unknown = [n for n in names if n not in project.services]
    if unknown:
        raise UsageError(f"no such service: {unknown[0]}")
    graph = dependency_graph(project)
    chosen = set(names or project.services)
    for n in list(chosen):
        chosen |= ancestors(graph, n)
    asked = [n for n in sorted(names or project.services) if project.services[n].build is not None]
    targets = {n: _bake_target(project, project.services[n], build_args) for n in sorted(chosen)
               if project.services[n].build is not None}
    return {"group": {"default": {"targets": asked}}, "target": targets}


def _bake_target(project: Project, svc: Service, build_args: tuple[tuple[str, str], ...]) -> dict:
    import os

    b = svc.build
    t: dict = {"context": b.context}
    extra = getattr(b, "additional_contexts", None)
    if extra:
        t["contexts"] = dict(extra)
    if b.dockerfile_inline is not None:
        t["dockerfile-inline"] = b.dockerfile_inline
    else:
        t["dockerfile"] = os.path.join(b.context, b.dockerfile or "Dockerfile")
    args = {k: v for k, v in {**dict(b.args or {}), **dict(build_args)}.items() if v is not None}
    if args:
        t["args"] = args
    if b.labels:
        t["labels"] = dict(b.labels)
    t["tags"] = [*b.tags, image_ref(project, svc)]
    if b.target:
        t["target"] = b.target
    if b.cache_from:
        t["cache-from"] = list(b.cache_from)
    if b.pull:
        t["pull"] = True
    if b.no_cache:
        t["no-cache"] = True
    if b.network:
        t["network"] = b.network
    if b.platforms:
        t["platforms"] = list(b.platforms)
    if b.shm_size:
        t["shm-size"] = str(b.shm_size)
    if b.extra_hosts:
        t["extra-hosts"] = dict(h.split(":", 1) if ":" in h else h.split("=", 1) for h in b.extra_hosts)
    t["output"] = ["type=docker"]
    return t
