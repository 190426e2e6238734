"""Start-up work that `container run` skips: only the named verb's parser, inspect loaded on use,
seccomp programs from the state dir's cache (also for exec and healthcheck probes)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from composer.cli import container_cmds
from composer.cli.main import build_parser, container_verb
from composer.runtime.container import execute
from composer.runtime.fs.rootfs import SetupError
from composer.runtime.security import caps
from composer.runtime.security import seccomp
from composer.runtime.security import seccomp_profile as sp
from composer.runtime.spec import ContainerSpec


def _verbs(parser) -> set[str]:
    container = parser._subparsers._group_actions[0].choices["container"]
    return set(container._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("argv, verb", [
    (["container", "run", "--rm", "img", "true"], "run"),
    (["-p", "x", "container", "ps", "-a"], "ps"),
    (["container", "--help", "run"], None),
    (["container"], None),
    (["ps"], None),
])
def test_container_verb(argv, verb):
    assert container_verb(argv) == verb


def test_only_the_named_verb_is_built_and_parses_the_same():
    argv = ["container", "run", "--rm", "--network", "none", "-e", "A=1", "img", "sh", "-c", "x"]
    lean = build_parser("container", argv)
    assert _verbs(lean) == {"run"}
    assert vars(lean.parse_args(argv)) == vars(build_parser().parse_args(argv))
    assert _verbs(build_parser("container", ["container", "ls"])) == {"ls", "ps", "list"}


@pytest.mark.parametrize("argv", [["container"], ["container", "bogus"], ["container", "-h", "run"]])
def test_help_and_unknown_verbs_build_every_verb(argv):
    every = {alias for aliases in container_cmds.VERBS.values() for alias in aliases}
    assert _verbs(build_parser("container", argv)) == every


def test_run_imports_neither_inspect_nor_hashlib():
    code = ("import sys, composer.cli.main as m\n"
            "m.build_parser('container', ['container', 'run', 'img', 'true'])\n"
            "import composer.cli.container_cmds, composer.runtime.container.containers, composer.runtime.container.lifecycle\n"
            "import composer.images.store, composer.service.runspec, composer.runtime.security.seccomp\n"
            "print(type(sys.modules['inspect']).__name__, 'hashlib' in sys.modules, 'locale' in sys.modules)\n"
            "import inspect\n"
            "print(inspect.signature(len), type(sys.modules['inspect']).__name__)\n"
            "import gettext\n"
            "print(gettext.ngettext('a', 'as', 2), callable(gettext.translation), type(sys.modules['gettext']).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # the stand-ins: inspect and gettext load for real on the first attribute they lack
    assert out.splitlines() == ["_LazyModule False False", "(obj, /) module", "as True module"]


def test_cache_file_carries_its_key(tmp_path, monkeypatch):
    first = seccomp.program_for(str(tmp_path), "", (), (), False)
    assert first == sp.program("", caps.resolve())
    (path,) = (tmp_path / "seccomp").iterdir()
    path.write_bytes(b"\0\0\0\3abc" + b"\0" * 8)  # another key under this name: a miss, rebuilt
    monkeypatch.setattr(sp, "program", lambda *a: b"\1" * 8)
    assert seccomp.program_for(str(tmp_path), "", (), (), False) == b"\1" * 8
    monkeypatch.setattr(sp, "program", lambda *a: pytest.fail("rebuilt despite the cache"))
    assert seccomp.program_for(str(tmp_path), "", (), (), False) == b"\1" * 8


def test_exec_program_comes_from_the_cache(tmp_path, monkeypatch):
    spec = ContainerSpec(id="a" * 64, name="x", image="i", image_id="i", layers=("/l",), argv=("true",))
    built = execute._seccomp_program(spec, None)
    assert execute._seccomp_program(spec, str(tmp_path)) == built
    monkeypatch.setattr(sp, "program", lambda *a: pytest.fail("rebuilt despite the cache"))
    assert execute._seccomp_program(spec, str(tmp_path)) == built
    unconfined = ContainerSpec(id="b" * 64, name="y", image="i", image_id="i", layers=("/l",), argv=("true",),
                               seccomp="unconfined")
    assert execute._seccomp_program(unconfined, str(tmp_path)) is None
    monkeypatch.undo()
    bad = ContainerSpec(id="c" * 64, name="z", image="i", image_id="i", layers=("/l",), argv=("true",),
                        seccomp='{"defaultAction": "SCMP_ACT_NOPE"}')
    with pytest.raises(SetupError, match="invalid seccomp profile"):
        execute._seccomp_program(bad, None)


def _entry(tmp_path, prelude: str) -> subprocess.CompletedProcess:
    code = (f"import atexit, sys, threading, time\n{prelude}\n"
            "sys.argv = ['composer', 'container', 'ls', '-a']\n"
            "from composer.cli.main import main\nraise SystemExit(main())\n")
    env = {"COMPOSER_STATE_DIR": str(tmp_path / "s"), "COMPOSER_DATA_DIR": str(tmp_path / "d"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_entry_exits_at_once_after_atexit_and_flush(tmp_path):
    proc = _entry(tmp_path, "atexit.register(lambda: print('atexit ran'))\n"
                            "import gc\nclass Late:\n    def __del__(self): print('teardown ran')\n"
                            "keep = Late()")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("CONTAINER ID")
    assert "atexit ran" in proc.stdout and "teardown ran" not in proc.stdout  # no interpreter teardown


def test_entry_waits_for_running_threads_as_the_interpreter_does(tmp_path):
    proc = _entry(tmp_path, "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done'))).start()\n"
                            "class Late:\n    def __del__(self): print('teardown ran')\nkeep = Late()")
    assert proc.returncode == 0, proc.stderr
    assert "thread done" in proc.stdout and "teardown ran" in proc.stdout
