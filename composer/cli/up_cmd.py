"""`composer up`: one library call (ProjectRunner.up: images prepared, stack converged), then (unless
-d) the combined log stream until every container has exited. What to follow, when to abort and the
exit code are the library's (project/attach.py: docker compose v2's rules for --attach/--no-attach,
--abort-on-container-exit/-failure, --exit-code-from); here: the log display and Ctrl-C (graceful
stop, a second Ctrl-C kills)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from composer.cli.project_common import (
    Ctx, check_services, colour_enabled, context, dry_run, load_model, parse_scale, project_busy, pull_mode, run_dry,
    run_with_progress, service_names, sources,
)
from composer.errors import Interrupted, UsageError
from composer.startup import stop_warming

GRACEFUL = "Gracefully stopping... (press Ctrl+C again to force)"


def _validate(args: argparse.Namespace) -> None:
    if getattr(args, "wait", False):
        args.detach = True  # as compose: --wait implies -d
    if args.exit_code_from:
        args.abort_on_container_exit = True
    aborting = args.abort_on_container_exit or args.abort_on_container_failure
    if args.detach and aborting:
        raise UsageError("--abort-on-container-exit and --detach are incompatible")
    if args.abort_on_container_exit and args.abort_on_container_failure:
        raise UsageError("--abort-on-container-exit and --abort-on-container-failure are incompatible")
    if args.force_recreate and args.no_recreate:
        raise UsageError("--force-recreate and --no-recreate are incompatible")
    if getattr(args, "watch", False) and args.detach:
        raise UsageError("--watch and --detach are incompatible: watching follows the logs")
    if args.detach and (args.attach or args.no_attach):
        raise UsageError("--attach and --no-attach need attached mode (no -d)")
    if args.attach and args.attach_dependencies:
        raise UsageError("--attach and --attach-dependencies are incompatible")
    if args.build and args.no_build:
        raise UsageError("--build and --no-build are incompatible")


def cmd_up(args: argparse.Namespace) -> int:
    from composer.project.project import UpOptions

    _validate(args)
    model = load_model(args, args.services)
    check_services(model, [*args.services, *args.attach, *args.no_attach,
                           *([args.exit_code_from] if args.exit_code_from else [])])
    opts = UpOptions(services=tuple(args.services), no_deps=args.no_deps, force_recreate=args.force_recreate,
                     no_recreate=args.no_recreate, no_start=args.no_start, remove_orphans=args.remove_orphans,
                     scale=parse_scale(args.scale), timeout=args.timeout,
                     renew_anon_volumes=args.renew_anon_volumes, always_recreate_deps=args.always_recreate_deps,
                     build=args.build, no_build=args.no_build, pull=pull_mode(args.pull), dry_run=dry_run(args))
    ctx = context(args, model, model.name, prepare=not opts.dry_run)
    if opts.dry_run:
        return run_dry(ctx, lambda: ctx.runner.up(opts))
    if getattr(args, "watch", False):  # no rules: refused before anything starts
        from composer.watch.session import WatchSession

        WatchSession.check_model(model, tuple(args.services))
    try:
        infos = run_with_progress(ctx, args, lambda: ctx.runner.up(opts), images=True,
                                  quiet_pull=args.quiet_pull)
    except (KeyboardInterrupt, Interrupted):
        if ctx.sink.seen is None:
            raise  # while building or pulling: nothing of this up has started
        # Ctrl-C while starting: stop what already started, as compose does
        sys.stderr.write(GRACEFUL + "\n")
        return _stop_all(ctx, args, tuple(args.services))
    stop_warming()  # up has started what it starts: no cgroup move left to warm for (composer/startup.py)
    if getattr(args, "wait", False) and not args.no_start:
        upped = tuple(sorted({i.label("composer.service", "") for i in infos or ()}))
        run_with_progress(ctx, args, lambda: ctx.runner.wait_ready(upped, args.wait_timeout), "Waiting")
        return 0
    if args.detach or args.no_start:
        return 0
    session = None
    if getattr(args, "watch", False):
        from composer.cli.watch_cmd import start_beside_up

        session = start_beside_up(ctx, args, opts)
    # logs since this up began converging (not since its builds and pulls began)
    try:
        return _attach(ctx, args, list(infos or ()), ctx.sink.seen or time.time(), session=session)
    finally:
        if session is not None:
            session.stop()


def _attach(ctx: Ctx, args: argparse.Namespace, infos: list[Any], since: float, session: Any = None) -> int:
    """session: up --watch's WatchSession; stopped before the stack is (no action starts meanwhile),
    and when it has reloaded the stack, the plan is the reloaded runner's: services the reload
    added are followed, and stopped by Ctrl-C, as if this up had started them."""
    from composer.project.attach import AttachOptions
    from composer.ui.logmux import LogMux, LogOptions, LogPrinter, colour_map

    project = ctx.name
    attach_opts = AttachOptions(
        services=tuple(args.services), attach=tuple(args.attach), no_attach=tuple(args.no_attach),
        abort_on_container_exit=args.abort_on_container_exit,
        abort_on_container_failure=args.abort_on_container_failure, exit_code_from=args.exit_code_from,
        attach_dependencies=args.attach_dependencies)
    plan = ctx.runner.attach_plan(infos, attach_opts)

    def current() -> Any:
        nonlocal plan
        if session is not None and session.runner is not ctx.runner:  # reloaded
            ctx.runner = session.runner
            plan = ctx.runner.attach_plan(ctx.runner.containers(), attach_opts)
        return plan

    before_stop = session.stop if session is not None else None
    followed = [i for i in infos if plan.follows(i)]
    # containers started by this `up` are announced when they exit, even if they already have
    srcs = sources(followed, project, running=True)
    opts = LogOptions(follow=True, since=since - 1.0, colour=colour_enabled(args), prefix=not args.no_log_prefix,
                      timestamps=args.timestamps)
    printer = LogPrinter(sys.stdout, opts, colour_map(service_names(ctx, infos)), (s.name for s in srcs))
    if srcs:
        printer.notice("Attaching to " + ", ".join(s.name for s in srcs))
    outcome: dict[str, Any] = {}

    def on_exit(src, code) -> bool:
        if current().aborts(src.service, code):
            outcome.setdefault("first", (code,))
            return True
        return False

    def discover():
        followed = current().followed
        if not followed:
            return []  # an empty filter would mean every service
        found = ctx.runner.containers(tuple(sorted(followed)), all=False)
        return sources(found, project)

    mux = LogMux(ctx.runtime, printer, on_exit=on_exit, discover=discover, busy=project_busy(ctx.runtime, project))
    for s in srcs:
        mux.add(s, from_start=True)
    try:
        mux.run()
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.stderr.write(GRACEFUL + "\n")
        if before_stop is not None:
            before_stop()
        _stop_all(ctx, args, current().stop)
        return 130
    if "first" in outcome:
        sys.stdout.flush()
        sys.stderr.write("Aborting on container exit...\n")
        if before_stop is not None:
            before_stop()
        _stop_all(ctx, args, current().stop)
    return ctx.runner.exit_code(current(), outcome.get("first"), list(mux.exit_codes.values()))


def _stop_all(ctx: Ctx, args: argparse.Namespace, services: tuple[str, ...]) -> int:
    """Stop with the usual grace period. A second Ctrl-C kills what is still running: from a helper
    thread, since the signal arrives while the runner's stop threads hold container locks; a third
    Ctrl-C leaves at once."""
    import threading

    presses = 0

    def kill_rest() -> None:
        for info in ctx.runner.containers(services):
            try:
                ctx.runtime.kill(info.id, int(signal.SIGKILL))
            except Exception:  # noqa: BLE001 - it may have stopped meanwhile
                pass

    def on_sigint(signum: int, frame: Any) -> None:
        nonlocal presses
        presses += 1
        if presses > 1:
            raise KeyboardInterrupt
        sys.stderr.write("Killing...\n")
        threading.Thread(target=kill_rest, name="kill", daemon=True).start()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        run_with_progress(ctx, args, lambda: ctx.runner.stop(services, args.timeout), "Stopping")
    except (KeyboardInterrupt, Interrupted):
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
    return 130
