"""`composer container ...`: the verbs and their registration, and the ones that start containers
(run, create, start), with docker's flags and meanings. Imports are lazy: `run` must start fast.
The verbs on existing containers (ls, logs, stop, kill, rm, exec, inspect, wait, pause, unpause; cp,
stats, attach, export from `transfer_cmds`) are `container_ops`', imported only when a command line
names one of them."""

from __future__ import annotations

import argparse
import sys


# The verbs and their aliases. register() builds only the one a command line names: argparse
# parses `container run ...` with the `run` parser alone, and building all 13 costs ~4 ms a run.
VERBS = {"run": ("run",), "create": ("create",), "start": ("start",), "ls": ("ls", "ps", "list"),
         "logs": ("logs",), "stop": ("stop",), "kill": ("kill",), "rm": ("rm",), "exec": ("exec",),
         "inspect": ("inspect",), "wait": ("wait",), "pause": ("pause",), "unpause": ("unpause",),
         "cp": ("cp",), "stats": ("stats",), "attach": ("attach",), "export": ("export",)}
_VERB_OF = {alias: verb for verb, aliases in VERBS.items() for alias in aliases}


def register(sub: argparse._SubParsersAction, verb: str | None = None) -> None:
    """`container` and its verbs; only `verb`'s parser when given and known (a word that is no
    verb, or none, builds them all: help and the invalid-choice error list every verb)."""
    p = sub.add_parser("container", help="manage single containers (like docker container)")
    csub = p.add_subparsers(dest="container_command", metavar="COMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])
    wanted = (_VERB_OF[verb],) if verb in _VERB_OF else tuple(VERBS)
    for name in wanted:
        if name in _ADD:
            _ADD[name](csub)
        else:
            from composer.cli import container_ops  # not on the run/create/start path

            container_ops.ADD[name](csub)


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


_ADD = {"run": _add_run, "create": _add_create, "start": _add_start}


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
    p.add_argument("--device", action="append", default=[], metavar="HOST[:CONTAINER][:PERMISSIONS]")
    p.add_argument("--device-cgroup-rule", action="append", default=[], metavar="'c MAJOR:MINOR rwm'")
    p.add_argument("--cgroupns", choices=("host", "private"), default="",
                   help="cgroup namespace (default: private on cgroup v2, host on v1, as docker)")
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
        rt.prepare(spawning=True)  # first: the launcher must fork while we are single-threaded
    return rt


def _spec(args, rt):
    import dataclasses
    import os

    from composer.images.store import ImageStore
    from composer.service import runspec

    image = ImageStore(rt.data_dir).resolve(args.image)
    opts = runspec.RunOptions(
        image=args.image, command=tuple(args.command), name=args.name, env=tuple(args.env),
        volumes=tuple(args.volume), workdir=args.workdir, user=args.user, hostname=args.hostname,
        memory=args.memory, cpus=args.cpus, pids_limit=args.pids_limit, network=args.network,
        entrypoint=args.entrypoint, init=args.init, rm=args.rm, labels=tuple(args.label),
        publish=tuple(args.publish), read_only=args.read_only, cap_add=tuple(args.cap_add),
        cap_drop=tuple(args.cap_drop), cgroupns=args.cgroupns, devices=tuple(args.device),
        device_cgroup_rules=tuple(args.device_cgroup_rule), security_opt=tuple(args.security_opt))
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
    from composer.service.names import with_free_name

    rt = _runtime()
    info = with_free_name(_spec(args, rt), rt.create, generated=args.name is None)
    print(info.id)
    return 0


def cmd_run(args) -> int:
    rt = _runtime(prepare=True)
    rt.settle_links = False  # we exit right after: a --rm's veths go on their own (Runtime.remove)
    from composer.service.names import with_free_name

    spec = _spec(args, rt)
    generated = args.name is None
    if args.detach:
        info = with_free_name(spec, rt.run, generated=generated)
        print(info.id)
        return 0
    return attach_and_wait(rt, lambda: with_free_name(spec, lambda s: rt.run(s, attach_stdio=True), generated=generated),
                           tty=spec.tty, interactive=spec.stdin_open)


def attach_and_wait(rt, start, *, tty: bool = False, interactive: bool = False) -> int:
    """start() (a runtime start with attach_stdio=True), then wait for the exit: the container's
    exit code (125 if none). Also `composer run`'s attached mode. With a tty the container's
    monitor copies between our terminal and the pty; we hold the terminal in raw mode (when
    stdin is attached, as docker) and pass window size changes on (SIGWINCH to the monitor)."""
    import contextlib
    import os

    from composer.runtime.monitor import tty as rtty

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
