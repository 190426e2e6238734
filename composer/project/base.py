"""What every part of the orchestrator stands on: the option and event types its verbs take, a
container's replica number, and the stack's dependency graph (built here from the model; stack.Stack
holds it)."""

from __future__ import annotations

from dataclasses import dataclass

from composer.config.model import Project
from composer.project.parallel import find_cycle
from composer.runtime import ContainerInfo
from composer.service import service as svcmod
from composer.service.links import L_NUMBER


@dataclass(frozen=True)
class Event:
    """What the runner reports (the CLI renders it): a container, network or volume and what happened to it."""

    kind: str  # "container" | "network" | "volume"
    name: str
    action: str  # Creating Created Starting Started Waiting Healthy Stopping Stopped Removing Removed
    #              Recreating Recreated Running Exited Error Warning (and Killing Killed)
    service: str | None = None
    detail: str = ""
    planned: bool = False  # a dry run's step: what would happen (action: Create, Recreate, ...), nothing done


@dataclass(frozen=True)
class UpOptions:
    """The options of `up` (and `create`)."""

    services: tuple[str, ...] = ()
    no_deps: bool = False
    force_recreate: bool = False
    no_recreate: bool = False
    no_start: bool = False
    remove_orphans: bool = False
    scale: tuple[tuple[str, int], ...] = ()
    timeout: float | None = None
    renew_anon_volumes: bool = False
    always_recreate_deps: bool = False
    # the images, prepared before anything else (project/images.py)
    build: bool = False  # rebuild every service that has `build:` (else only those whose image is missing)
    no_build: bool = False  # build nothing, even when a built image is missing
    # "missing" (= compose's "policy"): pull the images the store lacks (and pull_policy: always);
    # "always": pull every service image again; "never"; "build": build every service that has `build:`
    pull: str = "missing"
    dry_run: bool = False  # report the plan as planned Events; change nothing on the host


@dataclass(frozen=True)
class DownOptions:
    """The options of `down`."""

    volumes: bool = False
    remove_orphans: bool = False
    timeout: float | None = None
    rmi: str | None = None  # "local": the images built under the project's default name; "all": every service image
    dry_run: bool = False  # report the plan as planned Events; change nothing on the host


def number(c: ContainerInfo) -> int:
    """The container's replica number (0 when its label is missing or garbled)."""
    try:
        return int(c.label(L_NUMBER) or 0)
    except ValueError:
        return 0


def dependency_graph(model: Project | None) -> dict[str, tuple[str, ...]]:
    """Service -> the services it depends on over depends_on (project.parallel's graph: graphlib's
    form; networkx's import alone cost ~70 ms of an `up` with nothing to do)."""
    if model is None:
        return {}
    services = model.services
    # a missing optional (required: false) dep is no edge
    g = {name: tuple(d for d in s.depends_on if d in services) for name, s in services.items()}
    cycle = find_cycle(g)
    if cycle:
        raise svcmod.ConfigError(f"dependency cycle between services: {' -> '.join(map(str, cycle))}")
    return g
