"""One-off runs (`composer run SERVICE CMD`): a container of a service with the run's flags applied,
named `<project>-<service>-run-<12 hex>` and labelled composer.oneoff=True (so `up` never counts
it as a replica and `down` removes it). Its dependencies start first and are waited for as `up`
does. Published ports only with --service-ports or -p, network aliases only with --use-aliases,
no restart policy.

`oneoff_service` is pure (unit tested); `create` and `start` run it over the runner's Parts. The
dependencies are brought up by the runner (ProjectRunner.create_oneoff runs up for them): this
module never calls into up."""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass

from composer.config.model import FrozenMap, Service
from composer.errors import ComposerError, UsageError
from composer.project import images as imagesmod
from composer.project.parts import Parts
from composer.project.stack import Stack
from composer.runtime.spec import ContainerSpec, Mount


@dataclass(frozen=True)
class OneOffOptions:
    """The options of `run`: a one-off container of a service."""

    service: str
    command: tuple[str, ...] = ()  # empty: the service's command
    entrypoint: str | None = None  # a shell-split string, as compose; "" clears it
    env: tuple[tuple[str, str], ...] = ()
    volumes: tuple[Mount, ...] = ()  # -v, already parsed (runspec.parse_volume)
    workdir: str | None = None
    user: str | None = None
    name: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    publish: tuple[object, ...] = ()  # -p as runtime PortMappings
    service_ports: bool = False
    use_aliases: bool = False
    no_deps: bool = False
    rm: bool = False
    no_tty: bool = False
    tty: bool | None = None  # None: the service's `tty:`; compose run decides (stdin a terminal, no -T)
    stdin_open: bool | None = None  # None: the service's `stdin_open:`; compose run: True (-i default)
    build: bool = False  # rebuild the images first (`run --build`)
    cap_add: tuple[str, ...] = ()  # --cap-add / --cap-drop: added to the service's (compose run's rule)
    cap_drop: tuple[str, ...] = ()
    pull: str = "missing"  # --pull, as UpOptions.pull
    remove_orphans: bool = False
    dry_run: bool = False  # report the plan as planned Events (the facade's create_oneoff); change nothing


def oneoff_service(s: Service, opts: OneOffOptions) -> Service:
    """The service as the run sees it: the flags override the file; no ports unless asked,
    no network aliases unless asked, no restart policy, no container_name (names must be unique)."""
    changes: dict = {"container_name": None, "restart": None, "scale": None}
    if s.deploy is not None:
        changes["deploy"] = dataclasses.replace(s.deploy, restart_policy=None, replicas=None)
    if opts.command:
        changes["command"] = tuple(opts.command)
    if opts.entrypoint is not None:
        try:
            changes["entrypoint"] = tuple(shlex.split(opts.entrypoint))
        except ValueError as err:
            raise UsageError(f"invalid --entrypoint {opts.entrypoint!r}: {err}") from None
    if opts.workdir is not None:
        if not opts.workdir.startswith("/"):
            raise UsageError(f"the working directory {opts.workdir!r} is invalid, it needs to be an absolute path")
        changes["working_dir"] = opts.workdir
    if opts.user is not None:
        changes["user"] = opts.user
    if opts.env:
        env = dict(s.environment)
        env.update(opts.env)
        changes["environment"] = tuple(sorted(env.items()))
    if opts.labels:
        changes["labels"] = FrozenMap({**s.labels, **dict(opts.labels)})
    if not opts.service_ports:
        changes["ports"] = ()
    if not opts.use_aliases:
        changes["networks"] = FrozenMap((k, dataclasses.replace(n, aliases=())) for k, n in s.networks.items())
    if opts.tty is not None:
        changes["tty"] = opts.tty
    if opts.no_tty:
        changes["tty"] = False
    if opts.stdin_open is not None:
        changes["stdin_open"] = opts.stdin_open
    if opts.cap_add:
        changes["cap_add"] = (*s.cap_add, *(c.upper() for c in opts.cap_add))
    if opts.cap_drop:
        changes["cap_drop"] = (*s.cap_drop, *(c.upper() for c in opts.cap_drop))
    return dataclasses.replace(s, **changes)


def adjust_spec(spec: ContainerSpec, opts: OneOffOptions) -> ContainerSpec:
    """-v mounts (replacing a service mount on the same target), -p ports, --rm."""
    targets = {m.target for m in opts.volumes}
    mounts = tuple(m for m in spec.mounts if m.target not in targets) + tuple(opts.volumes)
    return dataclasses.replace(spec, mounts=mounts, ports=tuple(spec.ports) + tuple(opts.publish),
                               auto_remove=opts.rm)


def dependencies(stack: Stack, opts: OneOffOptions) -> list[str]:
    """The services the run's service depends on, transitively (none with no_deps)."""
    stack.check_services([opts.service])
    return [] if opts.no_deps else [n for n in stack.select([opts.service], False) if n != opts.service]


def create(parts: Parts, opts: OneOffOptions) -> object:
    """Create the one-off container (not started: the caller starts it, attached or not). Its
    dependencies are up already; runtime.prepare() has run."""
    from composer.service.mounts import MountMaker

    stack = parts.stack
    s = stack.need_model().services[opts.service]
    run_s = oneoff_service(s, opts)
    image = imagesmod.resolve(stack, s)
    with stack.lock.held():
        parts.steps.check(run_s, image)  # bad input changes nothing: checked before any network is made
        parts.networks.check([opts.service])
        parts.volumes.check([opts.service])
        parts.networks.ensure([opts.service])
        parts.volumes.ensure([opts.service])
        parts.hosts.reload(lambda: stack.containers(oneoff=None))
        return parts.steps.create(run_s, 1, image, MountMaker(stack.volumes, stack.name), oneoff=True,
                                  name=opts.name, quiet=True, adjust=lambda spec: adjust_spec(spec, opts))


def report_plan(parts: Parts, opts: OneOffOptions) -> None:
    """A dry run's last steps: the one-off container it would create and start."""
    stack = parts.stack
    stack.check_services([opts.service])
    name = opts.name or f"{stack.name}-{opts.service}-run-<new id>"
    stack.emit("container", name, "Create", opts.service, "one-off", planned=True)
    stack.emit("container", name, "Start", opts.service, "", planned=True)


def start(parts: Parts, info, *, attach: bool = False):
    """Start it (attach: stdout/stderr to ours, runtime.wait then reports the exit) and list it
    in its peers' /etc/hosts."""
    runtime = parts.stack.runtime
    try:
        started = runtime.start(info.id, attach_stdio=attach)
    except ComposerError:
        if info.spec.auto_remove:
            runtime.remove(info.id, force=True)
        raise
    with parts.stack.lock.held():
        parts.hosts.mark_dirty()
        parts.steps.refresh_hosts()
    return started
