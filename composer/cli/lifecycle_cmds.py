"""The compose verbs of a service's lifecycle beyond up/down: run (one-off containers), scale,
pause, unpause, wait, events. Registered by project_cmds; handlers import what they use."""

from __future__ import annotations

import argparse
import json
import os
import sys

from composer.cli.project_common import (
    add_dry_run, check_services, context, dry_run, load_model, load_optional, parse_scale, pull_flags, pull_mode,
    run_dry, run_with_progress,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a one-off command on a service")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background, print the name")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--name", help="container name (default <project>-<service>-run-<id>)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VAL")
    p.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VAL")
    p.add_argument("--entrypoint", metavar="CMD", help="override the entrypoint")
    p.add_argument("--no-deps", action="store_true", help="don't start the service's dependencies")
    p.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true", help="no pseudo-terminal")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="keep stdin attached (the default, as docker compose)")
    p.add_argument("-p", "--publish", action="append", default=[], metavar="[IP:]HOST:CONTAINER")
    p.add_argument("-P", "--service-ports", action="store_true", help="publish the service's ports")
    p.add_argument("-v", "--volume", action="append", default=[], metavar="SRC:DST[:ro]")
    p.add_argument("-w", "--workdir", metavar="DIR")
    p.add_argument("-u", "--user", metavar="USER")
    p.add_argument("--use-aliases", action="store_true", help="keep the service's network aliases")
    p.add_argument("--build", action="store_true", help="build the image first")
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP", help="add a Linux capability")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP", help="drop a Linux capability")
    pull_flags(p)
    p.add_argument("--remove-orphans", action="store_true", help="remove containers of services not in the file")
    add_dry_run(p)
    p.add_argument("service", metavar="SERVICE")
    p.add_argument("cmd_argv", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("scale", help="set the number of containers of services")
    p.add_argument("--no-deps", action="store_true", help="don't start linked services")
    add_dry_run(p)
    p.add_argument("pairs", nargs="+", metavar="SERVICE=REPLICAS")
    p.set_defaults(func=cmd_scale)

    for verb, helptext in (("pause", "pause the services' containers"),
                           ("unpause", "unpause the services' containers")):
        p = sub.add_parser(verb, help=helptext)
        add_dry_run(p)
        p.add_argument("services", nargs="*", metavar="SERVICE")
        p.set_defaults(func=cmd_pause if verb == "pause" else cmd_unpause)

    p = sub.add_parser("wait", help="block until the first container of the services stops; its exit code")
    p.add_argument("--down-project", action="store_true", help="then take the project down")
    p.add_argument("services", nargs="+", metavar="SERVICE")
    p.set_defaults(func=cmd_wait)

    p = sub.add_parser("events", help="stream the containers' events")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--since", metavar="TIME", help="also the recorded events since TIME (timestamp or duration: 10m)")
    p.add_argument("--until", metavar="TIME", help="stop at TIME (timestamp or duration: 10m before now)")
    p.add_argument("services", nargs="*", metavar="SERVICE")
    p.set_defaults(func=cmd_events)


def cmd_run(args: argparse.Namespace) -> int:
    from composer.cli.container_cmds import attach_and_wait
    from composer.project.oneoff import OneOffOptions
    from composer.service import runspec

    model = load_model(args, [args.service])
    check_services(model, [args.service])
    command = args.cmd_argv[1:] if args.cmd_argv[:1] == ["--"] else args.cmd_argv
    opts = OneOffOptions(
        service=args.service, command=tuple(command), entrypoint=args.entrypoint,
        env=tuple(runspec.parse_env(tuple(args.env), os.environ)),
        volumes=tuple(runspec.parse_volume(v, os.getcwd()) for v in args.volume),
        workdir=args.workdir, user=args.user, name=args.name, labels=tuple(runspec.parse_labels(tuple(args.label))),
        publish=tuple(runspec.parse_publish(p) for p in args.publish), service_ports=args.service_ports,
        use_aliases=args.use_aliases, no_deps=args.no_deps, rm=args.rm, no_tty=args.no_tty,
        tty=not args.no_tty and sys.stdin.isatty(), stdin_open=True,  # compose: -i default, tty auto-detected
        build=args.build, cap_add=tuple(_caps(args.cap_add)), cap_drop=tuple(_caps(args.cap_drop)),
        pull=pull_mode(args.pull), remove_orphans=args.remove_orphans, dry_run=dry_run(args))
    if opts.dry_run:
        ctx = context(args, model, model.name)
        return run_dry(ctx, lambda: ctx.runner.create_oneoff(opts))
    ctx = context(args, model, model.name, prepare=True)
    info = run_with_progress(ctx, args, lambda: ctx.runner.create_oneoff(opts), images=True,
                             quiet_pull=args.quiet_pull)
    if args.detach:
        ctx.runner.start_oneoff(info)
        print(info.name)
        return 0
    sys.stdout.flush()
    return attach_and_wait(ctx.runtime, lambda: ctx.runner.start_oneoff(info, attach=True), tty=info.spec.tty,
                           interactive=info.spec.stdin_open)


def cmd_scale(args: argparse.Namespace) -> int:
    from composer.project.project import UpOptions

    scale = parse_scale(args.pairs)
    services = [name for name, _ in scale]
    model = load_model(args, services)
    check_services(model, services)
    opts = UpOptions(services=tuple(services), no_deps=args.no_deps, scale=scale, dry_run=dry_run(args))
    ctx = context(args, model, model.name, prepare=not opts.dry_run)
    if opts.dry_run:
        return run_dry(ctx, lambda: ctx.runner.up(opts))
    run_with_progress(ctx, args, lambda: ctx.runner.up(opts), images=True)
    return 0


def _caps(values: list[str]) -> list[str]:
    """--cap-add A,B and repeated --cap-add (docker's list flag takes both)."""
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


def _verb(args: argparse.Namespace, call, title: str = "Running") -> int:
    """call(ctx, **kw): the verb's one library call; a dry run passes dry_run=True and prints the plan."""
    model, name = load_optional(args, args.services)
    check_services(model, args.services)
    ctx = context(args, model, name)
    if dry_run(args):
        return run_dry(ctx, lambda: call(ctx, dry_run=True))
    return run_with_progress(ctx, args, lambda: call(ctx), title) or 0


def cmd_pause(args: argparse.Namespace) -> int:
    return _verb(args, lambda ctx, **kw: ctx.runner.pause(tuple(args.services), True, **kw))


def cmd_unpause(args: argparse.Namespace) -> int:
    return _verb(args, lambda ctx, **kw: ctx.runner.pause(tuple(args.services), False, **kw))


def cmd_wait(args: argparse.Namespace) -> int:
    from composer.project.project import DownOptions

    model, name = load_optional(args, args.services)
    check_services(model, args.services)
    ctx = context(args, model, name)
    try:
        info = ctx.runner.wait_first(tuple(args.services))
    except KeyboardInterrupt:
        return 130
    code = info.exit_code if info.exit_code is not None else 255
    print(code)
    if args.down_project:
        run_with_progress(ctx, args, lambda: ctx.runner.down(DownOptions()))
    return code


def cmd_events(args: argparse.Namespace) -> int:
    from composer.cli.project_common import name_only
    from composer.errors import UsageError
    from composer.project.events import follow, parse_time
    from composer.runtime import Runtime

    bounds = {}
    for flag in ("since", "until"):
        if getattr(args, flag) is not None:
            try:
                bounds[flag] = parse_time(getattr(args, flag))
            except ValueError as err:
                raise UsageError(f"invalid --{flag} value: {err}") from None
    model, name = name_only(args)
    check_services(model, args.services)
    try:
        for ev in follow(Runtime(), name, tuple(args.services), **bounds):
            sys.stdout.write((json.dumps(ev.to_json()) if args.json else ev.to_text()) + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    return 0
