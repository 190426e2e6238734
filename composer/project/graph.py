"""The stack's dependency graph as data, for `composer graph`: one node per service, one labelled edge
per dependency (its depends_on condition, `restart: true`, `required: false`, and how it was declared:
link aliases, volumes_from, network_mode service:x), reduced to what a reader needs.

networkx does the graph work here (transitive reduction, ancestors, cycles): `composer graph` is not on
any start path, so its import (~70 ms) does not count. `up` orders services with graphlib instead
(project/parallel.py). Rendering is ui/graph.py's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from composer.config.model import Project, Service
from composer.errors import ConfigError, NotFoundError


@dataclass(frozen=True)
class GraphNode:
    """A service as the picture shows it."""

    name: str
    image: str | None  # None: built from `build:` under the project's default name
    build: str | None  # the build context, when the service has `build:`
    profiles: tuple[str, ...]


@dataclass(frozen=True)
class GraphEdge:
    """`service` needs `dependency`: the edge points from the dependent to what it waits for."""

    service: str
    dependency: str
    condition: str  # service_started | service_healthy | service_completed_successfully
    required: bool
    restart: bool  # `restart: true`: restarting the dependency restarts the service
    links: tuple[str, ...]  # link aliases (links: ["db:database"] -> database)
    volumes_from: bool
    network_mode: bool  # network_mode: service:<dependency>

    @property
    def plain(self) -> bool:
        """Nothing more than "starts after": a path through other services says as much."""
        return (self.condition == "service_started" and self.required and not self.restart
                and not self.links and not self.volumes_from and not self.network_mode)


@dataclass(frozen=True)
class StackGraph:
    project: str
    nodes: tuple[GraphNode, ...]  # sorted by name
    edges: tuple[GraphEdge, ...]  # shown, sorted by (service, dependency)
    implied: tuple[GraphEdge, ...]  # left out by the reduction: a longer path implies each


def stack_graph(model: Project, services: Sequence[str] = (), *, reduce: bool = True) -> StackGraph:
    """The graph of the active services (the profiles the model was loaded with), or of `services` and
    everything they depend on. reduce: leave out each edge that a longer path implies (networkx's
    transitive reduction), unless it says more than "starts after" (a health or completion wait,
    `restart: true`, a link alias, ...): dropping that would hide what the service waits for."""
    _check_services(model, services)
    g = nx.DiGraph()
    for name, svc in model.services.items():
        g.add_node(name)
        for dep, spec in svc.depends_on.items():
            if dep in model.services:  # a missing optional (required: false) dependency draws no edge
                g.add_edge(name, dep, edge=_edge(name, svc, dep, spec))
    _check_acyclic(g, model)
    if services:
        keep = set(services)
        for s in services:
            keep |= nx.descendants(g, s)  # edges point at dependencies
        g = g.subgraph(keep).copy()
    implied: list[GraphEdge] = []
    if reduce:
        kept = nx.transitive_reduction(g)
        implied = [g.edges[e]["edge"] for e in g.edges if not kept.has_edge(*e) and g.edges[e]["edge"].plain]
    left_out = {(e.service, e.dependency) for e in implied}
    edges = [g.edges[e]["edge"] for e in g.edges if e not in left_out]
    key = lambda e: (e.service, e.dependency)  # noqa: E731
    return StackGraph(model.name, tuple(_node(n, model.services[n]) for n in sorted(g)),
                      tuple(sorted(edges, key=key)), tuple(sorted(implied, key=key)))


def _check_services(model: Project, services: Sequence[str]) -> None:
    for s in services:
        if s in model.services:
            continue
        if s in model.disabled_services:
            raise NotFoundError(f"service {s!r} is not enabled by the active profiles",
                                hint="enable one of its profiles with --profile")
        raise NotFoundError(f"no such service: {s}", hint="`composer config --services` lists them")


def _check_acyclic(g: nx.DiGraph, model: Project) -> None:
    """The loader refuses cycles already (with file and line); this guards models built otherwise."""
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return
    names = [a for a, _ in cycle] + [cycle[0][0]]
    raise ConfigError(f"dependency cycle: {' -> '.join(names)}", file=model.files[0] if model.files else None,
                      service=names[0], hint="each service depends on the next; remove one of these dependencies")


def _edge(name: str, svc: Service, dep: str, spec) -> GraphEdge:
    return GraphEdge(
        service=name, dependency=dep, condition=spec.condition, required=spec.required, restart=spec.restart,
        links=tuple(alias for target, alias in svc.links if target == dep),
        volumes_from=any(v.split(":")[0] == dep for v in svc.volumes_from),
        network_mode=svc.network_mode == f"service:{dep}")


def _node(name: str, svc: Service) -> GraphNode:
    return GraphNode(name, svc.image, svc.build.context if svc.build is not None else None, svc.profiles)
