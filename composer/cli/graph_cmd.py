"""`composer graph [SERVICE...]`: the stack's dependency graph as a terminal tree, or as Graphviz dot,
Mermaid or JSON for other tools. The graph is project.graph's; the pictures are ui.graph's."""

from __future__ import annotations

import argparse
import sys

_FORMATS = ("tree", "dot", "mermaid", "json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("graph", help="show the services' dependency graph",
                       description="Show which service waits for which, and on what condition. Edges point from "
                                   "a service to what it needs; an edge a longer path implies is left out.")
    p.add_argument("--format", choices=_FORMATS, default="tree", help="tree (default), dot, mermaid or json")
    p.add_argument("--no-reduce", action="store_true", help="show every edge, also those a longer path implies")
    p.add_argument("services", nargs="*", metavar="SERVICE", help="only these services and what they need")
    p.set_defaults(func=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    from composer.cli.project_common import colour_enabled, load_model
    from composer.project.graph import stack_graph
    from composer.ui import graph as ui

    graph = stack_graph(load_model(args, args.services), args.services, reduce=not args.no_reduce)
    if args.format == "tree":
        ui.print_tree(graph, sys.stdout, colour=colour_enabled(args))
    else:
        sys.stdout.write({"dot": ui.to_dot, "mermaid": ui.to_mermaid, "json": ui.to_json}[args.format](graph))
    return 0
