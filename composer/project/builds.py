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
                   no_cache: bool = False,
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
            svc.build, ref, store, runtime, no_cache=no_cache,
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
