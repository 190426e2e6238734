"""`up` and `create` (with the images already prepared: images.prepare): select the services (with their dependencies),
resolve their images, plan each service (service.plan: create, start, recreate, remove, noop per
replica), check ports and make networks and volumes before anything changes, then converge the
plans over the dependency graph in generations (parallel within one), waiting for each service's
depends_on conditions and bouncing dependents of recreated `restart: true` dependencies.

Functions over the runner's Parts; nothing here keeps state between calls."""

from __future__ import annotations

import contextlib

from composer.config.model import Service
from composer.errors import ContainerError, NotFoundError
from composer.project import images as imagesmod
from composer.project.base import UpOptions
from composer.project.parallel import DependencyFailed, generations, map_parallel, run_graph
from composer.project.parts import Parts
from composer.project.readiness import DependencyError
from composer.project.stack import Stack
from composer.runtime import ContainerInfo
from composer.service import service as svcmod
from composer.service.links import L_ONEOFF, L_SERVICE
from composer.service.mounts import MountMaker
from composer import faults


def up(parts: Parts, opts: UpOptions = UpOptions()) -> list[ContainerInfo]:
    """Converge the selected services to the stack file. The caller has run runtime.prepare()
    (fork the launcher before any thread exists) and prepared the images. opts.dry_run: the same
    decisions, reported as planned Events (report_plan), and nothing changed: no lock file, no
    network, volume or container."""
    stack = parts.stack
    model = stack.need_model()
    with contextlib.nullcontext() if opts.dry_run else stack.lock.held():
        names = stack.select(opts.services, opts.no_deps)
        scale = dict(opts.scale)
        stack.check_services(scale)
        images = {n: _image(stack, model.services[n], opts.dry_run) for n in names}
        replicas = {n: scale.get(n, model.services[n].replicas) for n in names}
        for n in names:
            svcmod.check_network_mode(model.services[n])
            svcmod.check_replicas(model.services[n], replicas[n])
        existing = stack.containers(all=True, oneoff=None)
        if not opts.dry_run:
            orphans(parts, existing, opts.remove_orphans, opts.timeout)
        plans = {}
        deps_only = set(names) - set(opts.services) if opts.services else set()
        for n in names:
            mine = [c for c in existing if c.label(L_SERVICE) == n and c.label(L_ONEOFF) != "True"]
            force = opts.force_recreate or (opts.always_recreate_deps and n in deps_only)
            plans[n] = svcmod.plan(model.services[n], replicas[n], images[n].id if images[n] else _UNKNOWN, mine,
                                   force_recreate=force, no_recreate=opts.no_recreate)
        # every refusal we can foresee comes before the first network, volume or container is made
        for n in names:
            if images[n] is not None and any(a.kind in ("create", "recreate") for a in plans[n]):
                parts.steps.check(model.services[n], images[n])
        parts.networks.check(names)
        parts.volumes.check(names)
        if not opts.no_start:
            parts.networks.check_ports(plans)
        if opts.dry_run:
            parts.networks.ensure(names, dry_run=True)
            parts.volumes.ensure(names, dry_run=True)
            unknown = {n for n in names if images[n] is None}
            report_plan(stack, stack_order(stack, names), plans, opts, stack.orphans_in(existing), unknown)
            return []
        parts.networks.ensure(names)
        faults.point("up.networks")
        parts.volumes.ensure(names)
        faults.point("up.volumes")
        parts.hosts.reload(lambda: [c for c in existing if c.running])
        maker = MountMaker(stack.volumes, stack.name)
        failed: set[str] = set()
        recreated: set[str] = set()

        def node(n: str) -> list[ContainerInfo]:
            s = model.services[n]
            try:
                if not opts.no_start:
                    parts.readiness.wait_dependencies(s, names, failed)
                    if svcmod.network_service(s):  # its netns owner may have been recreated just now
                        plans[n] = svcmod.follow_network_target(s, plans[n], parts.hosts.peers())
                bounce = {d for d, dep in s.depends_on.items() if dep.restart and d in recreated}
                out = _converge(parts, s, plans[n], images[n], maker, opts, restart_for=bounce)
            except BaseException:
                failed.add(n)
                raise
            if any(a.kind in ("recreate", "create") for a in plans[n]):
                recreated.add(n)
            return out

        # dependents are not skipped by run_graph: each decides (required: false only warns)
        outcome = run_graph(stack.graph, node, nodes=names, skip_dependents=False,
                            between=lambda _gen: parts.steps.refresh_hosts(only_if_changed=True))
        _report(stack, outcome)
        return stack.containers(names, all=True)


_UNKNOWN = "(not in the store yet)"  # a dry run's image id for an image that up would pull or build first


def _image(stack: Stack, s: Service, dry_run: bool):
    """The service's stored image; in a dry run None when it is missing (the real up would have
    built or pulled it by now)."""
    try:
        return imagesmod.resolve(stack, s)
    except NotFoundError:
        if dry_run:
            return None
        raise


def stack_order(stack: Stack, names: list[str]) -> list[str]:
    """The services in the order up converges them (dependencies first; by name within a generation)."""
    return [str(n) for gen in generations(stack.graph, names) for n in gen]


_VERBS = {"create": "Create", "recreate": "Recreate", "start": "Start", "remove": "Remove", "noop": "Running"}
_WHY = {"create": "not created yet", "start": "created, not running"}


def report_plan(stack: Stack, order: list[str], plans: dict[str, list[svcmod.Action]], opts: UpOptions,
                found_orphans: list[ContainerInfo], unknown_images: set[str] = frozenset()) -> None:
    """A dry run's container steps as planned Events: what up would create, recreate, start,
    remove and leave running, with the reason (svcmod.plan's), and the orphans it would remove
    (with --remove-orphans) or warn about. unknown_images: services whose image is not in the store
    yet (up pulls or builds it first): whether their containers are recreated depends on it."""
    emit = stack.emit
    services = stack.model.services if stack.model is not None else {}
    for c in found_orphans:
        if opts.remove_orphans:
            emit("container", c.name, "Remove", c.label(L_SERVICE), "orphan", planned=True)
    if found_orphans and not opts.remove_orphans:
        stack.warn_orphans(found_orphans)
    recreated: set[str] = set()
    for n in order:
        bounce = sorted(d for d, dep in services[n].depends_on.items() if dep.restart and d in recreated)
        for a in plans[n]:
            name = a.container.name if a.container is not None else svcmod.container_name(stack.name, services[n],
                                                                                         a.number)
            if opts.no_start and a.kind in ("start", "noop"):
                continue
            if a.kind == "noop" and bounce and not opts.no_start:  # as _apply: restart: true on a recreated dep
                emit("container", name, "Restart", n, f"dependency {', '.join(bounce)} was recreated", planned=True)
                continue
            why = _WHY.get(a.kind) or ("scaled down" if a.reason == "scale" else a.reason)
            if why == "image changed" and n in unknown_images:
                why = "image not in the store yet (if the one pulled or built differs)"
            emit("container", name, _VERBS[a.kind], n, why, planned=True)
            if a.kind in ("create", "recreate") and not opts.no_start:
                emit("container", name, "Start", n, "", planned=True)
        if any(a.kind in ("create", "recreate") for a in plans[n]):
            recreated.add(n)


def _report(stack: Stack, outcome) -> None:
    for node, dep in outcome.skipped.items():
        stack.emit("container", node, "Error", node, f"not started: dependency {dep} failed")
    errors = list(outcome.errors.items())
    if not errors:
        return
    for node, err in errors:
        if isinstance(err, (DependencyError, DependencyFailed)):
            stack.emit("container", node, "Error", node, str(err))
    # a dependent not started because its dependency failed repeats the cause: raise the cause
    errors = [(n, e) for n, e in errors if not isinstance(e, DependencyFailed)] or errors
    if len(errors) == 1:
        raise errors[0][1]
    first = errors[0][1]
    names = ", ".join(n for n, _ in errors)
    err = ContainerError(f"services {names} failed; first: {first}")
    err.exit_code = getattr(first, "exit_code", 1)
    raise err


def orphans(parts: Parts, existing: list[ContainerInfo], remove: bool, timeout: float | None) -> None:
    """Containers of services no longer declared: removed with --remove-orphans, else a warning."""
    found = parts.stack.orphans_in(existing)
    if not found:
        return
    if not remove:
        parts.stack.warn_orphans(found)
        return
    map_parallel(found, lambda c: parts.steps.remove(c, timeout))


def _converge(parts: Parts, s: Service, actions: list[svcmod.Action], image, maker: MountMaker,
              opts: UpOptions, restart_for: set[str] = frozenset()) -> list[ContainerInfo]:
    """The service's plan: removals first (highest number first), then every replica in
    parallel. restart_for: recreated dependencies with `restart: true` (running replicas bounce)."""
    removals = sorted((a for a in actions if a.kind == "remove"), key=lambda a: -a.number)
    map_parallel(removals, lambda a: parts.steps.remove(a.container, opts.timeout)).raise_first()
    rest = [a for a in actions if a.kind != "remove"]
    done = map_parallel(rest, lambda a: _apply(parts, s, a, image, maker, opts, restart_for))
    done.raise_first()
    return [done.results[a] for a in rest]


def _apply(parts: Parts, s: Service, a: svcmod.Action, image, maker: MountMaker, opts: UpOptions,
           restart_for: set[str]) -> ContainerInfo:
    steps, emit = parts.steps, parts.stack.emit
    if a.kind == "noop" and restart_for and not opts.no_start:
        emit("container", a.container.name, "Restarting", s.name,
             f"dependency {', '.join(sorted(restart_for))} was recreated")
        steps.stop(a.container, opts.timeout, quiet=True)
        return steps.start(a.container)
    if a.kind == "noop":
        emit("container", a.container.name, "Running", s.name)
        return a.container
    if a.kind == "start":
        return a.container if opts.no_start else steps.start(a.container)
    if a.kind == "create":
        info = steps.create(s, a.number, image, maker)
        return info if opts.no_start else steps.start(info)
    old = a.container  # recreate
    emit("container", old.name, "Recreating", s.name, a.reason)
    steps.stop(old, opts.timeout, quiet=True)
    parts.stack.runtime.remove(old.id, force=True)
    parts.hosts.forget(old.id)
    info = steps.create(s, a.number, image, maker, previous=old, renew=opts.renew_anon_volumes, quiet=True)
    emit("container", info.name, "Recreated", s.name)
    return info if opts.no_start else steps.start(info)
