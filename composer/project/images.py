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
from composer.errors import ConflictError, NotFoundError, UsageError
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
            progress: ImageProgress | None = None, dry_run: bool = False) -> None:
    """What `up` does before it plans: build (unless no_build; build=True or pull="build" rebuilds),
    then pull what is still missing (pull "missing"/"policy"), every service image ("always"), or
    nothing ("never"). Every service of the model, as compose does. `stack.runtime.prepare()` must
    have run (a build's RUN steps start containers). dry_run: report what would be built and pulled
    (planned Events), do neither."""
    model = stack.need_model()
    force = build or pull == "build"
    if dry_run:
        if not no_build and any(svc.build is not None for svc in model.services.values()):
            for svc in services_to_build(model, force=force, exists=stack.store.exists):
                stack.report.emit("image", image_ref(model, svc), "Build", svc.name,
                                  "--build" if force else "no image yet", planned=True)
        for service, ref in _to_pull(stack, model, pull):
            stack.report.emit("image", ref, "Pull", service,
                              "--pull always" if pull == "always" else "not in the store", planned=True)
        return
    if not no_build:
        build_images(stack, force=force, progress=progress)
    if _to_pull(stack, model, pull):
        pull_images(stack, policy="always" if pull == "always" else "missing", progress=progress)


def _to_pull(stack: Stack, model: Project, pull: str) -> list[tuple[str, str]]:
    """(service, reference) that prepare pulls."""
    if pull == "never" or (pull != "always" and nothing_to_pull(model, stack.store)):
        return []
    from composer.images.pull import images_to_pull

    return images_to_pull(model, stack.store, "always" if pull == "always" else "missing")


def build_images(stack: Stack, services: Sequence[str] = (), *, force: bool, no_cache: bool = False,
                 pull: bool = False, build_args: tuple[tuple[str, str], ...] = (),
                 progress: ImageProgress | None = None, dry_run: bool = False) -> dict[str, str]:
    """Build the services' images (all with `build:` when none named; unless force, only those not
    in the store). Returns service -> image id (dry_run: reports each as a planned Event, builds
    nothing and returns {})."""
    model = stack.need_model()
    if not any(svc.build is not None for svc in model.services.values()):
        return {}  # nothing to build: don't even open the store
    todo = services_to_build(model, services, force=force, exists=stack.store.exists)
    if not todo:
        return {}
    if dry_run:
        for svc in todo:
            stack.emit("image", image_ref(model, svc), "Build", svc.name, "", planned=True)
        return {}
    return build_services(model, todo, stack.store, stack.runtime, no_cache=no_cache, pull=pull,
                          build_args=build_args, progress=progress)


def pull_images(stack: Stack, services: Sequence[str] = (), *, policy: str | None,
                progress: ImageProgress | None = None, ignore_failures: bool = False,
                dry_run: bool = False) -> list[str]:
    """compose's `pull` (policy None), or what `up` pulls ("missing"); see images.pull.
    ignore_failures (--ignore-pull-failures): a failed pull is reported as a Warning event and the
    others go on."""
    from composer.images.pull import pull_project_images

    project = stack.need_model()
    if services:
        project = replace(project, services=type(project.services)(
            (n, s) for n, s in project.services.items() if n in services))

    if dry_run:
        from composer.images.pull import images_to_pull

        for service, ref in images_to_pull(project, stack.store, policy):
            stack.emit("image", ref, "Pull", service, "", planned=True)
        return []

    def failed(service: str, err: Exception) -> None:
        stack.emit("image", service, "Warning", service, f"service {service}: pull failed (ignored): {err}")

    return pull_project_images(project, stack.store, policy, progress=progress,
                               on_failure=failed if ignore_failures else None)


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


def images_to_remove(stack: Stack, rmi: str, containers: Sequence[Any]) -> list[tuple[str, str]]:
    """(service, reference) that `down --rmi` removes, as compose: "all" every service's image,
    "local" only the images without a custom tag (built under the project's default name
    `<project>-<service>`, from services that have no `image:`). Without a stack file, the
    images the project's containers were made from. Only those in the store."""
    from composer.service.links import L_SERVICE

    if rmi not in ("local", "all"):
        raise UsageError(f"invalid --rmi {rmi!r}: expected local or all")
    found: dict[str, str] = {}
    if stack.model is not None:
        for svc in stack.model.services.values():
            if rmi == "all" or not svc.image:
                found.setdefault(image_ref(stack.model, svc), svc.name)
    for c in containers:
        svc_name = c.label(L_SERVICE) or ""
        if rmi == "all" or c.spec.image == f"{stack.name}-{svc_name}":
            found.setdefault(c.spec.image, svc_name)
    return [(svc, ref) for ref, svc in found.items() if ref and stack.store.exists(ref)]


def remove_images(stack: Stack, images: Sequence[tuple[str, str]]) -> None:
    """Remove (untag) each reference; one still used by a container elsewhere stays, with a warning."""
    for service, ref in images:
        user = _user_of(stack)
        stack.emit("image", ref, "Removing", service)
        try:
            stack.store.remove(ref, in_use=user)
        except NotFoundError:
            continue
        except ConflictError as err:
            stack.emit("image", ref, "Warning", service, str(err))
            continue
        stack.emit("image", ref, "Removed", service)


def _user_of(stack: Stack) -> Callable[[Any], str | None]:
    def user(image: Any) -> str | None:
        return next((c.name for c in stack.runtime.list(all=True) if c.spec.image_id == image.id), None)

    return user


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
