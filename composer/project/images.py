"""The images a stack's services run, as the orchestrator prepares them: `prepare` is the first step
of `up` (and `run`): build what has `build:` and no image yet (every one of them with --build),
then pull what is still missing (or what asks for pull_policy: always); `build` and `pull` are
compose's verbs of those names; `resolve` finds the image a service's containers are made from.

Progress goes to a callback, never to a terminal: builds.BuildProgress for build steps and
images.pull.PullEvent for downloads (the CLI renders both). With nothing to build and nothing to
pull (the usual `up`), neither the builder nor the registry client is imported."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from composer.config.model import Project, Service
from composer.errors import NotFoundError
from composer.project.builds import build_services, image_ref, services_to_build
from composer.project.stack import Stack

ImageProgress = Callable[[Any], None]  # receives builds.BuildProgress and images.pull.PullEvent


def resolve(stack: Stack, service: Service):
    """The stored image of a service's containers (its `image:` or the tag its build gets)."""
    ref = image_ref(stack.need_model(), service)
    try:
        return stack.store.resolve(ref)
    except NotFoundError:
        hint = ("`composer build` builds it" if service.build is not None else
                "`composer pull` fetches it; `composer image bootstrap busybox` makes a base image")
        raise NotFoundError(f"image {ref} for service {service.name} not found", hint=hint) from None


def prepare(stack: Stack, *, build: bool = False, no_build: bool = False, pull: str = "missing",
            progress: ImageProgress | None = None) -> None:
    """What `up` does before it plans: build (unless no_build; build=True rebuilds), then pull what
    is still missing (unless pull == "never"). Every service of the model, as compose does.
    `stack.runtime.prepare()` must have run (a build's RUN steps start containers)."""
    model = stack.need_model()
    if not no_build:
        build_images(stack, force=build, progress=progress)
    if pull != "never" and not nothing_to_pull(model, stack.store):
        pull_images(stack, policy="missing", progress=progress)


def build_images(stack: Stack, services: Sequence[str] = (), *, force: bool, no_cache: bool = False,
                 progress: ImageProgress | None = None) -> dict[str, str]:
    """Build the services' images (all with `build:` when none named; unless force, only those not
    in the store). Returns service -> image id."""
    model = stack.need_model()
    if not any(svc.build is not None for svc in model.services.values()):
        return {}  # nothing to build: don't even open the store
    todo = services_to_build(model, services, force=force, exists=stack.store.exists)
    if not todo:
        return {}
    return build_services(model, todo, stack.store, stack.runtime, no_cache=no_cache, progress=progress)


def pull_images(stack: Stack, services: Sequence[str] = (), *, policy: str | None,
                progress: ImageProgress | None = None) -> list[str]:
    """compose's `pull` (policy None), or what `up` pulls ("missing"); see images.pull."""
    from composer.images.pull import pull_project_images

    project = stack.need_model()
    if services:
        project = replace(project, services=type(project.services)(
            (n, s) for n, s in project.services.items() if n in services))
    return pull_project_images(project, stack.store, policy, progress=progress)


def nothing_to_pull(project: Project, store: Any) -> bool:
    """Every service image is in the store and no service asks for pull_policy: always. The usual
    `up`: it then skips importing the registry client and the progress display (~14 ms)."""
    for svc in project.services.values():
        image = getattr(svc, "image", None)
        if (getattr(svc, "pull_policy", None) or "") == "always" or (image and not store.exists(image)):
            return False
    return True


def push_targets(project: Project, services: Sequence[str]) -> list[tuple[str, str]]:
    """(service, reference) pairs compose's `push` pushes: services that are built AND name an
    `image:` (with their build.tags); the others are skipped, as docker compose does."""
    out = []
    for name in services or list(project.services):
        svc = project.services[name]
        if svc.build is None or not svc.image:
            continue
        out += [(name, ref) for ref in dict.fromkeys((svc.image, *svc.build.tags))]
    return out


def push_images(stack: Stack, services: Sequence[str] = (), *, include_deps: bool = False,
                ignore_failures: bool = False, progress: ImageProgress | None = None) -> list:
    """compose's `push`: the images of the services named (all when none; and what they depend on with
    include_deps). Returns images.push.PushResult per reference."""
    from composer.images.push import push_services

    names = stack.select(services, no_deps=not include_deps) if services else list(stack.need_model().services)
    return push_services(stack.store, push_targets(stack.need_model(), names), ignore_failures=ignore_failures,
                         progress=progress)
