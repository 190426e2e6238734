"""`composer image build`: docker build's flags, live output of RUN steps, one-line errors."""

from __future__ import annotations

import argparse
import os
import sys
import time


def register_image_build(isub: argparse._SubParsersAction) -> None:
    p = isub.add_parser("build", help="build an image from a Dockerfile (like docker build)")
    p.add_argument("context", metavar="CONTEXT", help="the build context directory")
    p.add_argument("-t", "--tag", action="append", default=[], metavar="REF", help="name[:tag] (repeatable)")
    p.add_argument("-f", "--file", dest="dockerfile", metavar="FILE",
                   help="the Dockerfile (default CONTEXT/Dockerfile; '-' reads stdin)")
    p.add_argument("--build-arg", action="append", default=[], metavar="K=V", help="set a build-time variable")
    p.add_argument("--target", metavar="STAGE", help="build up to this stage")
    p.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    p.add_argument("--label", action="append", default=[], metavar="K=V", help="set an image label")
    p.add_argument("--network", default="bridge", choices=("bridge", "none", "host", "default"),
                   help="network of RUN steps (default bridge)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    p.set_defaults(func=cmd_build)


def _pairs(items: list[str], what: str, *, env_fallback: bool) -> tuple[tuple[str, str | None], ...]:
    from composer.errors import UsageError

    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid {what} {item!r}: expected KEY=VALUE")
        if not eq:  # docker: `--build-arg K` takes K from the environment, if set
            out.append((key, os.environ.get(key) if env_fallback else ""))
        else:
            out.append((key, value))
    return tuple(out)


def cmd_build(args: argparse.Namespace) -> int:
    from composer.images.dockerfile.builder import BuildEvent, BuildOptions, build
    from composer.images.store import ImageStore
    from composer.runtime import Runtime

    rt = Runtime()
    rt.prepare()  # the launcher forks now, while this process has one thread
    text = None
    dockerfile = args.dockerfile
    if dockerfile == "-":
        text, dockerfile = sys.stdin.read(), None
    elif dockerfile:
        dockerfile = os.path.abspath(dockerfile)  # -f is relative to the current directory, as docker's
    options = BuildOptions(
        context=args.context, dockerfile=dockerfile, dockerfile_text=text, tags=tuple(args.tag),
        build_args=_pairs(args.build_arg, "--build-arg", env_fallback=True), target=args.target,
        labels=tuple((k, v or "") for k, v in _pairs(args.label, "--label", env_fallback=False)),
        no_cache=args.no_cache, network="bridge" if args.network == "default" else args.network)
    started = time.monotonic()
    err = sys.stderr

    def progress(event: BuildEvent) -> None:
        if args.quiet:
            return
        if event.kind == "step":
            err.write(f"\033[1m#\033[0m {event.text}\n" if err.isatty() else f"# {event.text}\n")
        elif event.kind == "cached":
            err.write(" ---> using cache\n")
        elif event.kind == "output":
            err.write(event.text if event.text.endswith("\n") else event.text + "\n")
        err.flush()

    image = build(ImageStore(rt.data_dir), options, runtime=rt, progress=progress)
    if not args.quiet:
        tags = ", ".join(args.tag) or "(untagged)"
        err.write(f"built {image.short_id} {tags} in {time.monotonic() - started:.2f} s\n")
    print(image.id)
    return 0
