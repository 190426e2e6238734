"""`composer graph`'s pictures of a stack's dependency graph (project.graph.StackGraph, duck-typed):
a terminal tree (rich), Graphviz dot, Mermaid (`graph TD`) and JSON. Edges point from a service to
what it needs (lb -> app), so the top of every picture is what a user reaches and the bottom what
starts first. Each edge is labelled with its condition and how it was declared."""

from __future__ import annotations

import json
from typing import Any, TextIO

_CONDITION = {"service_started": "started", "service_healthy": "healthy",
              "service_completed_successfully": "completed"}


def edge_label(e: Any) -> str:
    """"healthy, restart", "started, link: backend", ... (the condition first, always)."""
    parts = [_CONDITION.get(e.condition, e.condition)]
    if e.restart:
        parts.append("restart")
    if not e.required:
        parts.append("optional")
    parts += ["link" if alias == e.dependency else f"link: {alias}" for alias in e.links]
    if e.volumes_from:
        parts.append("volumes_from")
    if e.network_mode:
        parts.append("network_mode")
    return ", ".join(parts)


def _implied_note(g: Any) -> str:
    n = len(g.implied)
    return f"{n} implied edge{'s' if n != 1 else ''} left out (--no-reduce shows them)" if n else ""


def to_dot(g: Any) -> str:
    out = [f"digraph {_dq(g.project)} {{", "  rankdir=TB;", "  node [shape=box];"]
    if g.implied:
        out.append(f"  // {_implied_note(g)}")
    out += [f"  {_dq(n.name)};" for n in g.nodes]
    out += [f"  {_dq(e.service)} -> {_dq(e.dependency)} [label={_dq(edge_label(e))}];" for e in g.edges]
    return "\n".join(out) + "\n}\n"


def _dq(s: str) -> str:
    """A dot ID in double quotes (the only escape dot knows there is \\")."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_mermaid(g: Any) -> str:
    # ids s0, s1, ... and the name as a quoted label: a name may hold `-` or `.`, which mermaid
    # reads as part of an arrow or shape
    ids = {n.name: f"s{i}" for i, n in enumerate(g.nodes)}
    out = ["graph TD"]
    if g.implied:
        out.append(f"  %% {_implied_note(g)}")
    out += [f'  {ids[n.name]}["{_mq(n.name)}"]' for n in g.nodes]
    out += [f"  {ids[e.service]} -->|{_mq(edge_label(e))}| {ids[e.dependency]}" for e in g.edges]
    return "\n".join(out) + "\n"


def _mq(s: str) -> str:
    """Text inside a mermaid label: its entity codes for the characters that would end it."""
    return s.replace('"', "#quot;").replace("|", "#124;")


def to_json(g: Any) -> str:
    def edge(e: Any) -> dict:
        return {"service": e.service, "depends_on": e.dependency, "condition": e.condition,
                "required": e.required, "restart": e.restart, "links": list(e.links),
                "volumes_from": e.volumes_from, "network_mode": e.network_mode, "label": edge_label(e)}

    doc = {"project": g.project,
           "services": [{"name": n.name, "image": n.image, "build": n.build, "profiles": list(n.profiles)}
                        for n in g.nodes],
           "dependencies": [edge(e) for e in g.edges],
           "implied": [edge(e) for e in g.implied]}
    return json.dumps(doc, indent=2) + "\n"


def print_tree(g: Any, stream: TextIO, *, colour: bool, width: int | None = None) -> None:
    """Each service that nothing depends on is a root; under a service, what it needs. A service
    reached a second time is shown without its subtree again (marked "…")."""
    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

    needs: dict[str, list[Any]] = {n.name: [] for n in g.nodes}
    needed = set()
    for e in g.edges:
        needs[e.service].append(e)
        needed.add(e.dependency)
    profiles = {n.name: n.profiles for n in g.nodes}
    shown: set[str] = set()

    def label(name: str, edge: Any | None) -> Text:
        text = Text(name, style="bold cyan")
        if edge is not None:
            text.append(f"  ({edge_label(edge)})", style="yellow")
        if profiles[name]:
            text.append(f"  profiles: {', '.join(profiles[name])}", style="magenta")
        if name in shown and needs[name]:
            text.append("  …", style="dim")
        return text

    def grow(branch: Tree, name: str) -> None:
        first = name not in shown
        shown.add(name)
        if first:
            for e in needs[name]:
                grow(branch.add(label(e.dependency, e)), e.dependency)

    root = Tree(Text(g.project, style="bold"), guide_style="dim")
    for n in g.nodes:
        if n.name not in needed:
            grow(root.add(label(n.name, None)), n.name)
    console = Console(file=stream, force_terminal=colour, no_color=not colour, highlight=False,
                      width=width, soft_wrap=True)
    console.print(root)
    if g.implied:
        console.print(Text(_implied_note(g), style="dim"))
