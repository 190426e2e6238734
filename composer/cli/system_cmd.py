"""`composer system info`: what this host gives composer, for bug reports and for choosing
COMPOSER_CGROUP_MANAGER: the cgroup version, who manages containers' cgroups (systemd or composer
itself, "cgroupfs"), where they go and how they are delegated. `system doctor`: what the host offers
(runtime.hostfacts) and what composer left behind (project.doctor); `system prune` removes the leftovers
that are provably this state dir's."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("system", help="show how composer uses this host")
    verbs = p.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    info = verbs.add_parser("info", help="cgroup version, cgroup manager, where containers' cgroups go")
    info.add_argument("--format", choices=("pretty", "json"), default="pretty")
    info.set_defaults(func=cmd_info)
    doctor = verbs.add_parser("doctor", help="what the host offers and what composer left behind on it")
    doctor.add_argument("--format", choices=("pretty", "json"), default="pretty")
    doctor.set_defaults(func=cmd_doctor)
    prune = verbs.add_parser("prune", help="remove what composer left behind that is provably this state dir's")
    prune.set_defaults(func=cmd_prune)


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


def cmd_doctor(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from composer.project import doctor
    from composer.runtime import Runtime
    from composer.runtime.hostfacts import host_facts

    rt = Runtime()
    facts, left, others = host_facts(), doctor.find(rt), doctor.other_state_dirs(rt)
    others.pop(__import__("os").path.realpath(rt.state_dir), None)
    if args.format == "json":
        print(json.dumps({"host": [asdict(f) for f in facts], "state_dir": rt.state_dir, "data_dir": rt.data_dir,
                          "leftovers": [asdict(x) for x in left],
                          "other_state_dirs": {d: len(ids) for d, ids in sorted(others.items())}}))
        return 0
    width = max(len(f.name) for f in facts)
    print("Host:")
    for f in facts:
        print(f"  {'!' if not f.ok else ' '} {f.name + ':':<{width + 1}} {f.value}")
    print(f"Left behind (state dir {rt.state_dir}, data dir {rt.data_dir}):" + ("" if left else " nothing"))
    for x in left:
        verdict = "prune removes it" if x.ours else "left alone: not provably this state dir's"
        print(f"  {x.kind}: {x.what}\n      {x.why} ({verdict})")
    if others:
        print("Other state dirs with running containers: "
              + ", ".join(f"{d} ({len(ids)})" for d, ids in sorted(others.items())))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from composer.project import doctor
    from composer.runtime import Runtime

    removed, failed = doctor.prune(Runtime())
    for x in removed:
        print(f"Removed {x.kind} {x.what} ({x.why})")
    for x, why in failed:
        print(f"Could not remove {x.kind} {x.what}: {why}")
    print(f"Total: {len(removed)} removed" + (f", {len(failed)} failed" if failed else "")
          + "; what is not provably this state dir's is left alone (composer system doctor lists it)")
    return 1 if failed else 0
