"""Entry point: builds the parser from the command modules, runs the handler, and is the one place
that turns errors into messages and exit codes."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from typing import Callable, Sequence

# Global options that take a value (so the command word can be found without a full parse).
_VALUE_OPTS = {"-f", "--file", "-p", "--project-name", "--project-directory", "--env-file",
               "--profile", "--ansi", "--progress"}


# Commands that move new containers into cgroups: they warm the kernel's cgroup-move path first
# (composer/startup.py). Not `exec`: it forks to enter a container and wants a CLI without threads.
_STARTING = {"up", "start", "restart", "run", "scale", "container run", "container start", "container restart"}


def _starts_containers(argv: Sequence[str], command: str | None) -> bool:
    if command == "container":
        command = f"container {container_verb(argv) or ''}"
    return command in _STARTING


def container_verb(argv: Sequence[str]) -> str | None:
    """The word after `container` (its only option is -h, which takes no value); None after -h,
    whose help lists every verb."""
    rest = list(argv)[list(argv).index("container") + 1:] if "container" in argv else []
    for word in rest:
        if word in ("-h", "--help"):
            return None
        if not word.startswith("-"):
            return word
    return None


def command_word(argv: Sequence[str]) -> str | None:
    """The first positional word of argv, skipping global options and their values."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _VALUE_OPTS:
            skip = True
        elif word.startswith("-"):
            if word in ("-h", "--help", "-v", "--version"):
                return None
        else:
            return word
    return None


def _own_command_line() -> bool:
    """sys.argv is the process's own (the console script or `python -m composer`), not that of a
    test runner that imports us."""
    return os.path.basename(sys.argv[0]) == "composer" or sys.argv[0].endswith(os.path.join("composer", "__main__.py"))


_ARGV = sys.argv[1:]
_COMMAND = command_word(_ARGV)
if _COMMAND == "ps" and _own_command_line():  # composer/startup.py, 5.: answered from the files, then exits
    from composer.cli import leanps

    leanps.run(_ARGV)

from composer import startup  # noqa: E402

# composer/startup.py's tricks (what each saves, measured), before argparse and the rest are imported
startup.begin(_own_command_line() and _starts_containers(_ARGV, _COMMAND),
              _ARGV[_ARGV.index(_COMMAND):] if _COMMAND else _ARGV)  # from the command word on: its cache file

import argparse  # noqa: E402

from composer import __version__  # noqa: E402
from composer.errors import ComposerError  # noqa: E402

# Each module exposes register(subparsers) and sets `func` on its parsers: func(args) -> int.
COMMAND_MODULES = (
    "composer.cli.project_cmds",
    "composer.cli.container_cmds",
    "composer.cli.image_cmds",
    "composer.cli.config_cmd",
    "composer.cli.stack_images",
    "composer.cli.network_cmds",
    "composer.cli.graph_cmd",
    "composer.cli.system_cmd",
    "composer.cli.convert_cmd",
    "composer.cli.deploy_cmd",
    "composer.cli.transfer_cmds",
    "composer.cli.volume_cmds",
)
# Which module registers a top-level command, so that a run imports only the module it needs
# (start-up time is part of every command: `ps` must not pay for the config loader's imports).
_MODULE_OF = {"container": "composer.cli.container_cmds", "image": "composer.cli.image_cmds",
              "images": "composer.cli.image_cmds", "config": "composer.cli.config_cmd",
              "build": "composer.cli.stack_images", "pull": "composer.cli.stack_images",
              "push": "composer.cli.stack_images", "convert": "composer.cli.convert_cmd",
              "network": "composer.cli.network_cmds", "graph": "composer.cli.graph_cmd",
              "system": "composer.cli.system_cmd",
              "deploy": "composer.cli.deploy_cmd", "undeploy": "composer.cli.deploy_cmd",
              "cp": "composer.cli.transfer_cmds", "stats": "composer.cli.transfer_cmds",
              "attach": "composer.cli.transfer_cmds", "export": "composer.cli.transfer_cmds",
              "volume": "composer.cli.volume_cmds"}
_PROJECT_COMMANDS = {"up", "down", "ps", "logs", "start", "stop", "restart", "kill", "rm", "create",
                     "exec", "port", "top", "ls", "version", "run", "pause", "unpause", "wait",
                     "events", "scale", "pull", "push", "build", "watch", "cp", "attach", "stats"}


# --dry-run: the verbs that print a plan, and those that change nothing anyway; any other verb
# refuses it (it would otherwise act for real).
_DRY_RUN = {"up", "down", "create", "start", "stop", "restart", "kill", "rm", "pause", "unpause", "run", "scale",
            "build", "pull", "ps", "logs", "config", "ls", "version", "top", "port", "images", "events", "graph", "deploy"}


def _columns() -> int:
    """shutil.get_terminal_size().columns without shutil (it pulls bz2 and lzma: ~2 ms a start)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Parser(argparse.ArgumentParser):
    """argparse's formatter imports shutil for the terminal width, and every add_argument makes
    one; this gives it the width. Subparsers are of the parent's class, so all commands use it."""

    def _get_formatter(self):
        return self.formatter_class(prog=self.prog, width=_columns() - 2)


def build_parser(command: str | None = None, argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser for `command` alone when given (for `container`, only the verb argv names),
    else for every command."""
    parser = _Parser(
        prog="composer",
        description="Define and run multi-container applications, without a daemon.",
    )
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    wanted = COMMAND_MODULES
    if command is not None:
        wanted = (_MODULE_OF.get(command, "composer.cli.project_cmds"),)
    for name in wanted:
        if command == "container":
            importlib.import_module(name).register(sub, container_verb(argv))
        elif command is not None and name == "composer.cli.project_cmds":  # one verb's parser only
            importlib.import_module(name).register(sub, command)
        else:
            importlib.import_module(name).register(sub)
    return parser


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Global flags as docker compose spells them."""
    g = parser.add_argument_group("global options")
    g.add_argument("-f", "--file", dest="files", action="append", default=[], metavar="FILE",
                   help="compose configuration file (repeatable, '-' for stdin)")
    g.add_argument("-p", "--project-name", dest="project_name", metavar="NAME")
    g.add_argument("--project-directory", dest="project_directory", metavar="DIR")
    g.add_argument("--env-file", dest="env_files", action="append", default=[], metavar="FILE")
    g.add_argument("--profile", dest="profiles", action="append", default=[], metavar="PROFILE")
    g.add_argument("--ansi", choices=("never", "always", "auto"), default="auto")
    g.add_argument("--progress", choices=("auto", "tty", "plain", "quiet"), default="auto")
    g.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="print what a command would change (create, recreate, start, stop, remove, pull, build), "
                        "change nothing")
    g.add_argument("-v", "--version", action="version", version=f"composer version {__version__}")


def main(argv: Sequence[str] | None = None) -> int:
    """argv None: we are the process's entry (console script, `python -m composer`), which then
    exits here, without the interpreter's teardown (see _exit_now)."""
    entry = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    command = command_word(argv)
    if _starts_containers(argv, command):
        _warm_until_first_move()
    try:
        code = _run(argv, command)
    finally:
        startup.stop_warming()
    if entry:
        _exit_now(code)
    return code


def _warm_until_first_move() -> None:
    """The warm-up (started at import already when argv is the process's own) ends once the
    runtime has moved the first container into its cgroup: later writes would only take the
    host-wide cgroup_mutex."""
    startup.warm()
    from composer.runtime.cgroups import base

    base.after_first_move.append(startup.stop_warming)


def _exit_now(code: int) -> None:
    """Exit as the interpreter would, minus freeing every module and object: that teardown costs
    ~8 ms, a tenth of a `container run`. atexit handlers run and stdio is flushed first. Returns
    (the normal exit follows) while a non-daemon thread runs, which the interpreter would wait
    for, or when a flush fails, which the interpreter reports (exit status 120)."""
    threading = sys.modules.get("threading")
    if threading is not None and any(t.is_alive() and not t.daemon and t is not threading.main_thread()
                                     for t in threading.enumerate()):
        return
    import atexit

    atexit._run_exitfuncs()  # the interpreter runs them once; this empties the list
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # AttributeError: no stdout (fd 1 closed at start)
        return
    os._exit(code & 0xFF)


def _run(argv: list[str], command: str | None) -> int:
    known = command in _MODULE_OF or command in _PROJECT_COMMANDS
    parser = build_parser(command if known else None, argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as err:  # argparse: 2 on a usage error (docker compose: 1), 0 after --help
        return 1 if err.code == 2 else int(err.code or 0)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    if getattr(args, "dry_run", False) and args.command not in _DRY_RUN:
        _print_error(f"--dry-run is not supported by `composer {args.command}`; nothing was done")
        return 1
    try:
        return int(func(args) or 0)
    except ComposerError as err:
        _print_error(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error worth a message
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


def _print_error(message: str) -> None:
    sys.stderr.write(f"composer: {message}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    raise SystemExit(main())
