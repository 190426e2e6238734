"""Checks a schema cannot express: references between services, dependency cycles, profiles,
replicas versus container_name, and undefined named volumes and networks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from graphlib import CycleError, TopologicalSorter

from composer.config import model as m
from composer.config.interpolate import located_error
from composer.config.yamlsrc import Marks


def _hint(name: str, options: Iterable[str]) -> str | None:
    import difflib  # only for a message

    close = difflib.get_close_matches(name, list(options), n=1)
    return f"did you mean {close[0]!r}?" if close else None


def select_profiles(services: Mapping[str, m.Service], profiles: tuple[str, ...], named: tuple[str, ...],
                    marks: Marks) -> tuple[dict, dict, tuple[str, ...]]:
    """Split services into (enabled, disabled, active profiles). A service without profiles is always
    enabled; `*` enables all; a service named on the command line enables its own profiles."""
    active = set(profiles)
    for name in named:
        if name not in services:
            raise located_error(f"no such service: {name}", marks, (), hint=_hint(name, services))
        active.update(services[name].profiles)
    everything = "*" in active
    enabled, disabled = {}, {}
    for name, svc in services.items():
        on = not svc.profiles or everything or bool(active & set(svc.profiles)) or name in named
        (enabled if on else disabled)[name] = svc
    # an enabled service must not need a disabled one (an optional dependency is simply dropped)
    for name, svc in list(enabled.items()):
        for dep, d in svc.depends_on.items():
            if dep in disabled:
                if not d.required:
                    continue
                prof = ", ".join(disabled[dep].profiles)
                raise located_error(
                    f"depends on service {dep!r}, which is disabled (profiles: {prof})", marks,
                    ("services", name, "depends_on", dep), hint=f"enable it with --profile {disabled[dep].profiles[0]}")
    return enabled, disabled, tuple(sorted(active))


def check_project(p: m.Project, marks: Marks) -> None:
    known = set(p.services) | set(p.disabled_services)
    for name, svc in p.services.items():
        base = ("services", name)
        for dep, d in svc.depends_on.items():
            if dep not in known and d.required:
                raise located_error(f"depends on undefined service {dep!r}", marks,
                                    _origin(svc, dep, marks, base), hint=_hint(dep, known))
        if svc.image is None and svc.build is None and svc.provider is None:
            raise located_error("has neither an image nor a build context", marks, base)
        if svc.container_name and svc.replicas > 1:
            raise located_error(f"container_name {svc.container_name!r} is set, so it cannot have "
                                f"{svc.replicas} replicas", marks, base + ("container_name",))
        for i, v in enumerate(svc.volumes):
            if v.type == "volume" and v.source and v.source not in p.volumes:
                raise located_error(f"refers to undefined volume {v.source!r}", marks, base + ("volumes", i),
                                    hint=_hint(v.source, p.volumes) or "declare it under the top-level volumes:")
        for net in svc.networks:
            if net not in p.networks:
                raise located_error(f"refers to undefined network {net!r}", marks, base + ("networks", net),
                                    hint=_hint(net, p.networks) or "declare it under the top-level networks:")
        if svc.network_mode and svc.networks:
            raise located_error("network_mode and networks cannot be combined", marks, base + ("network_mode",))
        for kind, refs, tops in (("config", svc.configs, p.configs), ("secret", svc.secrets, p.secrets)):
            for r in refs:
                if r.source not in tops:
                    raise located_error(f"refers to undefined {kind} {r.source!r}", marks, base + (kind + "s",),
                                        hint=_hint(r.source, tops))
    cycle = find_cycle({n: [d for d in s.depends_on if d in p.services] for n, s in p.services.items()})
    if cycle:
        raise located_error("dependency cycle: " + " -> ".join(cycle), marks,
                            ("services", cycle[0], "depends_on", cycle[1]))


def _origin(svc: m.Service, dep: str, marks: Marks, base: tuple) -> tuple:
    """The path of the key that made `dep` a dependency (depends_on, links, volumes_from, network_mode)."""
    if base + ("depends_on", dep) in marks:
        return base + ("depends_on", dep)
    if any(s == dep for s, _ in svc.links):
        return base + ("links",)
    if any(v.split(":")[0] == dep for v in svc.volumes_from):
        return base + ("volumes_from",)
    if svc.network_mode == f"service:{dep}":
        return base + ("network_mode",)
    return base + ("depends_on",)


def find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle as [a, b, c, a], each depending on the next, or None. graphlib finds it (its cycle runs
    dependency first: reversed here); it starts at its first service by name, so the message is stable."""
    try:
        TopologicalSorter({n: sorted(graph[n]) for n in sorted(graph)}).prepare()
    except CycleError as err:
        ring = list(reversed(err.args[1]))[:-1]
        first = ring.index(min(ring))
        ring = ring[first:] + ring[:first]
        return ring + ring[:1]
    return None
