"""The verbs that look into containers, as docker compose and docker spell them: `cp`, `stats`,
`attach`, `export` for a project's services, and their `container cp|stats|attach|export`
counterparts for single containers. Each parses, finds the container(s), makes one runtime call and
renders (ui.stats for the table); copying and reading counters are runtime.container's."""

from __future__ import annotations

import argparse
import sys

from composer.errors import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cp", help="copy files between a service container and the local file system")
    _cp_flags(p)
    p.add_argument("--index", type=int, default=None, help="the replica, when the service has several")
    p.add_argument("--all", action="store_true", help="into the containers of `run` too")
    p.set_defaults(func=cmd_cp)

    p = sub.add_parser("stats", help="live resource usage of the services' containers")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    _stats_flags(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("attach", help="attach to a service container's output")
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("--index", type=int, default=1, help="the replica, when the service has several")
    _attach_flags(p)
    p.set_defaults(func=cmd_attach)

    p = sub.add_parser("export", help="export a service container's file system as a tar archive")
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("--index", type=int, default=1, help="the replica, when the service has several")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_export)


def _cp_flags(p) -> None:
    p.add_argument("-a", "--archive", action="store_true", help="keep the owners (uid:gid) of the files")
    p.add_argument("-L", "--follow-link", action="store_true", help="follow a symbolic link given as SRC_PATH")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dest", metavar="DEST")


def _stats_flags(p) -> None:
    p.add_argument("-a", "--all", action="store_true", help="stopped containers too")
    p.add_argument("--no-stream", action="store_true", help="one reading, then exit")
    p.add_argument("--no-trunc", action="store_true", help="full container ids")
    p.add_argument("--format", metavar="table|json|TEMPLATE", help="a Go template ({{.Name}} {{.MemUsage}}) or json")


def _attach_flags(p) -> None:
    p.add_argument("--no-stdin", action="store_true", help="accepted: stdin is never attached (see the docs)")
    p.add_argument("--sig-proxy", default="true", choices=("true", "false"),
                   help="pass SIGINT/SIGTERM/SIGHUP on to the container (default true)")
    p.add_argument("--detach-keys", metavar="KEYS", help="accepted for compatibility: Ctrl-C detaches with "
                   "--sig-proxy=false")


# ------------------------------------------------------------------ container counterparts

def _add_container_cp(csub) -> None:
    p = csub.add_parser("cp", help="copy files between a container and the local file system")
    _cp_flags(p)
    p.set_defaults(func=cmd_container_cp)


def _add_container_stats(csub) -> None:
    p = csub.add_parser("stats", help="live resource usage of containers")
    p.add_argument("containers", nargs="*", metavar="CONTAINER")
    _stats_flags(p)
    p.set_defaults(func=cmd_container_stats)


def _add_container_attach(csub) -> None:
    p = csub.add_parser("attach", help="attach to a container's output")
    p.add_argument("container", metavar="CONTAINER")
    _attach_flags(p)
    p.set_defaults(func=cmd_container_attach)


def _add_container_export(csub) -> None:
    p = csub.add_parser("export", help="export a container's file system as a tar archive")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_container_export)


CONTAINER_ADD = {"cp": _add_container_cp, "stats": _add_container_stats, "attach": _add_container_attach,
                 "export": _add_container_export}


# ------------------------------------------------------------------ cp

def split_ref(arg: str) -> tuple[str | None, str]:
    """("name", path) for NAME:PATH, (None, arg) for a local path (one with a / or . before any :)."""
    head, colon, rest = arg.partition(":")
    if not colon or not head or "/" in head or head.startswith("."):
        return None, arg
    return head, rest


def _cp_sides(args) -> tuple[str, str, str, bool]:
    """(container ref, src, dest, into the container?)"""
    (src_ref, src), (dest_ref, dest) = split_ref(args.src), split_ref(args.dest)
    if (src_ref is None) == (dest_ref is None):
        raise UsageError("cp needs one side in a container: SERVICE:SRC_PATH DEST_PATH or SRC_PATH SERVICE:DEST_PATH",
                         hint="a local path with a ':' in it: write it as ./NAME:X")
    if src_ref is not None:
        return src_ref, src or "/", dest, False
    return dest_ref, src, dest or "/", True


def _copy(rt, info, args, src: str, dest: str, into: bool) -> None:
    call = rt.copy_to if into else rt.copy_from
    call(info.id, src, dest, archive=args.archive, follow=args.follow_link)


def cmd_cp(args: argparse.Namespace) -> int:
    from composer.cli.project_common import query

    service, src, dest, into = _cp_sides(args)
    q = query(args, [service])
    if into and args.index is None:  # into every replica, as compose does
        infos = q.containers((service,), all=True)
        if args.all:  # the one-off containers of `run` too, as compose's --all
            infos += q.containers((service,), all=True, oneoff=True)
        infos = sorted(infos, key=lambda i: i.name)
        if not infos:
            q.container_for(service)  # says there is none
    else:
        infos = [q.container_for(service, args.index or 1)]
    for info in infos:
        _copy(q.runtime, info, args, src, dest, into)
    return 0


def cmd_container_cp(args: argparse.Namespace) -> int:
    from composer.runtime import Runtime

    ref, src, dest, into = _cp_sides(args)
    rt = Runtime()
    _copy(rt, rt.get(ref), args, src, dest, into)
    return 0


# ------------------------------------------------------------------ stats

def _stats(rt, containers, args) -> int:
    from composer.runtime.container.stats import Meter
    from composer.ui import stats as ui

    meter = Meter(rt, containers)

    def read():
        return [ui.row(s, cpu, args.no_trunc) for s, cpu in meter.read()]

    if args.no_stream:
        sys.stdout.write(ui.render(read(), args.format))
        return 0
    try:
        ui.live(read, args.format, sys.stdout)
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from composer.cli.project_common import query

    q = query(args, args.services)
    return _stats(q.runtime, lambda: sorted(q.containers(tuple(args.services), all=args.all), key=lambda i: i.name),
                  args)


def cmd_container_stats(args: argparse.Namespace) -> int:
    from composer.runtime import Runtime

    rt = Runtime()
    if args.containers:
        refs = [rt.get(ref).id for ref in args.containers]  # an unknown name fails before any output

        def containers():
            return [rt.get(ref) for ref in refs]
    else:
        def containers():
            return sorted(rt.list(all=args.all), key=lambda i: i.name)
    return _stats(rt, containers, args)


# ------------------------------------------------------------------ attach

def _attach(rt, info, args) -> int:
    """The container's output from now on, until it stops; its exit code then. With --sig-proxy,
    SIGINT/SIGTERM/SIGHUP go to the container (the stream then ends with it); without, Ctrl-C detaches."""
    import signal

    if not info.running:
        from composer.errors import ConflictError

        raise ConflictError(f"you cannot attach to a stopped container, start it first ({info.name})")
    proxy = args.sig_proxy == "true"
    if proxy:
        import threading

        def kill(signum: int) -> None:
            try:
                rt.kill(info.id, signum)
            except Exception:  # noqa: BLE001 - it may have exited meanwhile: the stream ends anyway
                pass

        def forward(signum, frame):
            # not here: the interrupted code may hold the container's lock, which kill takes
            threading.Thread(target=kill, args=(signum,), daemon=True).start()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, forward)
    try:
        for rec in rt.logs(info.id, follow=True, tail=0):
            out = sys.stdout if rec.stream == "stdout" else sys.stderr
            out.write(rec.line)
            out.flush()
    except KeyboardInterrupt:
        return 0  # detached; the container goes on
    final = rt.get(info.id)
    return final.exit_code if final.exit_code is not None and not final.running else 0


def cmd_attach(args: argparse.Namespace) -> int:
    from composer.cli.project_common import query

    q = query(args, [args.service])
    return _attach(q.runtime, q.container_for(args.service, args.index), args)


def cmd_container_attach(args: argparse.Namespace) -> int:
    from composer.runtime import Runtime

    rt = Runtime()
    return _attach(rt, rt.get(args.container), args)


# ------------------------------------------------------------------ export

def _export(rt, info, output: str | None) -> int:
    import os

    if output is None or output == "-":
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to write a tar archive to a terminal", hint="use -o FILE or a pipe")
        sys.stdout.flush()
        rt.export(info.id, sys.stdout.buffer)
        return 0
    tmp = f"{output}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            rt.export(info.id, f)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from composer.cli.project_common import query

    q = query(args, [args.service])
    return _export(q.runtime, q.container_for(args.service, args.index), args.output)


def cmd_container_export(args: argparse.Namespace) -> int:
    from composer.runtime import Runtime

    rt = Runtime()
    return _export(rt, rt.get(args.container), args.output)
