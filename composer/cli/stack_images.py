"""The stack's images on the terminal: compose's `build [SERVICE...]`, `pull [SERVICE...]` and
`push [SERVICE...]` verbs (one library call each), and `ImageProgress`, the renderer of what the library
reports while it builds, pulls and pushes (for these verbs, and for `up`/`run`/`scale`, which prepare
their images in the library)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build or rebuild the services' images")
    p.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--push", action="store_true", help="push the built images (those with image:)")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("pull", help="pull the services' images")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--ignore-buildable", action="store_true", help="skip services that have build:")
    p.add_argument("--policy", choices=("missing", "always"), help="pull only missing images, or all")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_pull)
    p = sub.add_parser("push", help="push the built services' images to their registries")
    p.add_argument("--ignore-push-failures", action="store_true", help="go on after an image fails to push")
    p.add_argument("--include-deps", action="store_true", help="also push the services they depend on")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_push)


def cmd_build(args: argparse.Namespace) -> int:
    from composer.runtime import Runtime

    rt = Runtime()
    rt.prepare()  # the launcher forks while this process is single-threaded (and while we load)
    with ImageProgress(quiet=args.quiet) as shown:
        runner = _runner(args, rt, shown)
        runner.build(tuple(args.services), no_cache=args.no_cache)
        if args.push:
            results = runner.push(tuple(args.services))
    if args.push:
        _report_pushes(results, args.quiet)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from composer.runtime import Runtime

    with ImageProgress(quiet=args.quiet) as shown:
        results = _runner(args, Runtime(), shown).push(tuple(args.services), include_deps=args.include_deps,
                                                       ignore_failures=args.ignore_push_failures)
    _report_pushes(results, args.quiet)
    return 0


def _report_pushes(results: Any, quiet: bool) -> None:
    for r in results:
        if r.error:  # kept going (--ignore-push-failures): still said, on stderr
            sys.stderr.write(f"Pushing {r.service}: {r.error}\n")
        elif not quiet:
            sys.stderr.write(f"Pushed {r.service} {r.reference}: digest: {r.digest}\n")


def cmd_pull(args: argparse.Namespace) -> int:
    from composer.runtime import Runtime

    with ImageProgress(quiet=args.quiet) as shown:
        _runner(args, Runtime(), shown).pull(tuple(args.services), policy=args.policy)
    return 0


def _runner(args: argparse.Namespace, rt: Any, shown: "ImageProgress") -> Any:
    from composer.cli.projectopts import load_project_from_args
    from composer.project.project import ProjectRunner

    return ProjectRunner(load_project_from_args(args, tuple(args.services)), runtime=rt, on_image=shown)


class ImageProgress:
    """Renders builds.BuildProgress as lines on stderr (`Building web`, `web # RUN ...`, the RUN
    output, `Built web <id> in 1.20 s`) and images.pull.PullEvent with pull_progress's bars, opened
    on the first pull event (so a `up` that pulls nothing never imports rich for it)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.err = sys.stderr
        self.started: dict[str, float] = {}
        self.transfers: Any = None

    def __enter__(self) -> "ImageProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        transfers, self.transfers = self.transfers, None
        if transfers is not None:
            transfers.__exit__(None, None, None)

    def __call__(self, ev: Any) -> None:
        if hasattr(ev, "phase"):  # a PullEvent or a PushEvent
            if self.transfers is None:
                from composer.cli.pull_progress import TransferDisplay

                verb = "Push" if type(ev).__name__ == "PushEvent" else "Pull"
                self.transfers = TransferDisplay(verb, quiet=self.quiet).__enter__()
            self.transfers(ev)
            return
        if self.quiet:
            return
        err = self.err
        if ev.kind == "start":
            self.started[ev.service] = time.monotonic()
            err.write(f"Building {ev.service} ({ev.text})\n")
        elif ev.kind == "step":
            err.write(f"\033[1m{ev.service}\033[0m # {ev.text}\n" if err.isatty() else f"{ev.service} # {ev.text}\n")
        elif ev.kind == "cached":
            err.write(f"{ev.service} ---> using cache\n")
        elif ev.kind == "output":
            text = ev.text if ev.text.endswith("\n") else ev.text + "\n"
            err.write("".join(f"{ev.service} | {line}\n" for line in text.splitlines()))
        elif ev.kind == "done":
            took = time.monotonic() - self.started.get(ev.service, time.monotonic())
            err.write(f"Built {ev.service} {ev.text[7:19]} in {took:.2f} s\n")
        err.flush()
