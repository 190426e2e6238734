"""`composer container ...`: run, create, start, ls, logs, stop, kill, rm, exec, inspect, wait,
pause, unpause, with docker's flags and meanings. Imports are lazy: `run` must start fast."""

from __future__ import annotations

import argparse
import sys


# The verbs and their aliases. register() builds only the one a command line names: argparse
# parses `container run ...` with the `run` parser alone, and building all 13 costs ~4 ms a run.
VERBS = {"run": ("run",), "create": ("create",), "start": ("start",), "ls": ("ls", "ps", "list"),
         "logs": ("logs",), "stop": ("stop",), "kill": ("kill",), "rm": ("rm",), "exec": ("exec",),
         "inspect": ("inspect",), "wait": ("wait",), "pause": ("pause",), "unpause": ("unpause",)}
_VERB_OF = {alias: verb for verb, aliases in VERBS.items() for alias in aliases}


def register(sub: argparse._SubParsersAction, verb: str | None = None) -> None:
    """`container` and its verbs; only `verb`'s parser when given and known (a word that is no
    verb, or none, builds them all: help and the invalid-choice error list every verb)."""
    p = sub.add_parser("container", help="manage single containers (like docker container)")
    csub = p.add_subparsers(dest="container_command", metavar="COMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])
    wanted = (_VERB_OF[verb],) if verb in _VERB_OF else tuple(VERBS)
    for name in wanted:
        _ADD[name](csub)


def _add_run(csub) -> None:
    run = csub.add_parser("run", help="create and start a container", add_help=False)
    _run_flags(run)
    run.add_argument("--rm", action="store_true", help="remove the container when it exits")
    run.add_argument("-d", "--detach", action="store_true", help="run in the background, print the id")
    run.set_defaults(func=cmd_run)


def _add_create(csub) -> None:
    create = csub.add_parser("create", help="create a container without starting it", add_help=False)
    _run_flags(create)
    create.set_defaults(func=cmd_create, rm=False, detach=True)


def _add_start(csub) -> None:
    start = csub.add_parser("start", help="start created or stopped containers")
    start.add_argument("containers", nargs="+", metavar="CONTAINER")
    start.set_defaults(func=cmd_start)


def _add_ls(csub) -> None:
    ls = csub.add_parser("ls", aliases=["ps", "list"], help="list containers")
    ls.add_argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    ls.add_argument("-q", "--quiet", action="store_true", help="only ids")
    ls.add_argument("--no-trunc", action="store_true")
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
        q.set_defaults(func=globals()[f"cmd_{verb}"])
    return add


_ADD = {"run": _add_run, "create": _add_create, "start": _add_start, "ls": _add_ls, "logs": _add_logs,
        "stop": _add_stop, "kill": _add_kill, "rm": _add_rm, "exec": _add_exec,
        **{verb: _add_simple(verb) for verb in _SIMPLE}}


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user", metavar="UID[:GID]")
    p.add_argument("-h", "--hostname")
    p.add_argument("-m", "--memory", metavar="SIZE")
    p.add_argument("--cpus")
    p.add_argument("--pids-limit")
    p.add_argument("--network", "--net", default="bridge", metavar="none|bridge|host")
    p.add_argument("--entrypoint")
    p.add_argument("--init", action="store_true")
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("-p", "--publish", action="append", default=[], metavar="[IP:]HOST:CONTAINER")
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--security-opt", action="append", default=[], metavar="seccomp=unconfined|PROFILE.json")
    p.add_argument("--restart", metavar="no|always|on-failure[:N]|unless-stopped")
    p.add_argument("--health-cmd", metavar="CMD")
    p.add_argument("--health-interval", metavar="DURATION")
    p.add_argument("--health-timeout", metavar="DURATION")
    p.add_argument("--health-retries", type=int, metavar="N")
    p.add_argument("--health-start-period", metavar="DURATION")
    p.add_argument("--no-healthcheck", action="store_true")
    p.add_argument("--log-driver", metavar="json-file|none")
    p.add_argument("--log-opt", action="append", default=[], metavar="max-size=S|max-file=N")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open (attached: forwarded)")
    p.add_argument("-t", "--tty", action="store_true", help="run the command on a pseudo-terminal")
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _runtime(prepare: bool = False):
    from composer.runtime import Runtime

    rt = Runtime()
    if prepare:
        rt.prepare()  # before anything else: the launcher must fork while we are single-threaded
    return rt


def _spec(args, rt):
    import dataclasses
    import os

    from composer import runspec
    from composer.images.store import ImageStore

    image = ImageStore(rt.data_dir).resolve(args.image)
    opts = runspec.RunOptions(
        image=args.image, command=tuple(args.command), name=args.name, env=tuple(args.env),
        volumes=tuple(args.volume), workdir=args.workdir, user=args.user, hostname=args.hostname,
        memory=args.memory, cpus=args.cpus, pids_limit=args.pids_limit, network=args.network,
        entrypoint=args.entrypoint, init=args.init, rm=args.rm, labels=tuple(args.label),
        publish=tuple(args.publish), read_only=args.read_only, cap_add=tuple(args.cap_add),
        cap_drop=tuple(args.cap_drop), security_opt=tuple(args.security_opt))
    host = runspec.HostContext(cwd=os.getcwd(), environ=os.environ, ncpu=os.cpu_count() or 1)
    info = runspec.ImageInfo(ref=args.image, id=image.id, layers=image.layers, config=image.config)
    spec = runspec.build(opts, info, host)
    spec = dataclasses.replace(spec, **runspec.policies(
        restart=args.restart, health_cmd=args.health_cmd, health_interval=args.health_interval,
        health_timeout=args.health_timeout, health_retries=args.health_retries,
        health_start_period=args.health_start_period, no_healthcheck=args.no_healthcheck,
        log_driver=args.log_driver, log_opts=tuple(args.log_opt), image_health=image.config.healthcheck))
    if args.rm and spec.restart.name != "no":
        from composer.errors import UsageError

        raise UsageError("conflicting options: --restart and --rm")
    return dataclasses.replace(spec, tty=args.tty, stdin_open=args.interactive)


def cmd_create(args) -> int:
    rt = _runtime()
    info = rt.create(_spec(args, rt))
    print(info.id)
    return 0


def cmd_run(args) -> int:
    rt = _runtime(prepare=True)
    rt.settle_links = False  # we exit right after: a --rm's veths go on their own (Runtime.remove)
    spec = _spec(args, rt)
    if args.detach:
        info = rt.run(spec)
        print(info.id)
        return 0
    return attach_and_wait(rt, lambda: rt.run(spec, attach_stdio=True), tty=spec.tty, interactive=spec.stdin_open)


def attach_and_wait(rt, start, *, tty: bool = False, interactive: bool = False) -> int:
    """start() (a runtime start with attach_stdio=True), then wait for the exit: the container's
    exit code (125 if none). Also `composer run`'s attached mode. With a tty the container's
    monitor copies between our terminal and the pty; we hold the terminal in raw mode (when
    stdin is attached, as docker) and pass window size changes on (SIGWINCH to the monitor)."""
    import contextlib
    import os

    from composer.runtime import tty as rtty

    raw = tty and interactive and os.isatty(0)
    with rtty.raw_mode(0) if raw else contextlib.nullcontext():
        return _attach_and_wait(rt, start, tty)


def _attach_and_wait(rt, start, tty: bool) -> int:
    import signal

    # A Ctrl-C during the start is held back until the container runs, then stops it (below).
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
    try:
        info = start()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
        raise
    if tty and info.monitor_pid:
        monitor = info.monitor_pid
        signal.signal(signal.SIGWINCH, lambda *_: _resize(monitor))
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])  # a pending Ctrl-C raises here
        final = rt.wait(info.id)
    except KeyboardInterrupt:  # Ctrl-C stops the container, as docker run does
        rt.stop(info.id)
        final = rt.wait(info.id)
    if final.oom_killed and final.error:
        sys.stderr.write(f"composer: {final.error}\n")
    return final.exit_code if final.exit_code is not None else 125


def _resize(monitor_pid: int) -> None:
    import os
    import signal

    try:
        os.kill(monitor_pid, signal.SIGWINCH)  # it copies our terminal's size onto the pty
    except ProcessLookupError:
        pass


def cmd_start(args) -> int:
    rt = _runtime(prepare=True)
    for ref in args.containers:
        rt.start(ref)
        print(ref)
    return 0


def _ago(t: float | None) -> str:
    import time

    from composer.units import format_duration

    return f"{format_duration(time.time() - t)} ago" if t else ""


def _status(info) -> str:
    from composer.ui import status_text  # one wording for `ps` and `container ls`

    return status_text(info)


def _ports(info) -> str:
    return ", ".join(f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}" for p in info.ports)


def cmd_ls(args) -> int:
    import shlex

    rows = _runtime().list(all=args.all)
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
    from composer.errors import UsageError

    tail = None
    if args.tail != "all":
        try:
            tail = int(args.tail)
        except ValueError:
            raise UsageError(f"invalid --tail value {args.tail!r}") from None
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


def cmd_stop(args) -> int:
    rt = _runtime()
    for ref in args.containers:
        rt.stop(ref, args.time)
        print(ref)
    return 0


def cmd_kill(args) -> int:
    from composer.runspec import parse_signal

    sig = parse_signal(args.signal)
    rt = _runtime()
    for ref in args.containers:
        rt.kill(ref, sig)
        print(ref)
    return 0


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
    import dataclasses
    import json

    rt = _runtime()
    out = []
    for ref in args.containers:
        info = rt.get(ref)
        d = dataclasses.asdict(dataclasses.replace(info, endpoints=()))
        d["endpoints"] = [e.to_dict() for e in info.endpoints]
        out.append(d)
    print(json.dumps(out, indent=2, default=str))
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
    rt = _runtime()
    for ref in args.containers:
        rt.pause(ref)
        print(ref)
    return 0


def cmd_unpause(args) -> int:
    rt = _runtime()
    for ref in args.containers:
        rt.unpause(ref)
        print(ref)
    return 0
