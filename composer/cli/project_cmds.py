"""The compose verbs: up, down, ps, logs, start, stop, restart, kill, rm, create, exec, port, top,
ls, version, with docker compose v2's flags and exit codes. Handlers import what they use: building
the parser costs nothing, `ps` stays fast and `exec` stays single-threaded."""

from __future__ import annotations

import argparse
import json
import sys

from composer.cli.project_common import (
    add_dry_run, check_services, colour_enabled, context, dry_run, load_model, load_optional, name_only, parse_timeout,
    project_busy, pull_flags, query, run_dry, run_with_progress, service_names, sources,
)
from composer.errors import ConflictError, NotFoundError, UsageError


def register(sub: argparse._SubParsersAction, only: str | None = None) -> None:
    """The verbs' parsers; only: just that verb's (the one being run: `ps` then builds one parser,
    not ~30 with ~140 options, a few ms of every start). A name no verb has builds them all, so
    argparse still lists the choices."""
    if only is not None:
        one = _Only(sub, only)
        _register(one)
        if one.found:
            return
    _register(sub)


class _Only:
    """A subparsers action that makes the parser of one command; the others become _Skipped."""

    def __init__(self, sub: argparse._SubParsersAction, name: str) -> None:
        self.sub, self.name, self.found = sub, name, False

    def add_parser(self, name: str, **kwargs):
        if name != self.name:
            return _Skipped()
        self.found = True
        return self.sub.add_parser(name, **kwargs)


class _Skipped:
    """The parser of a command that is not run: every call does nothing and returns it again."""

    def __getattr__(self, name: str):
        return self._nothing

    def _nothing(self, *args, **kwargs) -> "_Skipped":
        return self


def _register(sub) -> None:
    p = sub.add_parser("up", help="create and start the project's containers")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background")
    p.add_argument("--remove-orphans", action="store_true", help="remove containers of services not in the file")
    _recreate_flags(p)
    p.add_argument("--no-deps", action="store_true", help="don't start linked services")
    p.add_argument("--no-start", action="store_true", help="create but don't start")
    p.add_argument("--always-recreate-deps", action="store_true", help="recreate dependent containers too")
    p.add_argument("-V", "--renew-anon-volumes", action="store_true", help="new anonymous volumes on recreate")
    p.add_argument("--scale", action="append", default=[], metavar="SERVICE=NUM", help="set a service's replicas")
    p.add_argument("--build", action="store_true", help="build images before starting containers")
    p.add_argument("--no-build", action="store_true", help="don't build an image, even if it's missing")
    pull_flags(p)
    p.add_argument("--wait", action="store_true", help="wait for services to be running|healthy (implies -d)")
    p.add_argument("--wait-timeout", type=parse_timeout, metavar="SECONDS", help="give up waiting after this")
    _timeout(p)
    g = p.add_argument_group("attached mode")
    g.add_argument("--abort-on-container-exit", action="store_true", help="stop all when any container exits")
    g.add_argument("--abort-on-container-failure", action="store_true",
                   help="stop all when any container exits with a failure")
    g.add_argument("--exit-code-from", metavar="SERVICE", help="exit with this service's exit code "
                   "(implies --abort-on-container-exit)")
    g.add_argument("--attach", action="append", default=[], metavar="SERVICE", help="show only these logs")
    g.add_argument("--no-attach", action="append", default=[], metavar="SERVICE", help="don't show these logs")
    g.add_argument("--attach-dependencies", action="store_true",
                   help="show the logs of the services' dependencies too")
    g.add_argument("--timestamps", action="store_true", help="show timestamps")
    _log_look(g)
    p.add_argument("-w", "--watch", action="store_true",
                   help="watch the develop.watch rules while following the logs (not with -d)")
    add_dry_run(p)
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=_lazy("up"))

    p = sub.add_parser("watch", help="bring services up, then sync, restart or rebuild them as their files change")
    p.add_argument("--no-up", action="store_true", help="don't bring the services up first")
    p.add_argument("--prune", action=argparse.BooleanOptionalAction, default=True,
                   help="remove the image a rebuild left dangling (default: yes)")
    p.add_argument("--quiet", action="store_true", help="only the actions, not the containers' changes")
    p.add_argument("--verbose", action="store_true", help="say why a changed file triggered nothing")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=_lazy("watch"))

    p = sub.add_parser("down", help="stop and remove containers and networks (volumes with -v)")
    p.add_argument("-v", "--volumes", action="store_true", help="remove named and anonymous volumes too")
    p.add_argument("--remove-orphans", action="store_true", help="remove containers of services not in the file")
    p.add_argument("--rmi", choices=("local", "all"),
                   help="remove the services' images: 'local' only those without a custom tag, or 'all'")
    _timeout(p)
    add_dry_run(p)
    p.set_defaults(func=cmd_down)

    p = sub.add_parser("ps", help="list the project's containers")
    p.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    p.add_argument("-q", "--quiet", action="store_true", help="only ids")
    p.add_argument("--format", default="table", metavar="table|json|TEMPLATE")
    p.add_argument("--services", action="store_true", help="only service names")
    p.add_argument("--status", action="append", default=[],
                   choices=STATUSES)
    p.add_argument("--filter", action="append", default=[], metavar="status=STATUS",
                   help="filter by a property (supported: status)")
    p.add_argument("--orphans", nargs="?", const="true", default="true", type=_bool_word, metavar="true|false",
                   help="include containers of services the stack file no longer declares (default true)")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate commands")
    add_dry_run(p)  # accepted, as compose does: ps changes nothing anyway
    p.add_argument("service_args", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_ps)

    p = sub.add_parser("logs", help="show the containers' output")
    p.add_argument("-f", "--follow", action="store_true", help="follow the output")
    p.add_argument("-n", "--tail", default="all", metavar="N", help="lines from the end of each log (or 'all')")
    p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    p.add_argument("--since", metavar="TIME", help="RFC 3339 time, Unix time or duration like 10m")
    p.add_argument("--until", metavar="TIME", help="only lines before this (RFC 3339 time, Unix time or 42m ago)")
    p.add_argument("--index", type=int, metavar="N", help="only this replica")
    _log_look(p)
    add_dry_run(p)
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_logs)

    for verb, helptext, func in (("start", "start existing containers", cmd_start),
                                 ("stop", "stop running containers", cmd_stop),
                                 ("restart", "restart containers", cmd_restart)):
        p = sub.add_parser(verb, help=helptext)
        if verb != "start":
            _timeout(p)
        if verb == "restart":
            p.add_argument("--no-deps", action="store_true", help="don't restart dependent services")
        add_dry_run(p)
        p.add_argument("services", nargs="*", metavar="SERVICE")
        p.set_defaults(func=func)

    p = sub.add_parser("kill", help="send a signal to the containers")
    p.add_argument("-s", "--signal", default="SIGKILL", metavar="SIGNAL")
    p.add_argument("--remove-orphans", action="store_true")
    add_dry_run(p)
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_kill)

    p = sub.add_parser("rm", help="remove stopped containers")
    p.add_argument("-f", "--force", action="store_true", help="don't ask for confirmation")
    p.add_argument("-s", "--stop", action="store_true", help="stop the containers first")
    p.add_argument("-v", "--volumes", action="store_true", help="remove their anonymous volumes")
    add_dry_run(p)
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("create", help="create the containers without starting them")
    _recreate_flags(p)
    p.add_argument("--remove-orphans", action="store_true")
    p.add_argument("--scale", action="append", default=[], metavar="SERVICE=NUM")
    add_dry_run(p)
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("exec", help="run a command in a running container")
    p.add_argument("-T", "--no-tty", "--no-TTY", dest="no_tty", action="store_true", help="no pseudo-terminal")
    # compose's defaults, accepted so that docker habits (`exec -it`) work: a tty when stdin is one
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached (the default)")
    p.add_argument("-t", "--tty", action="store_true", help="a pseudo-terminal (the default when stdin is one)")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VAL")
    p.add_argument("-w", "--workdir", metavar="DIR")
    p.add_argument("-u", "--user", metavar="USER")
    p.add_argument("--index", type=int, default=1, metavar="N")
    p.add_argument("--privileged", action="store_true", help="accepted for compatibility")
    add_dry_run(p)  # refused (cli/main.py): exec has no plan to show
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("cmd_argv", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("port", help="print the public address of a port binding")
    p.add_argument("--protocol", default="tcp", choices=("tcp", "udp"))
    p.add_argument("--index", type=int, default=1, metavar="N")
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("private_port", metavar="PRIVATE_PORT")
    p.set_defaults(func=cmd_port)

    p = sub.add_parser("top", help="show the running processes")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_top)

    p = sub.add_parser("ls", help="list the projects on this host")
    p.add_argument("-a", "--all", action="store_true", help="show stopped projects too")
    p.add_argument("-q", "--quiet", action="store_true", help="only names")
    p.add_argument("--format", default="table", metavar="table|json")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("version", help="show the composer version")
    p.add_argument("--short", action="store_true")
    p.add_argument("-f", "--format", default="pretty", metavar="pretty|json")
    p.set_defaults(func=cmd_version)
    if isinstance(sub, _Only) and sub.name not in _LIFECYCLE_VERBS:
        return
    from composer.cli import lifecycle_cmds

    lifecycle_cmds.register(sub)  # run, scale, pause, unpause, wait, events
    # `images` is image_cmds' top-level command (the image store); see the report to the lead.


_LIFECYCLE_VERBS = {"run", "scale", "pause", "unpause", "wait", "events"}
STATUSES = ("paused", "restarting", "removing", "running", "dead", "created", "exited")


def _bool_word(text: str) -> bool:
    """A Go-style boolean flag value (`--orphans=false`)."""
    word = text.strip().lower()
    if word in ("true", "1", "t", "yes"):
        return True
    if word in ("false", "0", "f", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}: true or false expected")


def _recreate_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force-recreate", action="store_true", help="recreate even if nothing changed")
    p.add_argument("--no-recreate", action="store_true", help="don't recreate existing containers")


def _timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--timeout", type=parse_timeout, metavar="SECONDS",
                   help="seconds to wait for a stop before killing")


def _log_look(p) -> None:
    p.add_argument("--no-color", action="store_true", help="monochrome output")
    p.add_argument("--no-log-prefix", action="store_true", help="no container name prefix")


def _lazy(name: str):
    def handler(args: argparse.Namespace) -> int:
        if name == "watch":
            from composer.cli import watch_cmd

            return watch_cmd.cmd_watch(args)
        from composer.cli import up_cmd

        return up_cmd.cmd_up(args)

    return handler


# ------------------------------------------------------------------ lifecycle verbs


def cmd_down(args: argparse.Namespace) -> int:
    from composer.project.project import DownOptions

    model, name = load_optional(args)
    ctx = context(args, model, name)  # no launcher: down starts no container (see DownMixin.down)
    opts = DownOptions(volumes=args.volumes, remove_orphans=args.remove_orphans, timeout=args.timeout,
                       rmi=args.rmi, dry_run=dry_run(args))
    if opts.dry_run:
        return run_dry(ctx, lambda: ctx.runner.down(opts))
    run_with_progress(ctx, args, lambda: ctx.runner.down(opts))
    return 0


def _simple(args: argparse.Namespace, call, *, prepare: bool = False, title: str = "Running") -> int:
    """call(ctx, **kw): the verb's one library call; a dry run passes dry_run=True and prints the plan."""
    model, name = load_optional(args, args.services)
    check_services(model, args.services)
    dry = dry_run(args)
    ctx = context(args, model, name, prepare=prepare and not dry)
    if dry:
        return run_dry(ctx, lambda: call(ctx, dry_run=True))
    run_with_progress(ctx, args, lambda: call(ctx), title)
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    return _simple(args, lambda ctx, **kw: ctx.runner.start(tuple(args.services), **kw), prepare=True)


def cmd_stop(args: argparse.Namespace) -> int:
    return _simple(args, lambda ctx, **kw: ctx.runner.stop(tuple(args.services), args.timeout, **kw))


def cmd_restart(args: argparse.Namespace) -> int:
    return _simple(args, lambda ctx, **kw: ctx.runner.restart(tuple(args.services), args.timeout,
                                                              no_deps=args.no_deps, **kw), prepare=True)


def cmd_kill(args: argparse.Namespace) -> int:
    from composer.service.runspec import parse_signal

    sig = parse_signal(args.signal)
    return _simple(args, lambda ctx, **kw: ctx.runner.kill(tuple(args.services), sig, **kw))


def cmd_create(args: argparse.Namespace) -> int:
    from composer.cli.project_common import parse_scale
    from composer.project.project import UpOptions

    if args.force_recreate and args.no_recreate:
        raise UsageError("--force-recreate and --no-recreate are incompatible")
    model = load_model(args, args.services)
    check_services(model, args.services)
    opts = UpOptions(services=tuple(args.services), force_recreate=args.force_recreate,
                     no_recreate=args.no_recreate, no_start=True, remove_orphans=args.remove_orphans,
                     scale=parse_scale(args.scale), no_build=True, pull="never",  # create neither builds nor pulls
                     dry_run=dry_run(args))
    ctx = context(args, model, model.name, prepare=not opts.dry_run)
    if opts.dry_run:
        return run_dry(ctx, lambda: ctx.runner.create(opts))
    run_with_progress(ctx, args, lambda: ctx.runner.create(opts))
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    model, name = load_optional(args, args.services)
    check_services(model, args.services)
    ctx = context(args, model, name, prepare=False)
    if dry_run(args):  # no question: nothing is removed
        return run_dry(ctx, lambda: ctx.runner.rm(tuple(args.services), stop=args.stop, volumes=args.volumes,
                                                  dry_run=True))
    infos = ctx.runner.containers(tuple(args.services), all=True)
    doomed = infos if args.stop else [i for i in infos if not i.running]
    if not doomed:
        sys.stderr.write("No stopped containers\n")
        return 0
    if not args.force:
        names = ", ".join(i.name for i in doomed)
        sys.stderr.write(f"Going to remove {names}\nAre you sure? [yN] ")
        sys.stderr.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    # the runner's force means "running ones too"; compose's -f only skips the question
    run_with_progress(ctx, args, lambda: ctx.runner.rm(tuple(args.services), force=False, stop=args.stop,
                                                       volumes=args.volumes))
    return 0


# ------------------------------------------------------------------ read-only verbs


def cmd_ps(args: argparse.Namespace) -> int:
    from composer.ui import listformat
    from composer.ui import tables as ui

    listformat.validate(args.format)  # table, json or a Go template ({{.Name}} {{.State}})
    statuses = [*args.status, *_status_filters(args.filter)]
    q = query(args, args.service_args)
    name = q.name
    show_all = args.all or bool(statuses)
    infos = q.containers(tuple(args.service_args), all=show_all)
    if statuses:
        infos = [i for i in infos if i.status in statuses]
    if not args.orphans:  # needs the stack file: which services it declares
        model = q.model if q.model is not None else load_model(args)
        infos = [i for i in infos if i.label("composer.service", "") in model.services]
    infos = sorted(infos, key=lambda i: i.name)
    out = sys.stdout
    if args.services:
        out.write("".join(s + "\n" for s in sorted({i.label("composer.service", "") or "" for i in infos})))
    elif args.quiet:
        out.write("".join(i.id + "\n" for i in infos))
    elif args.format == "json":
        out.write("".join(json.dumps(ui.ps_json(i, name)) + "\n" for i in infos))
    elif listformat.custom(args.format):
        out.write(listformat.render([ui.ps_json(i, name) for i in infos], args.format, listformat.PS_TITLES))
    else:
        rows = [ui.ps_row(i, no_trunc=args.no_trunc) for i in infos]
        ui.print_table(ui.PS_HEADERS, [tuple(vars(r).values()) for r in rows], out,
                       colour=colour_enabled(args))
    return 0


def _status_filters(filters: list[str]) -> list[str]:
    """`--filter status=exited` (docker compose supports the status filter only)."""
    out = []
    for f in filters:
        key, eq, value = f.partition("=")
        if key.strip() != "status" or not eq:
            raise UsageError(f"invalid --filter {f!r}: only status=STATUS is supported")
        if value not in STATUSES:
            raise UsageError(f"invalid --filter {f!r}: status is one of {', '.join(STATUSES)}")
        out.append(value)
    return out


def cmd_logs(args: argparse.Namespace) -> int:
    from composer.ui.logmux import LogMux, LogOptions, LogPrinter, colour_map, parse_since, parse_tail, print_logs

    tail = parse_tail(args.tail)
    opts = LogOptions(follow=args.follow, tail=tail, since=parse_since(args.since) if args.since else None,
                      until=parse_since(args.until, flag="--until") if args.until else None,
                      timestamps=args.timestamps, colour=colour_enabled(args), prefix=not args.no_log_prefix)
    q = query(args, args.services)
    name = q.name
    infos = q.containers(tuple(args.services), all=True)
    if args.index is not None:
        infos = [i for i in infos if i.label("composer.number") == str(args.index)]
    infos = sorted(infos, key=lambda i: i.name)
    srcs = sources(infos, name)
    printer = LogPrinter(sys.stdout, opts, colour_map(service_names(q, infos)), (s.name for s in srcs))
    if not opts.follow:
        print_logs(q.runtime, srcs, printer)
        return 0

    def discover():
        found = q.containers(tuple(args.services), all=False)
        return sources(found, name)

    mux = LogMux(q.runtime, printer, discover=discover, busy=project_busy(q.runtime, name))
    for s in srcs:
        mux.add(s)
    try:
        mux.run()
    except KeyboardInterrupt:
        return 130
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    """Runs in this process's own thread only: the runtime forks into the container's namespaces."""
    import os

    from composer.service.runspec import parse_env

    if not args.cmd_argv:
        raise UsageError("exec needs a command: composer exec SERVICE COMMAND [ARG...]")
    q = query(args, [args.service])
    info = q.container_for(args.service, args.index)
    if not info.running:
        raise ConflictError(f"service {args.service!r} is not running")
    tty = not args.no_tty and not args.detach and sys.stdin.isatty()
    env = tuple(parse_env(tuple(args.env), os.environ))
    return q.runtime.exec(info.id, list(args.cmd_argv), env=env, cwd=args.workdir, user=args.user, tty=tty,
                          detach=args.detach)


def cmd_port(args: argparse.Namespace) -> int:
    port_text, _, proto = args.private_port.partition("/")
    if not port_text.isdigit():
        raise UsageError(f"invalid port {args.private_port!r}")
    q = query(args, [args.service])
    info = q.container_for(args.service, args.index)
    found = next(((p.host_ip, p.host_port) for p in info.ports
                  if p.container_port == int(port_text) and p.protocol == (proto or args.protocol)), None)
    if not found:
        raise NotFoundError(f"no port {port_text}/{proto or args.protocol} published for {args.service}")
    ip, port = found
    print(f"{ip or '0.0.0.0'}:{port}")
    return 0


def cmd_top(args: argparse.Namespace) -> int:
    from composer.ui import tables as ui

    model, name = name_only(args)
    check_services(model, args.services)
    ctx = context(args, model, name)
    result = ctx.runner.top(tuple(args.services))
    for entry in result or ():
        cname, titles, rows = _top_entry(entry)
        sys.stdout.write(cname + "\n")
        sys.stdout.write(ui.plain_table(titles, rows) + "\n")
    return 0


TOP_TITLES = ("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD")


def _top_entry(entry):
    """(container name, titles, rows) from the runner's (ContainerInfo, rows) item."""
    info, rows = entry
    return info.name, TOP_TITLES, [tuple(map(str, r)) for r in rows]


def cmd_ls(args: argparse.Namespace) -> int:
    from composer.project.ops import list_projects
    from composer.runtime import Runtime
    from composer.ui import tables as ui

    if args.format not in ("table", "json"):
        raise UsageError(f"unsupported --format {args.format!r} (table or json)")
    projects = sorted(list_projects(Runtime(), all=args.all), key=lambda p: p.name)
    if args.quiet:
        sys.stdout.write("".join(p.name + "\n" for p in projects))
    elif args.format == "json":
        print(json.dumps([{"Name": p.name, "Status": p.status, "ConfigFiles": p.config_files}
                          for p in projects]))
    else:
        ui.print_table(("NAME", "STATUS", "CONFIG FILES"),
                       [(p.name, p.status, p.config_files) for p in projects], sys.stdout,
                       colour=colour_enabled(args))
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    from composer import __version__

    if args.short:
        print(__version__)
    elif args.format == "json":
        print(json.dumps({"version": __version__}))
    else:
        print(f"composer version {__version__}")
    return 0
