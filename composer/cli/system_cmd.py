"""`composer system info`: what this host gives composer, for bug reports and for choosing
COMPOSER_CGROUP_MANAGER: the cgroup version, who manages containers' cgroups (systemd or composer
itself, "cgroupfs"), where they go and how they are delegated."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("system", help="show how composer uses this host")
    verbs = p.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    info = verbs.add_parser("info", help="cgroup version, cgroup manager, where containers' cgroups go")
    info.add_argument("--format", choices=("pretty", "json"), default="pretty")
    info.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from composer import __version__
    from composer.runtime.cgroups import base as cgroups

    info = {"version": __version__, **cgroups.default_driver().layout()}
    if args.format == "json":
        print(json.dumps(info))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            print(f"{key.replace('_', ' ') + ':':<{width + 2}}{value}")
    return 0
