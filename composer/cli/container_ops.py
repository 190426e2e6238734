"""`composer container ...` verbs on existing containers: ls, logs, stop, kill, rm, exec, inspect,
wait, pause, unpause, with docker's flags and meanings. `container_cmds.register` imports this module
only when a command line names one of these verbs (or none), so `container run` never loads it."""

from __future__ import annotations

import argparse
import sys


def _add_ls(csub) -> None:
    ls = csub.add_parser("ls", aliases=["ps", "list"], help="list containers")
    ls.add_argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    ls.add_argument("-q", "--quiet", action="store_true", help="only ids")
    ls.add_argument("--no-trunc", action="store_true")
    ls.add_argument("--format", metavar="table|json|TEMPLATE", help="json lines or a Go template ({{.Names}} ...)")
    ls.set_defaults(func=cmd_ls)


def _add_logs(csub) -> None:
    logs = csub.add_parser("logs", help="show a container's output")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-t", "--timestamps", action="store_true")
    logs.add_argument("-n", "--tail", default="all")
    logs.add_argument("container")
    logs.set_defaults(func=cmd_logs)


def _add_stop(csub) -> None:
    stop = csub.add_parser("stop", help="stop containers (stop signal, grace period, SIGKILL)")
    stop.add_argument("-t", "--time", type=float, default=None, metavar="SECS")
    stop.add_argument("containers", nargs="+", metavar="CONTAINER")
    stop.set_defaults(func=cmd_stop)


def _add_kill(csub) -> None:
    kill = csub.add_parser("kill", help="send a signal to containers")
    kill.add_argument("-s", "--signal", default="KILL")
    kill.add_argument("containers", nargs="+", metavar="CONTAINER")
    kill.set_defaults(func=cmd_kill)


def _add_rm(csub) -> None:
    rm = csub.add_parser("rm", help="remove containers")
    rm.add_argument("-f", "--force", action="store_true", help="kill running containers first")
    rm.add_argument("containers", nargs="+", metavar="CONTAINER")
    rm.set_defaults(func=cmd_rm)


def _add_exec(csub) -> None:
    ex = csub.add_parser("exec", help="run a command in a running container")
    ex.add_argument("-e", "--env", action="append", default=[])
    ex.add_argument("-w", "--workdir")
    ex.add_argument("-u", "--user")
    ex.add_argument("-d", "--detach", action="store_true")
    ex.add_argument("-i", "--interactive", action="store_true", help="keep stdin attached")
    ex.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    ex.add_argument("container")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_exec)


_SIMPLE = {"inspect": "show containers as JSON", "wait": "wait for containers to exit",
           "pause": "freeze all processes", "unpause": "thaw all processes"}


def _add_simple(verb: str):
    def add(csub) -> None:
        q = csub.add_parser(verb, help=_SIMPLE[verb])
        q.add_argument("containers", nargs="+", metavar="CONTAINER")
        if verb == "inspect":
            add_format(q)
        q.set_defaults(func=globals()[f"cmd_{verb}"])
    return add


def _transfer(verb: str):
    def add(csub) -> None:
        from composer.cli import transfer_cmds  # cp, stats, attach, export: shared with the project verbs

        transfer_cmds.CONTAINER_ADD[verb](csub)
    return add


ADD = {"ls": _add_ls, "logs": _add_logs, "stop": _add_stop, "kill": _add_kill, "rm": _add_rm,
       "exec": _add_exec, **{verb: _add_simple(verb) for verb in _SIMPLE},
       **{verb: _transfer(verb) for verb in ("cp", "stats", "attach", "export")}}


def add_format(p) -> None:
    p.add_argument("-f", "--format", metavar="TEMPLATE",
                   help="a Go template ({{.State.Pid}}, {{json .Config}}, ...) or 'json'")


def _runtime():
    from composer.runtime import Runtime

    return Runtime()


def _ago(t: float | None) -> str:
    import time

    from composer.units import format_duration

    return f"{format_duration(time.time() - t)} ago" if t else ""


def _status(info) -> str:
    from composer.ui.texts import status_text  # one wording for `ps` and `container ls`

    return status_text(info)


def _ports(info) -> str:
    return ", ".join(f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}" for p in info.ports)


def cmd_ls(args) -> int:
    import shlex

    from composer.ui import listformat

    listformat.validate(args.format)
    rows = _runtime().list(all=args.all)
    if listformat.custom(args.format) and not args.quiet:
        found = [listformat.container_row(i, args.no_trunc) for i in rows]
        sys.stdout.write(listformat.render(found, args.format, listformat.CONTAINER_TITLES))
        return 0
    if args.quiet:
        for info in rows:
            print(info.id if args.no_trunc else info.id[:12])
        return 0
    table = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")]
    for info in rows:
        cmd = shlex.join(info.spec.argv)
        if not args.no_trunc and len(cmd) > 20:
            cmd = cmd[:19] + "…"
        table.append((info.id if args.no_trunc else info.id[:12], info.spec.image, f'"{cmd}"',
                      _ago(info.created_at), _status(info), _ports(info), info.name))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0


def cmd_logs(args) -> int:
    from composer.ui.logmux import parse_tail

    tail = parse_tail(args.tail)
    rt = _runtime()
    try:
        for rec in rt.logs(args.container, follow=args.follow, tail=tail):
            out = sys.stdout if rec.stream == "stdout" else sys.stderr
            out.write(f"{rec.time} {rec.line}" if args.timestamps else rec.line)
            if args.follow:
                out.flush()
    except KeyboardInterrupt:
        return 0
    return 0


def _each(refs, act) -> int:
    """act(runtime, ref) for each container named, echoing each as docker does."""
    rt = _runtime()
    for ref in refs:
        act(rt, ref)
        print(ref)
    return 0


def cmd_stop(args) -> int:
    return _each(args.containers, lambda rt, ref: rt.stop(ref, args.time))


def cmd_kill(args) -> int:
    from composer.service.runspec import parse_signal

    sig = parse_signal(args.signal)
    return _each(args.containers, lambda rt, ref: rt.kill(ref, sig))


def cmd_rm(args) -> int:
    rt = _runtime()
    failed = 0
    for ref in args.containers:
        try:
            rt.remove(ref, force=args.force)
            print(ref)
        except Exception as e:  # noqa: BLE001 - report each, like docker, and go on
            from composer.errors import ComposerError

            if not isinstance(e, ComposerError):
                raise
            sys.stderr.write(f"composer: {e}\n")
            failed = 1
    return failed


def cmd_exec(args) -> int:
    from composer.errors import UsageError

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UsageError("exec needs a command")
    env = []
    for item in args.env:
        key, eq, value = item.partition("=")
        if not eq:
            import os

            if key not in os.environ:
                continue
            value = os.environ[key]
        env.append((key, value))
    sys.stdout.flush()
    return _runtime().exec(args.container, command, env=env, cwd=args.workdir, user=args.user, detach=args.detach,
                           tty=args.tty, interactive=args.interactive)


def cmd_inspect(args) -> int:
    import os

    from composer.ui import inspect as shape

    rt = _runtime()
    out = []
    for ref in args.containers:
        info = rt.get(ref)
        p = rt.paths(info.id)
        files = {"hosts": os.path.join(p.state, "hosts"), "resolv.conf": os.path.join(p.state, "resolv.conf"),
                 "hostname": os.path.join(p.state, "hostname"), "log": p.log,
                 "upper": os.path.join(p.data, "upper"), "work": os.path.join(p.data, "work")}
        out.append(shape.container(info, volumes_root=os.path.join(rt.data_dir, "volumes"), files=files))
    sys.stdout.write(shape.render(out, args.format))
    return 0


def cmd_wait(args) -> int:
    rt = _runtime()
    code = 0
    for ref in args.containers:
        info = rt.wait(ref)
        code = info.exit_code if info.exit_code is not None else 255
        print(code)
    return code


def cmd_pause(args) -> int:
    return _each(args.containers, lambda rt, ref: rt.pause(ref))


def cmd_unpause(args) -> int:
    return _each(args.containers, lambda rt, ref: rt.unpause(ref))
