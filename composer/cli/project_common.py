"""What every project verb needs: the project (model or just its name), a ProjectRunner wired to a
progress display, colour decisions, and log sources. Imports are lazy: `ps` and `exec` stay light."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every `ps`)
if TYPE_CHECKING:
    from typing import Any, Callable, Sequence

from composer.errors import ComposerError, NotFoundError


@dataclass
class Ctx:
    """The loaded project (or None when only its name is known) and the runtime to reach it with."""

    model: Any  # config.Project | None
    name: str
    runtime: Any
    sink: "EventSink"
    runner: Any


class EventSink:
    """The runner's on_event: forwards to whichever display is current (up, then the stop after Ctrl-C);
    `image` is its on_image (build and pull progress). `seen`: an event about the project came."""

    def __init__(self) -> None:
        self.target: Callable[[Any], None] | None = None
        self.image_target: Callable[[Any], None] | None = None
        self.seen: float | None = None  # when the first event about the project came

    def __call__(self, event: Any) -> None:
        if self.seen is None:
            import time

            self.seen = time.time()
        if self.target is not None:
            self.target(event)

    def image(self, event: Any) -> None:
        if self.image_target is not None:
            self.image_target(event)


class _Staged:
    """The project display of a verb that prepares images first (up, run, scale): build lines and
    pull bars are drawn until the first project event, then they close and the display opens (two
    live displays cannot share the terminal)."""

    def __init__(self, display: Any, images: Any) -> None:
        import threading

        self.display, self.images = display, images
        self.lock = threading.Lock()
        self.opened = False

    def __call__(self, event: Any) -> None:
        if not self.opened:
            with self.lock:
                if not self.opened:
                    self.images.close()
                    self.display.__enter__()
                    self.opened = True
        self.display(event)

    def close(self) -> None:
        self.images.close()
        if self.opened:
            self.display.__exit__(None, None, None)


def load_model(args: argparse.Namespace, services: Sequence[str] = ()) -> Any:
    from composer.cli.projectopts import load_project_from_args

    return load_project_from_args(args, services)


def load_optional(args: argparse.Namespace, services: Sequence[str] = ()) -> tuple[Any, str]:
    """(model, name). With -p and no stack file, compose still works on the name alone."""
    if args.project_name and not args.files and _no_stack_file_here(args):
        return None, _normal_name(args.project_name)
    model = load_model(args, services)
    return model, model.name


def name_only(args: argparse.Namespace) -> tuple[Any, str]:
    """For read-only verbs (ps, logs, port, exec): the project's name without loading the model when
    that is certain (loading costs ~100 ms of imports and parsing); the full load otherwise."""
    if args.project_name:
        return None, _normal_name(args.project_name)
    from composer.stackfiles import fast_project_name

    name = fast_project_name(args.files, args.project_directory, args.env_files, os.environ)
    if name:
        return None, name
    return load_optional(args)


def _normal_name(name: str) -> str:
    from composer.errors import UsageError
    from composer.stackfiles import PROJECT_NAME_RULE, valid_project_name

    name = name.lower()
    if not valid_project_name(name):
        raise UsageError(f"invalid project name {name[:80]!r}: {PROJECT_NAME_RULE}")
    return name


def _no_stack_file_here(args: argparse.Namespace) -> bool:
    from composer.stackfiles import find_stack_files as discover

    return discover(os.path.abspath(args.project_directory or os.getcwd())) is None


def check_services(model: Any, services: Sequence[str]) -> None:
    if model is None:
        return
    for s in services:
        if s not in model.services:
            if s in getattr(model, "disabled_services", {}):
                raise NotFoundError(f"service {s!r} is not enabled by the active profiles")
            raise NotFoundError(f"no such service: {s}")


def context(args: argparse.Namespace, model: Any, name: str, *, prepare: bool = False) -> Ctx:
    """A runner for the project. prepare=True forks the runtime's launcher now, before any thread
    (rich's live display, parallel starts) exists: containers must be set up single-threaded."""
    from composer.project.project import ProjectRunner
    from composer.runtime import Runtime

    runtime = Runtime()
    if prepare:
        runtime.prepare()
    sink = EventSink()
    runner = ProjectRunner(model, name=name, runtime=runtime, on_event=sink, on_image=sink.image)
    return Ctx(model, name, runtime, sink, runner)


def progress(args: argparse.Namespace, title: str = "Running") -> Any:
    from composer.ui.progress import make_progress

    return make_progress(getattr(args, "progress", "auto"), getattr(args, "ansi", "auto"), sys.stderr, title)


def add_dry_run(p: Any) -> None:
    """`VERB --dry-run`, the global flag's other place (docker compose takes both); SUPPRESS keeps
    the subparser's default from overwriting a `--dry-run` given before the verb."""
    p.add_argument("--dry-run", dest="dry_run", action="store_true", default=argparse.SUPPRESS,
                   help="print what would change, change nothing")


def dry_run(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "dry_run", False))


class PlanPrinter:
    """Renders a dry run's events: each planned step as one line on stdout, in docker compose's
    words (`DRY-RUN MODE -  Container demo-web-1  Recreate: configuration changed: environment`);
    warnings go to stderr."""

    def __init__(self, out: Any = None, err: Any = None) -> None:
        self.out = sys.stdout if out is None else out
        self.err = sys.stderr if err is None else err
        self.count = 0

    def __call__(self, event: Any) -> None:
        if getattr(event, "planned", False):
            self.count += 1
            detail = f": {event.detail}" if event.detail else ""
            self.out.write(f"DRY-RUN MODE -  {event.kind.capitalize()} {event.name}  {event.action}{detail}\n")
            self.out.flush()
        elif event.action in ("Warning", "Error"):
            self.err.write(f"DRY-RUN MODE -  {event.action}: {event.detail or event.name}\n")
            self.err.flush()

    def done(self) -> None:
        if not self.count:
            self.out.write("DRY-RUN MODE -  nothing to do\n")


def run_dry(ctx: Ctx, fn: Callable[[], Any]) -> int:
    """fn() (a library call with dry_run set) with its planned events printed."""
    printer = PlanPrinter()
    ctx.sink.target = ctx.sink.image_target = printer
    try:
        fn()
    finally:
        ctx.sink.target = ctx.sink.image_target = None
    printer.done()
    return 0


def pull_flags(p) -> None:
    """up's (and run's) --pull and --quiet-pull."""
    p.add_argument("--pull", choices=("always", "missing", "never", "build", "policy"), default="policy",
                   help="pull images before running: always, missing, never, build (default: each "
                        "service's pull_policy)")
    p.add_argument("--quiet-pull", action="store_true", help="pull without printing progress")


def pull_mode(flag: str) -> str:
    """`--pull` as the library's UpOptions.pull: compose's default "policy" is each service's
    pull_policy (missing unless the file says otherwise), which the library calls "missing"."""
    return "missing" if flag == "policy" else flag


def run_with_progress(ctx: Ctx, args: argparse.Namespace, fn: Callable[[], Any], title: str = "Running", *,
                      images: bool = False, quiet_pull: bool = False) -> Any:
    """fn() with the runner's events on the progress display. images: fn prepares images first
    (up, run, scale): their progress is drawn before the display opens (quiet_pull: pulls without
    their progress bars)."""
    if not images:
        with progress(args, title) as display:
            ctx.sink.target = display
            try:
                return fn()
            finally:
                ctx.sink.target = None
    from composer.cli.stack_images import ImageProgress

    quiet = getattr(args, "progress", "auto") == "quiet"
    staged = _Staged(progress(args, title), ImageProgress(quiet=quiet, quiet_pull=quiet_pull))
    ctx.sink.target, ctx.sink.image_target = staged, staged.images
    try:
        return fn()
    finally:
        ctx.sink.target = ctx.sink.image_target = None
        staged.close()


def colour_enabled(args: argparse.Namespace, stream: Any = None) -> bool:
    if getattr(args, "no_color", False) or args.ansi == "never" or os.environ.get("NO_COLOR"):
        return False
    if args.ansi == "always":
        return True
    stream = sys.stdout if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def sources(infos: Sequence[Any], project: str, *, running: bool | None = None) -> list[Any]:
    from composer.ui.logmux import Source, display_name

    return [Source(i.id, display_name(i.name, i.label("composer.project", project) or project),
                   i.label("composer.service", "") or i.name, i.running if running is None else running)
            for i in infos]


def service_names(ctx: Ctx, infos: Sequence[Any]) -> list[str]:
    if ctx.model is not None:
        return list(ctx.model.services)
    return sorted({i.label("composer.service", "") or i.name for i in infos})


def parse_timeout(value: str) -> float:
    try:
        t = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid timeout {value!r}: seconds expected") from None
    if t < 0:
        raise argparse.ArgumentTypeError("timeout must not be negative")
    return t


def parse_scale(items: Sequence[str]) -> tuple[tuple[str, int], ...]:
    from composer.errors import UsageError

    out = []
    for item in items:
        name, eq, n = item.partition("=")
        if not eq or not name or not n.isdigit():
            raise UsageError(f"invalid --scale {item!r}: expected SERVICE=NUMBER")
        out.append((name, int(n)))
    return tuple(out)


def fail(message: str) -> ComposerError:
    return ComposerError(message)


@dataclass
class Query:
    """Read-only access for ps/logs/port/exec straight through the runtime's files: no ProjectRunner
    (whose graph library alone costs ~150 ms of imports), so these verbs start fast."""

    model: Any
    name: str
    runtime: Any

    def containers(self, services: Sequence[str] = (), all: bool = False, oneoff: bool = False) -> list[Any]:
        from composer.service.links import L_ONEOFF, L_PROJECT, L_SERVICE

        infos = self.runtime.list(all=all, labels={L_PROJECT: self.name})
        return [i for i in infos if (i.label(L_ONEOFF) == "True") == oneoff
                and (not services or i.label(L_SERVICE) in services)]

    def container_for(self, service: str, index: int = 1) -> Any:
        from composer.service.links import L_NUMBER

        for info in self.containers((service,), all=True):
            if info.label(L_NUMBER) == str(index):
                return info
        if index != 1 and self.containers((service,), all=True):
            raise NotFoundError(f"service {service!r} has no container with index {index}")
        raise NotFoundError(f"service {service!r} has no container in project {self.name!r}",
                            hint="is it running? `composer ps -a` lists what there is")


def query(args: argparse.Namespace, services: Sequence[str] = ()) -> Query:
    from composer.runtime import Runtime

    model, name = name_only(args)
    if services and model is None and not (args.project_name and not args.files and _no_stack_file_here(args)):
        model, name = load_optional(args)  # services named: the stack file says whether they exist
    check_services(model, services)
    return Query(model, name, Runtime())


def project_busy(runtime: Any, name: str) -> Callable[[], bool]:
    """True while a mutating command holds the project's lock (ProjectRunner's flock on
    $STATE/projects/NAME.lock): a follower then waits for the containers being (re)created."""
    import fcntl

    path = os.path.join(runtime.state_dir, "projects", f"{name}.lock")

    def busy() -> bool:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    return busy
