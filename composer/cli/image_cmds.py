"""`composer image import|ls|rm|tag|inspect|bootstrap` and `composer images`. Library imports (and rich)
happen inside the handlers, so building the parser costs nothing."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from typing import Any

from composer.errors import ComposerError


def register(sub: argparse._SubParsersAction) -> None:
    image = sub.add_parser("image", help="manage images")
    isub = image.add_subparsers(dest="image_command", metavar="COMMAND")
    image.set_defaults(func=lambda args: (image.print_help(), 0)[1])

    p = isub.add_parser("import", help="create an image from a rootfs tarball (like docker import)")
    p.add_argument("file", metavar="FILE|-", help="a tar (plain, gzip, zstd, xz, bzip2); '-' reads stdin")
    p.add_argument("reference", nargs="?", metavar="NAME[:TAG]")
    p.add_argument("-c", "--change", action="append", default=[], metavar="INSTRUCTION",
                   help="apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, "
                        "USER, VOLUME, WORKDIR")
    p.add_argument("-m", "--message", default="", help="commit message for the image history")
    p.set_defaults(func=cmd_import)

    for parser in (isub.add_parser("ls", aliases=["list"], help="list images"),
                   sub.add_parser("images", help="list the project's images (in a project), else all images")):
        parser.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
        parser.add_argument("-a", "--all", action="store_true", help="accepted for docker compatibility")
        parser.add_argument("--no-trunc", action="store_true", help="show full image ids")
        parser.add_argument("--format", metavar="table|json|TEMPLATE", help="json lines or a Go template ({{.ID}} ...)")
        parser.set_defaults(func=cmd_ls)
    parser.add_argument("services", nargs="*", metavar="SERVICE")
    parser.set_defaults(func=cmd_images)

    p = isub.add_parser("rm", aliases=["remove"], help="remove images")
    p.add_argument("-f", "--force", action="store_true", help="remove an image with several references")
    p.add_argument("refs", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_rm)

    p = isub.add_parser("tag", help="give an image another reference")
    p.add_argument("source", metavar="SOURCE_IMAGE")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    p.set_defaults(func=cmd_tag)

    p = isub.add_parser("inspect", help="show image details as JSON")
    p.add_argument("-f", "--format", metavar="TEMPLATE", help="a Go template ({{.Id}}, {{json .Config}}) or 'json'")
    p.add_argument("refs", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_inspect)

    p = isub.add_parser("load", help="load images from a docker save archive or an OCI layout tar")
    p.add_argument("-i", "--input", metavar="FILE", help="read from FILE (tar or tar.gz) instead of stdin")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_load)

    p = isub.add_parser("save", help="save images to a tar archive (docker save format + OCI layout)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("refs", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_save)

    p = isub.add_parser("pull", help="pull an image from a registry")
    p.add_argument("reference", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("--platform", metavar="OS/ARCH", help="platform to pick from a manifest list (default: the host's)")
    p.set_defaults(func=cmd_pull)

    p = isub.add_parser("push", help="push an image to a registry")
    p.add_argument("reference", metavar="NAME[:TAG]")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_push)

    p = isub.add_parser("history", help="show the history of an image")
    p.add_argument("reference", metavar="IMAGE")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    p.set_defaults(func=cmd_history)

    p = isub.add_parser("prune", help="remove dangling images (no reference)")
    p.add_argument("-f", "--force", action="store_true", help="accepted for docker compatibility (no prompt)")
    p.set_defaults(func=cmd_prune)

    p = isub.add_parser("bootstrap", help="make a base image offline (busybox from busybox-static)")
    p.add_argument("name", metavar="NAME", help="busybox, or debian[:SUITE] (debootstrap from Debian's mirror)")
    p.add_argument("--include", default="", metavar="PKG,...", help="debian: extra packages to install")
    p.add_argument("--if-missing", action="store_true", help="do nothing when the tag already exists")
    p.add_argument("--tag", "-t", metavar="REF", help="reference to give the image (default NAME:latest)")
    p.set_defaults(func=cmd_bootstrap)

    from composer.cli.build_cmds import register_image_build  # `image build` (issue 5)
    register_image_build(isub)


def _store() -> Any:
    from composer.images.store import ImageStore

    return ImageStore()


def cmd_import(args: argparse.Namespace) -> int:
    from composer.images.importer import apply_changes, import_rootfs
    from composer.images.model import ImageConfig

    changes = apply_changes(ImageConfig(), args.change) if args.change else None
    src = sys.stdin.buffer if args.file == "-" else args.file
    image = import_rootfs(_store(), src, args.reference, changes=changes, comment=args.message)
    print(image.id)
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    """`composer images`: inside a project (a stack file here or above, or -f/-p/--project-directory),
    the images its containers use, as `docker compose images` prints them; elsewhere every image in
    the store, as `docker images` does."""
    import os

    from composer.stackfiles import find_stack_files as discover

    in_project = bool(args.files or args.project_name or args.project_directory
                      or discover(os.getcwd()) is not None)
    if not in_project:
        if args.services:
            raise ComposerError("no stack file here: SERVICE arguments need a project")
        return cmd_ls(args)
    from composer.cli.project_common import query

    q = query(args, tuple(args.services))
    infos = sorted(q.containers(tuple(args.services), all=True), key=lambda i: i.name)
    store = _store()
    rows = []
    for info in infos:
        try:
            image = store.resolve(info.spec.image_id)
            size = _human_size(image.size)
        except ComposerError:
            size = ""
        repo, _, tag = info.spec.image.rpartition(":") if ":" in info.spec.image.split("/")[-1] else (
            info.spec.image, "", "latest")
        shown = info.spec.image_id if args.no_trunc else info.spec.image_id.split(":")[-1][:12]
        rows.append((info.name, repo, tag, shown, size))
    from composer.ui import listformat

    if listformat.custom(args.format) and not args.quiet:
        keys = ("ContainerName", "Repository", "Tag", "ID", "Size")
        sys.stdout.write(listformat.render([dict(zip(keys, r)) for r in rows], args.format,
                                           dict(zip(keys, ("CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE")))))
        return 0
    if args.quiet:
        print("\n".join(dict.fromkeys(r[3] for r in rows)))
        return 0
    header = ("CONTAINER", "REPOSITORY", "TAG", "IMAGE ID", "SIZE")
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("   ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from composer.ui import listformat

    listformat.validate(args.format)
    images = _store().list()
    if listformat.custom(args.format) and not args.quiet:
        sys.stdout.write(listformat.render(_image_rows(images, args.no_trunc), args.format, _IMAGE_TITLES))
        return 0
    if args.quiet:
        seen = []
        for image in images:
            shown = image.id if args.no_trunc else image.short_id
            if shown not in seen:
                seen.append(shown)
        if seen:
            print("\n".join(seen))
        return 0
    from rich.console import Console
    from rich.table import Table

    from composer.images.reference import parse_reference

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"):
        table.add_column(column, no_wrap=True)
    now = time.time()
    for image in images:
        shown = image.id if args.no_trunc else image.short_id
        rows = [(r.familiar_repository, r.tag or "<none>") for r in map(parse_reference, image.refs)]
        for repo, tag in rows or [("<none>", "<none>")]:
            table.add_row(repo, tag, shown, _ago(image.created, now), _human_size(image.size))
    Console(soft_wrap=True).print(table)
    return 0


_IMAGE_TITLES = {"Containers": "CONTAINERS", "CreatedAt": "CREATED AT", "CreatedSince": "CREATED",
                 "Digest": "DIGEST", "ID": "IMAGE ID", "Repository": "REPOSITORY", "Size": "SIZE", "Tag": "TAG",
                 "VirtualSize": "SIZE"}


def _image_rows(images, no_trunc: bool) -> list[dict[str, str]]:
    """An image per reference, with the keys `docker images --format` knows."""
    from composer.images.reference import parse_reference

    now, out = time.time(), []
    for image in images:
        refs = [(r.familiar_repository, r.tag or "<none>") for r in map(parse_reference, image.refs)]
        for repo, tag in refs or [("<none>", "<none>")]:
            out.append({"Containers": "N/A", "CreatedAt": image.created or "", "CreatedSince": _ago(image.created, now),
                        "Digest": "<none>", "ID": image.id if no_trunc else image.short_id, "Repository": repo,
                        "Size": _human_size(image.size), "Tag": tag, "VirtualSize": _human_size(image.size)})
    return out


def cmd_rm(args: argparse.Namespace) -> int:
    store = _store()
    status = 0
    for ref in args.refs:
        try:
            for line in store.remove(ref, force=args.force):
                print(line)
        except ComposerError as err:  # docker goes on with the other images
            sys.stderr.write(f"composer: {err}\n")
            status = 1
    return status


def cmd_tag(args: argparse.Namespace) -> int:
    _store().tag(args.source, args.target)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from composer.images.reference import parse_reference
    from composer.ui import inspect as shape

    store = _store()
    out = []
    for ref in args.refs:
        image = store.resolve(ref)
        out.append(shape.image(image, [parse_reference(r).familiar for r in image.refs],
                               [parse_reference(d).familiar for d in image.repo_digests]))
    sys.stdout.write(shape.render(out, args.format))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from composer.errors import UsageError
    from composer.images.archive import load_archive

    if args.input is None and sys.stdin.isatty():
        raise UsageError("requested load from stdin, but stdin is empty", hint="use -i FILE or a pipe")
    src = args.input if args.input not in (None, "-") else sys.stdin.buffer
    quiet = args.quiet or not sys.stderr.isatty()
    report = (lambda msg: None) if quiet else (lambda msg: sys.stderr.write(msg + "\n"))
    for loaded in load_archive(_store(), src, report):
        for ref in loaded.refs:
            print(f"Loaded image: {ref}")
        if not loaded.refs:
            print(f"Loaded image ID: {loaded.image.id}")
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    import contextlib
    import os

    from composer.errors import UsageError
    from composer.images.archive import save_images

    store = _store()
    for ref in args.refs:
        store.resolve(ref)  # a missing image fails before any file is made
    if args.output in (None, "-"):
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to save to a terminal", hint="use -o FILE or a pipe")
        sys.stdout.flush()
        save_images(store, args.refs, sys.stdout.buffer)
        return 0
    tmp = f"{args.output}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as out:
            save_images(store, args.refs, out)
        os.rename(tmp, args.output)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from composer.cli.pull_progress import TransferDisplay
    from composer.errors import UsageError
    from composer.images.pull import pull_image

    platform = None
    if args.platform:
        os_name, _, arch = args.platform.partition("/")
        if not os_name or not arch:
            raise UsageError(f"invalid --platform {args.platform!r}: expected OS/ARCH, e.g. linux/amd64")
        platform = (os_name, arch.split("/")[0])
    with TransferDisplay("Pull", args.quiet) as display:
        image = pull_image(_store(), args.reference, progress=display, platform=platform)
    digest = image.repo_digests[-1].split("@", 1)[1] if image.repo_digests else image.manifest
    if not args.quiet:
        print(f"Digest: {digest}")
    print(args.reference if args.quiet else f"Status: downloaded {args.reference}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from composer.cli.pull_progress import TransferDisplay
    from composer.images.push import push_image

    with TransferDisplay("Push", args.quiet) as display:
        digest = push_image(_store(), args.reference, progress=display)
    print(f"{args.reference}: digest: {digest}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    store = _store()
    image = store.resolve(args.reference)
    config = json.loads(store.read_blob(image.id))
    history = list(reversed(config.get("history") or []))
    layers = list(reversed(image.layers))
    now = time.time()
    rows = []
    for i, item in enumerate(history):
        empty = bool(item.get("empty_layer"))
        size = 0
        if not empty and layers:
            size = _dir_size(layers.pop(0))
        shown = image.id if args.no_trunc else image.short_id
        created_by = item.get("created_by", "")
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rows.append((shown if i == 0 else "<missing>", _ago(item.get("created", ""), now), created_by,
                     _human_size(size), item.get("comment", "")))
    if args.quiet:
        print("\n".join(r[0] for r in rows))
        return 0
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=True).print(table)
    return 0


def _dir_size(path: str) -> int:
    import os

    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(dirpath, name)):
                total += st.st_size
    return total


def cmd_prune(args: argparse.Namespace) -> int:
    store = _store()
    freed = sum(image.size for image in store.list() if not image.refs)
    lines = store.prune()
    if lines:
        print("Deleted Images:")
        print("\n".join(line[0].lower() + line[1:] for line in lines))
        print()
    print(f"Total reclaimed space: {_human_size(freed if lines else 0)}")
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from composer.images.bootstrap import BOOTSTRAPPERS

    store = _store()
    name, _, suite = args.name.partition(":")
    if name not in BOOTSTRAPPERS or (suite and name != "debian"):
        from composer.errors import UsageError

        raise UsageError(f"unknown base image {args.name!r}: choose busybox or debian[:SUITE]")
    ref = args.tag or (f"debian:{suite or 'bookworm'}" if name == "debian" else f"{name}:latest")
    if args.if_missing and store.exists(ref):
        print(store.resolve(ref).id)
        return 0
    started = time.monotonic()
    if name == "debian":
        from composer.images.bootstrap import bootstrap_debian

        include = tuple(p for p in args.include.split(",") if p)
        image = bootstrap_debian(store, suite or "bookworm", include, ref,
                                 progress=lambda line: sys.stderr.write(line + "\n"))
    else:
        image = BOOTSTRAPPERS[name](store, ref)
    sys.stderr.write(f"built {ref} in {(time.monotonic() - started) * 1000:.0f} ms\n")
    print(image.id)
    return 0


def _human_size(size: int) -> str:
    """docker's units: decimal, 3 significant digits (4.19MB)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.3g}{unit}"
        value /= 1000
    return f"{value:.3g}TB"


def _ago(created: str, now: float) -> str:
    try:
        then = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "N/A"
    secs = max(0, now - then)
    for limit, div, unit in ((60, 1, "second"), (3600, 60, "minute"), (86400, 3600, "hour"),
                             (86400 * 14, 86400, "day"), (86400 * 60, 86400 * 7, "week"),
                             (86400 * 730, 86400 * 30, "month")):
        if secs < limit:
            n = int(secs // div)
            if unit == "second" and n < 1:
                return "Less than a second ago"
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return f"{int(secs // (86400 * 365))} years ago"
