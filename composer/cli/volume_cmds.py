"""`composer volume ls|inspect`: the named volumes of the data dir, as docker's `volume` verbs print
them (inspect in docker's Volume shape, with -f/--format Go templates). Project volumes carry the
`composer.project` label; `down -v` and `rm -v` remove them."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("volume", help="list and inspect volumes")
    vsub = p.add_subparsers(dest="volume_command", metavar="COMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])
    ls = vsub.add_parser("ls", aliases=["list"], help="list volumes")
    ls.add_argument("-q", "--quiet", action="store_true", help="only names")
    ls.add_argument("--format", metavar="table|json|TEMPLATE", help="json lines or a Go template ({{.Name}} ...)")
    ls.set_defaults(func=cmd_ls)
    inspect = vsub.add_parser("inspect", help="show volumes as JSON")
    inspect.add_argument("-f", "--format", metavar="TEMPLATE", help="a Go template ({{.Mountpoint}}, ...) or 'json'")
    inspect.add_argument("names", nargs="+", metavar="VOLUME")
    inspect.set_defaults(func=cmd_inspect)


def _store():
    from composer.service.volumes import VolumeStore

    return VolumeStore()


def cmd_ls(args: argparse.Namespace) -> int:
    from composer.ui import listformat
    from composer.ui.tables import plain_table

    listformat.validate(args.format)
    volumes = _store().list()
    if args.quiet:
        sys.stdout.write("".join(v.name + "\n" for v in volumes))
    elif listformat.custom(args.format):
        rows = [{"Driver": "local", "Labels": ",".join(f"{k}={v}" for k, v in vol.labels), "Mountpoint": vol.path,
                 "Name": vol.name, "Scope": "local"} for vol in volumes]
        sys.stdout.write(listformat.render(rows, args.format, {"Driver": "DRIVER", "Name": "VOLUME NAME"}))
    else:
        sys.stdout.write(plain_table(("DRIVER", "VOLUME NAME"), [("local", v.name) for v in volumes]))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from composer.ui import inspect as shape

    store = _store()
    out = [shape.volume(vol, vol.created or None) for vol in map(store.get, args.names)]
    sys.stdout.write(shape.render(out, args.format))
    return 0
