"""`composer up`: converge, then (unless -d) attach to the combined log stream until every container
has exited, following docker compose v2's rules for --abort-on-container-exit/-failure,
--exit-code-from, --attach/--no-attach and Ctrl-C (graceful stop, a second Ctrl-C kills)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from composer.cli.project_common import (
    Ctx, check_services, colour_enabled, context, load_model, parse_scale, project_busy, run_with_progress,
    service_names, sources,
)
from composer.errors import Interrupted, UsageError

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
    if args.detach and (args.attach or args.no_attach):
        raise UsageError("--attach and --no-attach need attached mode (no -d)")


def cmd_up(args: argparse.Namespace) -> int:
    from composer.project.project import UpOptions

    _validate(args)
    model = load_model(args, args.services)
    check_services(model, [*args.services, *args.attach, *args.no_attach,
                           *([args.exit_code_from] if args.exit_code_from else [])])
    opts = UpOptions(services=tuple(args.services), no_deps=args.no_deps, force_recreate=args.force_recreate,
                     no_recreate=args.no_recreate, no_start=args.no_start, remove_orphans=args.remove_orphans,
                     scale=parse_scale(args.scale), timeout=args.timeout,
                     renew_anon_volumes=args.renew_anon_volumes, always_recreate_deps=args.always_recreate_deps)
    ctx = context(args, model, model.name, prepare=True)
    from composer.cli.stack_images import ensure_images

    # build what has `build:` and no image yet (all of them with --build), pull what is missing
    ensure_images(model, ctx.runtime, build=args.build, no_build=args.no_build, quiet=args.progress == "quiet")
    since = time.time()
    try:
        infos = run_with_progress(ctx, args, lambda: ctx.runner.up(opts))
    except (KeyboardInterrupt, Interrupted):
        # Ctrl-C while starting: stop what already started, as compose does
        sys.stderr.write(GRACEFUL + "\n")
        return _stop_all(ctx, args, tuple(args.services))
    if getattr(args, "wait", False) and not args.no_start:
        upped = tuple(sorted({i.label("composer.service", "") for i in infos or ()}))
        run_with_progress(ctx, args, lambda: ctx.runner.wait_ready(upped, args.wait_timeout), "Waiting")
        return 0
    if args.detach or args.no_start:
        return 0
    return _attach(ctx, args, list(infos or ()), since)


def _attached_services(ctx: Ctx, args: argparse.Namespace, infos: list[Any]) -> set[str]:
    started = {i.label("composer.service", "") for i in infos}
    if args.attach:
        chosen = set(args.attach)
    elif args.services:
        chosen = set(args.services)  # compose attaches to the named services, not their dependencies
    else:
        chosen = started
    return chosen - set(args.no_attach)


def _attach(ctx: Ctx, args: argparse.Namespace, infos: list[Any], since: float) -> int:
    from composer.ui.logmux import LogMux, LogOptions, LogPrinter, colour_map

    project = ctx.name
    watched = _attached_services(ctx, args, infos)
    followed = [i for i in infos if i.label("composer.service", "") in watched]
    # containers started by this `up` are announced when they exit, even if they already have
    srcs = sources(followed, project, running=True)
    opts = LogOptions(follow=True, since=since - 1.0, colour=colour_enabled(args), prefix=not args.no_log_prefix)
    printer = LogPrinter(sys.stdout, opts, colour_map(service_names(ctx, infos)), (s.name for s in srcs))
    if srcs:
        printer.notice("Attaching to " + ", ".join(s.name for s in srcs))
    services = tuple(sorted({i.label("composer.service", "") for i in infos}))
    waited_on = _completion_dependencies(ctx.model)
    outcome: dict[str, Any] = {}

    def on_exit(src, code) -> bool:
        if src.service in waited_on and code == 0:
            return False  # a one-shot that others wait for is meant to end: never an abort
        if args.abort_on_container_exit or (args.abort_on_container_failure and code not in (0, None)):
            outcome.setdefault("first", (src, code))
            return True
        return False

    def discover():
        if not watched:
            return []  # an empty filter would mean every service
        found = ctx.runner.containers(tuple(sorted(watched)), all=False)
        return sources(found, project)

    mux = LogMux(ctx.runtime, printer, on_exit=on_exit, discover=discover, busy=project_busy(ctx.runtime, project))
    for s in srcs:
        mux.add(s, from_start=True)
    try:
        mux.run()
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.stderr.write(GRACEFUL + "\n")
        _stop_all(ctx, args, services)
        return 130
    if "first" in outcome:
        sys.stdout.flush()
        sys.stderr.write("Aborting on container exit...\n")
        _stop_all(ctx, args, services)
    return _exit_code(ctx, args, outcome, mux)


def _exit_code(ctx: Ctx, args: argparse.Namespace, outcome: dict, mux: Any) -> int:
    if args.exit_code_from:
        for info in ctx.runner.containers((args.exit_code_from,), all=True):
            return int(info.exit_code or 0)
        return 0
    if "first" in outcome:
        _, code = outcome["first"]
        return int(code or 0)
    if args.abort_on_container_failure:
        return max((int(c or 0) for c in mux.exit_codes.values()), default=0)
    return 0


def _completion_dependencies(model: Any) -> set[str]:
    """Services some other service waits for with condition service_completed_successfully."""
    out: set[str] = set()
    if model is None:
        return out
    for svc in model.services.values():
        for dep, cond in svc.depends_on.items():
            if getattr(cond, "condition", "") == "service_completed_successfully":
                out.add(dep)
    return out


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
