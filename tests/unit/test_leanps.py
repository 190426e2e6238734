"""The lean `ps` (composer/cli/leanps.py) prints what the full CLI prints, from the same files, and
leaves every command line it does not fully understand to the full CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest

from composer.cli import leanps
from composer.cli.main import main
from composer.runtime.spec import ContainerSpec, Healthcheck, PortMapping
from composer.runtime.syscalls import proc_start_time

HOUR = 3600.0


def _labels(project: str, service: str, number: int = 1, oneoff: bool = False) -> tuple:
    return (("composer.number", str(number)), ("composer.oneoff", str(oneoff)), ("composer.project", project),
            ("composer.service", service))


def _container(data, state, n: int, name: str, labels: tuple, st: dict | None, **spec) -> None:
    cid = f"{n:064x}"
    s = ContainerSpec(id=cid, name=name, image="busybox:local", image_id="sha256:x", layers=(),
                      argv=spec.pop("argv", ("httpd", "-f", "-p", "80")), labels=labels, **spec)
    (data / "containers" / cid).mkdir(parents=True)
    (data / "containers" / cid / "spec.json").write_text(s.to_json())
    if st is not None:
        (state / "containers" / cid).mkdir(parents=True)
        (state / "containers" / cid / "state.json").write_text(json.dumps(st, sort_keys=True))


@pytest.fixture
def stack(tmp_path, monkeypatch):
    """Containers of project `demo` in every state ps shows (the running ones are this process)."""
    data, state = tmp_path / "data", tmp_path / "state"
    now = time.time()
    me = {"pid": os.getpid(), "pid_start": proc_start_time(os.getpid()), "created_at": now - 5 * HOUR,
          "started_at": now - 4 * HOUR}
    _container(data, state, 1, "demo-web-1", _labels("demo", "web"), {
        **me, "ports": [{"container_port": 80, "host_port": 8080, "host_ip": "127.0.0.1", "protocol": "tcp"}],
        "health": {"status": "healthy"}}, healthcheck=Healthcheck(test=("true",)))
    _container(data, state, 2, "demo-web-2", _labels("demo", "web", 2), {**me, "restart_count": 2},
               ports=(PortMapping(81, 0, "", "udp"),), argv=("sh", "-c", "echo it's a long command line"))
    _container(data, state, 3, "demo-db-1", _labels("demo", "db"), {
        "pid": 999999999, "pid_start": 1, "created_at": now - 30 * HOUR, "started_at": now - 30 * HOUR,
        "finished_at": now - 2 * HOUR, "exit_code": 137, "oom_killed": True})
    _container(data, state, 4, "demo-job-1", _labels("demo", "job"), {"created_at": now - 3 * HOUR})
    _container(data, state, 5, "demo-job-run-0a1b", _labels("demo", "job", oneoff=True), {**me})
    _container(data, state, 6, "other-web-1", _labels("other", "web"), {**me})
    _container(data, state, 7, "demo-mon-1", _labels("demo", "mon"), {
        **me, "pid": 999999999, "finished_at": now - 60, "monitor_error": {"message": "monitor died: X", "log": "/l"}})
    _container(data, state, 8, "demo-lost-1", _labels("demo", "lost"), None)  # state dir gone (reboot)
    (data / "containers" / f"{9:064x}").mkdir()  # a crashed create: no spec
    (data / "containers" / "lock").write_text("")
    monkeypatch.setenv("COMPOSER_DATA_DIR", str(data))
    monkeypatch.setenv("COMPOSER_STATE_DIR", str(state))
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


ARGVS = [
    ["-p", "demo", "ps"], ["-p", "DEMO", "ps", "-a"], ["--project-name=demo", "ps", "--all", "--no-trunc"],
    ["-p", "demo", "ps", "-q"], ["-p", "demo", "ps", "-a", "--services"],
    ["-p", "demo", "ps", "--status", "exited", "--status=created"],
    ["--ansi", "never", "-p", "demo", "--progress=quiet", "ps"], ["-p", "nobody", "ps", "-a"],
    ["-f", "stack/compose.yaml", "ps", "-a"], ["ps", "-a"],
]


@pytest.mark.parametrize("argv", ARGVS)
def test_prints_what_the_full_cli_prints(stack, argv, capsys):
    (stack / "stack").mkdir()
    (stack / "stack" / "compose.yaml").write_text("name: demo\nservices:\n  web:\n    image: busybox\n")
    (stack / "compose.yaml").write_text("name: demo\nservices:\n  web:\n    image: busybox\n")
    out = io.StringIO()
    assert leanps.serve(argv, out=out) == 0
    assert main(argv) == 0
    assert out.getvalue() == capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["ps"],  # no stack file here: the full CLI says what to do
    ["-p", "demo", "ps", "--format", "json"], ["-p", "demo", "ps", "-h"], ["-p", "demo", "ps", "-aq"],
    ["-p", "demo", "ps", "web", "-a", "db"], ["--ansi", "bogus", "-p", "demo", "ps"], ["-p", "demo", "ps", "--"],
    ["-p", "demo", "ps", "--status", "sleeping"], ["-p", "demo", "ps", "--stat", "running"], ["-p"],
    ["-p", "demo", "ps", "--format"], ["-v", "ps"], ["-p", "demo", "logs"], ["-pdemo", "ps"],
    ["--env-file", "x.env", "ps"], ["-p", "demo", "ps", "--no-trunc=1"],
    # services named: the stack file says whether they exist ("no such service")
    ["-p", "demo", "ps", "web", "db"], ["-p", "demo", "ps", "--status", "running", "web"],
])
def test_leaves_other_command_lines_to_the_full_cli(stack, argv):
    assert leanps.serve(argv, out=io.StringIO()) is None


def test_a_terminal_gets_the_full_cli(stack):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert leanps.serve(["-p", "demo", "ps"], out=Tty()) is None


def test_imports_neither_re_json_dataclasses_nor_the_runtime_api(stack):
    code = ("import io, sys\nfrom composer.cli import leanps\nout = io.StringIO()\n"
            "assert leanps.serve(['-p', 'demo', 'ps', '-a'], out=out) == 0 and 'demo-web-1' in out.getvalue()\n"
            "heavy = ('re', 'json', 'dataclasses', 'argparse', 'enum', 'typing', 'composer.runtime')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
            "import composer.runtime\nprint(hasattr(composer.runtime, 'Runtime'))\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split("\n")[:2] == ["[]", "True"]  # and the real package imports afterwards
