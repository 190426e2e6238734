"""`composer watch` and `up --watch`: parse, one library call (composer.watch's WatchSession), and
the events rendered one line each: `app  synced 2 files (./app/src → /app/src) in 14 ms`."""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from composer.cli.project_common import Ctx, check_services, context, load_model

# the runner's events worth a line while watching (its start/stop chatter is not)
_SHOWN = {"Created", "Recreated", "Removed", "Error", "Restarting", "Built"}


class Printer:
    """WatchEvents and the runner's notable events as plain lines (stdout; warnings and errors on
    stderr), one writer at a time: the watch thread and the log stream share the terminal."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.lock = threading.Lock()

    def watch_event(self, event: Any) -> None:
        head = f"{event.service:<12} " if event.service else ""
        if event.level in ("error", "warning"):
            self._write(sys.stderr, f"{head}{event.level}: {event.text}")
        elif not self.quiet or event.level == "info":
            self._write(sys.stdout, f"{head}{event.text}")

    def runner_event(self, event: Any) -> None:
        if self.quiet or getattr(event, "action", None) not in _SHOWN:
            return
        detail = f" ({event.detail})" if getattr(event, "detail", "") else ""
        self._write(sys.stdout, f" {event.kind.capitalize()} {event.name}  {event.action}{detail}")

    def _write(self, stream: Any, line: str) -> None:
        with self.lock:
            stream.write(line + "\n")
            stream.flush()


def session_for(ctx: Ctx, args: argparse.Namespace, printer: Printer, *, services: tuple[str, ...],
                no_up: bool, up_opts: Any = None) -> Any:
    from composer.cli.projectopts import load_project_from_args
    from composer.project.project import ProjectRunner, UpOptions
    from composer.watch.session import WatchOptions, WatchSession

    def make_runner(model):
        return ProjectRunner(model, name=model.name, runtime=ctx.runtime, on_event=ctx.sink, on_image=ctx.sink.image)

    opts = WatchOptions(services=services, no_up=no_up, prune=getattr(args, "prune", True),
                        verbose=getattr(args, "verbose", False), env_files=tuple(args.env_files or ()),
                        up=up_opts or UpOptions(services=services))
    return WatchSession(ctx.runner, load=lambda: load_project_from_args(args, services), make_runner=make_runner,
                        on_event=printer.watch_event, opts=opts)


def cmd_watch(args: argparse.Namespace) -> int:
    model = load_model(args, args.services)
    check_services(model, args.services)
    ctx = context(args, model, model.name, prepare=True)
    printer = Printer(quiet=args.quiet)
    ctx.sink.target = printer.runner_event
    session = session_for(ctx, args, printer, services=tuple(args.services), no_up=args.no_up)
    try:
        session.start()
        printer.watch_event(_watching(session))
        session.run()
    except KeyboardInterrupt:
        pass  # Ctrl-C ends watching; the stack stays up
    finally:
        session.stop()
        session.close()
    return 0


def _watching(session: Any) -> Any:
    from composer.watch.session import WatchEvent

    n = len(session.rules)
    return WatchEvent("", f"watching {n} rule{'' if n == 1 else 's'} ({session.watches} inotify watches); "
                          "Ctrl+C stops watching", "info")


def start_beside_up(ctx: Ctx, args: argparse.Namespace, up_opts: Any) -> Any:
    """`up --watch`: the session in a thread of its own while the logs are followed; returns it
    (stop() it when the logs end)."""
    printer = Printer()
    ctx.sink.target = printer.runner_event
    session = session_for(ctx, args, printer, services=tuple(args.services), no_up=True, up_opts=up_opts)
    session.start()
    printer.watch_event(_watching(session))
    threading.Thread(target=session.run, name="watch", daemon=True).start()
    return session
