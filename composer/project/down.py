"""`down` (functions over the runner's Parts): stop every container of the project (dependents first),
removing each as soon as it has stopped, then the project's networks and (with --volumes) its volumes.
Orphans stay, with a warning, unless --remove-orphans."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading

from composer import faults
from composer.errors import ComposerError, ConflictError
from composer.project.base import DownOptions
from composer.project.parallel import Background, generations
from composer.project.parts import Parts
from composer.runtime import ContainerInfo
from composer.service.links import L_SERVICE


def _images():
    """project.images, imported by `down --rmi` only: a plain down does not pay for it."""
    from composer.project import images

    return images


def down(parts: Parts, opts: DownOptions = DownOptions()) -> None:
    # No runtime.prepare(): down spawns no monitor, and a launcher started for nothing costs an
    # interpreter start (~15 ms of CPU on a 2-core host) while we work.
    stack = parts.stack
    with contextlib.nullcontext() if opts.dry_run else stack.lock.held():
        containers = stack.containers(all=True, oneoff=None)
        orphans = [] if opts.remove_orphans else stack.orphans_in(containers)
        if orphans:
            stack.warn_orphans(orphans)
            containers = [c for c in containers if c not in orphans]
        doomed_images = _images().images_to_remove(stack, opts.rmi, containers) if opts.rmi else []
        if opts.dry_run:
            report_plan(parts, containers, doomed_images, opts)
            return
        # Dependents stop first; each container is removed as soon as it has stopped, while the
        # services it depends on still stop. Stopped first, so the kernel tears down its network
        # namespace and veths, much cheaper than deleting each veth through netlink; a removal
        # does not wait for that either: it happens while the networks go, and is waited for once,
        # at the end (NetworkManager.defer_settling).
        unpublishing = parts.networks.unpublish_in_background(containers)
        deferred = parts.networks.defer_settling()
        try:
            _stop_and_remove(parts, opts, containers, unpublishing)
        finally:
            if deferred:
                parts.networks.settle()
        if doomed_images:
            _images().remove_images(stack, doomed_images)


def _stop_and_remove(parts: Parts, opts: DownOptions, containers: list[ContainerInfo],
                     unpublishing: threading.Thread | None) -> None:
    stack = parts.stack
    removals = Background()

    def stop_then_remove(c: ContainerInfo) -> None:
        try:
            stop_for_removal(parts, c, opts.timeout)
            faults.point("down.stopped")
        finally:  # removal kills what did not stop: down must go on
            removals.start(c, parts.steps.remove, c, opts.timeout, opts.volumes, stop=False)

    try:
        stack.run_services(containers, stop_then_remove, reverse=True)
    except ComposerError as err:
        stack.emit("container", stack.name, "Warning", None, str(err))
    out = removals.join()
    if unpublishing is not None:
        unpublishing.join()
    out.raise_first()
    faults.point("down.removed")
    stack.runtime.reclaim_incomplete()  # what a killed create or remove left (any project's: no spec)
    parts.networks.remove()
    faults.point("down.networks")
    if opts.volumes:
        parts.volumes.remove()


def stop_for_removal(parts: Parts, c: ContainerInfo, timeout: float | None) -> None:
    """down's stop: stop signal, grace period, SIGKILL, as runtime.stop, but without waiting for
    the monitor to record the exit: the removal that follows kills the monitor and cleans up
    after it. Measured with 30 services: the exit is recorded 80-200 ms after PID 1 is gone
    (30 monitors at once on 2 cores), the process itself exits in 5-30 ms. Paused or
    restarting containers, and stop signals that do not mark a manual stop (so the restart
    policy could start the container again), take the full runtime.stop."""
    sig = c.spec.stop_signal
    if c.status != "running" or not c.pid or sig not in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        parts.steps.stop(c, timeout)
        return
    try:
        pidfd = os.pidfd_open(c.pid)
    except OSError:
        parts.steps.stop(c, timeout)  # gone already, or no pidfd: the runtime knows best
        return
    svc = c.label(L_SERVICE)
    parts.stack.emit("container", c.name, "Stopping", svc)
    try:
        grace = c.spec.stop_timeout if timeout is None else timeout
        try:
            # verifies pid and start time; marks a manual stop, and the run as one whose exit
            # needs no record (its monitor then exits with it instead of recording)
            parts.stack.runtime.kill(c.id, sig, removing=True)
        except ConflictError:
            grace = 0  # not running any more
        if grace and not select.select([pidfd], [], [], grace)[0]:
            with contextlib.suppress(ConflictError):
                parts.stack.runtime.kill(c.id, signal.SIGKILL, removing=True)
            select.select([pidfd], [], [], 10.0)
    finally:
        os.close(pidfd)
    parts.hosts.forget(c.id)
    parts.stack.emit("container", c.name, "Stopped", svc)


def report_plan(parts: Parts, containers: list[ContainerInfo], images: list[tuple[str, str]],
                opts: DownOptions) -> None:
    """A dry run of down: the containers it would stop and remove (dependents first), the networks,
    volumes (with -v) and images (with --rmi) it would remove, as planned Events."""
    stack = parts.stack
    services = stack.model.services if stack.model is not None else {}
    by_service: dict[str, list[ContainerInfo]] = {}
    for c in containers:
        by_service.setdefault(c.label(L_SERVICE) or c.name, []).append(c)
    graph = {n: tuple(d for d in stack.graph.get(n, ()) if d in by_service) for n in by_service}
    for gen in generations(graph, reverse=True):
        for n in gen:
            for c in by_service[str(n)]:
                why = "orphan" if stack.model is not None and n not in services else ""
                if c.running or c.status in ("paused", "restarting"):
                    stack.emit("container", c.name, "Stop", str(n), why, planned=True)
                stack.emit("container", c.name, "Remove", str(n), why, planned=True)
    for name in parts.networks.to_remove():
        stack.emit("network", name, "Remove", None, "", planned=True)
    if opts.volumes:
        for label in parts.volumes.to_remove():
            stack.emit("volume", label, "Remove", None, "", planned=True)
    for service, ref in images:
        stack.emit("image", ref, "Remove", service, f"--rmi {opts.rmi}", planned=True)
