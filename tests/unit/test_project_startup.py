"""Start-up work the project verbs skip: `ps` builds only its own parser and imports neither typing
nor inspect; `up` and `down` load neither inspect (every dataclass on their path has a docstring)
nor concurrent.futures (and logging with it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from composer.cli.main import build_parser


def _commands(parser) -> set[str]:
    return set(parser._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("argv", [
    ["-p", "x", "ps", "-a", "--format", "json", "web"],
    ["down", "-v", "-t", "3", "--remove-orphans"],
    ["--progress", "quiet", "up", "-d", "--scale", "web=2", "web"],
    ["pause", "web"],
])
def test_only_the_command_run_is_built_and_parses_the_same(argv):
    command = next(w for w in argv if w in ("ps", "down", "up", "pause"))
    lean = build_parser(command, argv)
    assert _commands(lean) == {command}
    full = build_parser()
    assert vars(lean.parse_args(argv)).keys() == vars(full.parse_args(argv)).keys()
    assert {k: v for k, v in vars(lean.parse_args(argv)).items() if k != "func"} == \
        {k: v for k, v in vars(full.parse_args(argv)).items() if k != "func"}


def test_a_name_that_is_no_command_builds_them_all():
    assert {"up", "down", "ps", "run", "events"} <= _commands(build_parser("nosuchverb", ["nosuchverb"]))


def _imports(code: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_ps_path_imports_neither_typing_nor_inspect():
    out = _imports("import sys, composer.cli.main as m\n"
                   "m.build_parser('ps', ['ps'])\n"
                   "import composer.cli.project_common, composer.ui.tables, composer.runtime, composer.service.links\n"
                   "import composer.runtime.net.records\n"
                   "print(type(sys.modules['inspect']).__name__, 'typing' in sys.modules)\n")
    assert out == ["_LazyModule", "False"]


def test_up_and_down_paths_load_neither_inspect_nor_concurrent_futures():
    out = _imports("import sys, composer.cli.main as m\n"
                   "m.build_parser('up', ['up'])\n"
                   "import composer.project.project, composer.config, composer.ui.progress, composer.cli.up_cmd\n"
                   "import composer.runtime.net.network, composer.runtime.net.ports, composer.project.recovery\n"
                   "print(type(sys.modules['inspect']).__name__, 'concurrent.futures' in sys.modules,\n"
                   "      'logging' in sys.modules)\n")
    assert out == ["_LazyModule", "False", "False"]
