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


def pin_digests(project: Project, pinned: Callable[[str], str] | None = None) -> Project:
    """Every service's `image:` pinned to its registry digest (`config --resolve-image-digests`); a
    service with only `build:` is left as it is. `pinned` (tests) replaces the registry lookup."""
    if pinned is None:
        from composer.images.pull import pinned_reference as pinned
    services = {n: replace(s, image=pinned(s.image)) if s.image else s for n, s in project.services.items()}
    return replace(project, services=type(project.services)(services))


def nothing_to_pull(project: Project, store: Any) -> bool:
    """Every service image is in the store and no service asks for pull_policy: always. The usual
    `up`: it then skips importing the registry client and the progress display (~14 ms)."""
    for svc in project.services.values():
        image = getattr(svc, "image", None)
        if (getattr(svc, "pull_policy", None) or "") == "always" or (image and not store.exists(image)):
            return False
    return True
