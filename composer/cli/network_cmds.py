"""`composer network ls|rm|prune|inspect`: the runtime's networks, as docker's `network` verbs. Project
networks come and go with `up`/`down`; the default `bridge` network (host link `cmp0`) stays, like
docker0, and is removed here."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("network", help="manage networks")
    nsub = p.add_subparsers(dest="network_command", metavar="COMMAND", required=True)
    ls = nsub.add_parser("ls", aliases=["list"], help="list networks")
    ls.add_argument("-q", "--quiet", action="store_true", help="only names")
    ls.set_defaults(func=cmd_ls)
    rm = nsub.add_parser("rm", aliases=["remove"], help="remove networks no container uses")
    rm.add_argument("names", nargs="+", metavar="NETWORK")
    rm.set_defaults(func=cmd_rm)
    prune = nsub.add_parser("prune", help="remove every network no container uses")
    prune.add_argument("-f", "--force", action="store_true", help="accepted for docker compatibility")
    prune.set_defaults(func=cmd_prune)
    inspect = nsub.add_parser("inspect", help="show networks as JSON")
    inspect.add_argument("-f", "--format", metavar="TEMPLATE", help="a Go template ({{.IPAM}}, ...) or 'json'")
    inspect.add_argument("names", nargs="+", metavar="NETWORK")
    inspect.set_defaults(func=cmd_inspect)


def _manager():
    from composer.runtime import Runtime

    return Runtime().network


def cmd_ls(args: argparse.Namespace) -> int:
    nm = _manager()
    nets = sorted(nm.list(), key=lambda n: n.name)
    if args.quiet:
        print("\n".join(n.name for n in nets))
        return 0
    rows = [("NAME", "BRIDGE", "SUBNET", "INTERNAL")]
    rows += [(n.name, n.bridge, n.subnet, "yes" if n.internal else "no") for n in nets]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from composer.errors import NotFoundError

    nm = _manager()
    for name in args.names:
        if nm.get(name) is None:
            raise NotFoundError(f"network {name} not found")
        nm.remove(name)  # ConflictError names the containers still attached
        print(name)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from composer.errors import ConflictError

    nm = _manager()
    for net in nm.list():
        try:
            nm.remove(net.name)
            print(f"Deleted Network: {net.name}")
        except ConflictError:
            continue  # in use: keep it
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import sys

    from composer.errors import NotFoundError
    from composer.runtime import Runtime
    from composer.ui import inspect as shape

    rt = Runtime()
    nm, names = rt.network, rt.names()
    out = []
    for name in args.names:
        net = nm.get(name)
        if net is None:
            raise NotFoundError(f"network {name} not found")
        out.append(shape.network(net, _endpoints(nm, name), names))
    sys.stdout.write(shape.render(out, args.format))
    return 0


def _endpoints(nm, name: str):
    return nm.network_endpoints(name)
