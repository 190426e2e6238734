"""The stack's images: compose's `build [SERVICE...]` and `pull [SERVICE...]` verbs, and what `up` does
first (build what has `build:` and no image, pull what is missing; `--build` rebuilds)."""

from __future__ import annotations

import argparse
import sys
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build or rebuild the services' images")
    p.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("pull", help="pull the services' images")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--ignore-buildable", action="store_true", help="skip services that have build:")
    p.add_argument("--policy", choices=("missing", "always"), help="pull only missing images, or all")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_pull)


def cmd_build(args: argparse.Namespace) -> int:
    from composer.runtime import Runtime

    rt = Runtime()
    rt.prepare()  # the launcher forks while this process is single-threaded
    from composer.cli.projectopts import load_project_from_args

    project = load_project_from_args(args, tuple(args.services))
    build_for(project, rt, services=tuple(args.services), force=True, no_cache=args.no_cache,
              quiet=args.quiet)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from composer.cli.projectopts import load_project_from_args
    from composer.runtime import Runtime

    project = load_project_from_args(args, tuple(args.services))
    pull_for(project, Runtime(), services=tuple(args.services), policy=args.policy, quiet=args.quiet)
    return 0


def pull_for(project, rt, *, services=(), policy: str | None, quiet: bool = False) -> list[str]:
    """Pull the services' images with progress bars (plain lines when stderr is not a terminal)."""
    from dataclasses import replace

    from composer.cli.pull_progress import TransferDisplay
    from composer.images.pull import pull_project_images
    from composer.images.store import ImageStore

    if services:
        project = replace(project, services=type(project.services)(
            (n, s) for n, s in project.services.items() if n in services))
    with TransferDisplay("Pull", quiet=quiet) as display:
        return pull_project_images(project, ImageStore(rt.data_dir), policy, progress=display)


def ensure_images(project, rt, *, build: bool, no_build: bool, quiet: bool) -> None:
    """What `up` does before creating containers: build, then pull what is still missing."""
    if not no_build:
        build_for(project, rt, force=build, quiet=quiet)
    if not _nothing_to_pull(project, rt):
        pull_for(project, rt, policy="missing", quiet=quiet)


def _nothing_to_pull(project, rt) -> bool:
    """Every service image is in the store and no service asks for pull_policy: always. The usual
    `up`: it then skips importing the registry client and the progress display (~14 ms)."""
    from composer.images.store import ImageStore

    store = ImageStore(rt.data_dir)
    for svc in project.services.values():
        image = getattr(svc, "image", None)
        if (getattr(svc, "pull_policy", None) or "") == "always" or (image and not store.exists(image)):
            return False
    return True


def build_for(project, rt, *, services=(), force: bool, no_cache: bool = False, quiet: bool = False) -> None:
    """Build what needs building, with live step output on stderr."""
    if not any(svc.build is not None for svc in project.services.values()):
        return  # nothing to build: don't even open the store
    from composer.images.store import ImageStore
    from composer.project.builds import build_services, services_to_build

    store = ImageStore(rt.data_dir)
    todo = services_to_build(project, services, force=force, exists=store.exists)
    if not todo:
        return
    err = sys.stderr
    tty = err.isatty()
    started: dict[str, float] = {}

    def progress(ev) -> None:
        if quiet:
            return
        if ev.kind == "start":
            started[ev.service] = time.monotonic()
            err.write(f"Building {ev.service} ({ev.text})\n")
        elif ev.kind == "step":
            err.write(f"\033[1m{ev.service}\033[0m # {ev.text}\n" if tty else f"{ev.service} # {ev.text}\n")
        elif ev.kind == "cached":
            err.write(f"{ev.service} ---> using cache\n")
        elif ev.kind == "output":
            text = ev.text if ev.text.endswith("\n") else ev.text + "\n"
            err.write("".join(f"{ev.service} | {line}\n" for line in text.splitlines()))
        elif ev.kind == "done":
            took = time.monotonic() - started.get(ev.service, time.monotonic())
            err.write(f"Built {ev.service} {ev.text[7:19]} in {took:.2f} s\n")
        err.flush()

    build_services(project, todo, store, rt, no_cache=no_cache, progress=progress)
