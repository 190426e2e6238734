"""The compose verbs against a fake ProjectRunner and runtime: argument parsing, what reaches the
runner, what the user sees, exit codes. No root, no containers."""

from __future__ import annotations

import json
import sys
import threading
import types
from dataclasses import dataclass, field

import pytest

from composer.cli.main import build_parser, main
from composer.runtime import LogRecord
from composer.runtime.spec import PortMapping

STACK = """
name: demo
services:
  db:
    image: busybox
  web:
    image: busybox
    depends_on: [db]
    ports: ["127.0.0.1:8080:80"]
  init:
    image: busybox
"""


@dataclass(frozen=True)
class Spec:
    image: str = "busybox"
    argv: tuple = ("httpd", "-f")
    labels: tuple = ()
    ports: tuple = ()


@dataclass(frozen=True)
class Info:
    name: str
    service: str
    status: str = "running"
    exit_code: int | None = None
    ports: tuple = ()
    created_at: float | None = 1.0
    started_at: float | None = 1.0
    finished_at: float | None = None
    health: str | None = None
    oom_killed: bool = False
    spec: Spec = field(default_factory=Spec)

    @property
    def id(self) -> str:
        return self.name.ljust(64, "0")

    @property
    def running(self) -> bool:
        return self.status == "running"

    def label(self, key, default=None):
        return {"composer.service": self.service, "composer.project": "demo", "composer.number": "1",
                "composer.oneoff": "False"}.get(key, default)


@dataclass(frozen=True)
class Event:
    kind: str
    name: str
    action: str
    service: str | None = None
    detail: str = ""


class FakeRunner:
    calls: list = []
    infos: list = []
    exec_code = 0

    def __init__(self, model, *, name=None, runtime=None, store=None, on_event=None, on_image=None):
        self.model, self.name, self.runtime, self.on_event = model, name, runtime, on_event

    def _record(self, verb, *a, **kw):
        FakeRunner.calls.append((verb, a, kw))

    def up(self, opts):
        self._record("up", opts)
        for i in FakeRunner.infos:
            self.on_event(Event("container", i.name, "Started", i.service))
        return list(FakeRunner.infos)

    def create(self, opts):
        self._record("create", opts)

    def down(self, opts):
        self._record("down", opts)
        self.on_event(Event("network", "demo_default", "Removed"))
        self.on_event(Event("container", "demo", "Warning", None, "found orphan containers (x)"))

    def start(self, services):
        self._record("start", services)

    def stop(self, services, timeout=None):
        self._record("stop", services, timeout)

    def restart(self, services, timeout=None):
        self._record("restart", services, timeout)

    def kill(self, services, sig):
        self._record("kill", services, sig)

    def rm(self, services, force=False, stop=False, volumes=False):
        self._record("rm", services, force=force, stop=stop, volumes=volumes)
        return []

    def containers(self, services=(), all=False, oneoff=False):
        return [i for i in FakeRunner.infos if (all or i.running) and (not services or i.service in services)]

    def exec(self, service, argv, index=1, env=(), cwd=None, user=None, tty=False, detach=False):
        self._record("exec", service, argv, index=index, env=env, cwd=cwd, user=user, tty=tty, detach=detach)
        return FakeRunner.exec_code

    def port(self, service, private_port, protocol="tcp", index=1):
        self._record("port", service, private_port, protocol, index)
        return ("127.0.0.1", 8080) if private_port == 80 else None

    def attach_plan(self, infos, opts):  # the library's decisions, as the real runner makes them
        from composer.project.attach import plan

        return plan(self.model, infos, opts)

    def exit_code(self, plan, aborted, codes):
        found = self.containers((plan.opts.exit_code_from,), all=True) if plan.opts.exit_code_from else []
        return plan.exit_code(aborted, codes, found[0].exit_code if found else None)

    def top(self, services):
        return [(FakeRunner.infos[0], [("root", "42", "1", "0", "10:00", "?", "00:00:00", "httpd -f")])]


class FakeRuntime:
    logs_by_name: dict = {}
    codes: dict = {}
    state_dir = "/nonexistent/composer-state"

    def __init__(self, *a, **kw):
        pass

    def prepare(self):
        FakeRunner.calls.append(("prepare", (), {}))

    def logs(self, id, *, follow=False, since=None, tail=None):
        name = id.rstrip("0")
        yield from FakeRuntime.logs_by_name.get(name, [])

    def get(self, id):
        name = id.rstrip("0")
        return types.SimpleNamespace(status="exited", exit_code=FakeRuntime.codes.get(name, 0))

    def list(self, all=False, labels=None):
        return [i for i in FakeRunner.infos if (all or i.running)
                and all_match(i, labels or {})]

    def exec(self, id, argv, *, env=(), cwd=None, user=None, tty=False, detach=False):
        FakeRunner.calls.append(("exec", (id.rstrip("0"), argv), dict(env=env, cwd=cwd, user=user, tty=tty,
                                                                      detach=detach)))
        return FakeRunner.exec_code


def all_match(info, labels):
    return all(info.label(k) == v for k, v in labels.items())


@dataclass(frozen=True)
class UpOptions:
    services: tuple = ()
    no_deps: bool = False
    force_recreate: bool = False
    no_recreate: bool = False
    no_start: bool = False
    remove_orphans: bool = False
    scale: tuple = ()
    timeout: float | None = None
    renew_anon_volumes: bool = False
    always_recreate_deps: bool = False
    build: bool = False
    no_build: bool = False
    pull: str = "missing"
    dry_run: bool = False


@dataclass(frozen=True)
class DownOptions:
    volumes: bool = False
    remove_orphans: bool = False
    timeout: float | None = None
    rmi: str | None = None
    dry_run: bool = False


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """A stack dir as cwd; composer.project.project and the Runtime replaced by fakes."""
    (tmp_path / "compose.yaml").write_text(STACK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    mod = sys.modules.get("composer.project.project")
    if mod is None:
        mod = types.ModuleType("composer.project.project")
        monkeypatch.setitem(sys.modules, "composer.project.project", mod)
    monkeypatch.setattr(mod, "ProjectRunner", FakeRunner, raising=False)
    monkeypatch.setattr(mod, "UpOptions", UpOptions, raising=False)
    monkeypatch.setattr(mod, "DownOptions", DownOptions, raising=False)
    monkeypatch.setattr("composer.runtime.Runtime", FakeRuntime)
    # image building/pulling is part of the runner's up (the fake's does none); tested where real
    # images exist (acceptance tests)
    FakeRunner.calls = []
    FakeRunner.infos = [Info("demo-db-1", "db"), Info("demo-web-1", "web", ports=(PortMapping(80, 8080, "127.0.0.1"),))]
    FakeRunner.exec_code = 0
    FakeRuntime.logs_by_name = {}
    FakeRuntime.codes = {}
    return FakeRunner


def verbs(name):
    return [c for c in FakeRunner.calls if c[0] == name]


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize("argv, expect", [
    (["up", "-d", "--scale", "web=2", "-t", "3", "web"], dict(detach=True, scale=["web=2"], timeout=3.0,
                                                           services=["web"])),
    (["up", "--exit-code-from", "db", "--no-attach", "web", "-V"], dict(exit_code_from="db", no_attach=["web"],
                                                                       renew_anon_volumes=True)),
    (["down", "-v", "--remove-orphans", "-t", "0"], dict(volumes=True, remove_orphans=True, timeout=0.0)),
    (["ps", "-a", "-q", "--format", "json", "--status", "exited", "db"],
     dict(all=True, quiet=True, format="json", status=["exited"], service_args=["db"])),
    (["logs", "-f", "--tail", "5", "-t", "--since", "10m", "--no-color", "--no-log-prefix", "db"],
     dict(follow=True, tail="5", timestamps=True, since="10m", no_color=True, no_log_prefix=True, services=["db"])),
    (["kill", "-s", "SIGTERM", "db"], dict(signal="SIGTERM", services=["db"])),
    (["rm", "-f", "-s", "-v"], dict(force=True, stop=True, volumes=True)),
    (["exec", "-T", "-e", "A=1", "-w", "/tmp", "-u", "nobody", "--index", "2", "db", "sh", "-c", "exit 3"],
     dict(no_tty=True, env=["A=1"], workdir="/tmp", user="nobody", index=2, service="db",
          cmd_argv=["sh", "-c", "exit 3"])),
    (["port", "--protocol", "udp", "web", "53"], dict(protocol="udp", service="web", private_port="53")),
    (["ls", "-a", "--format", "json"], dict(all=True, format="json")),
    (["stop", "-t", "1", "db", "web"], dict(timeout=1.0, services=["db", "web"])),
])
def test_parse_verbs(argv, expect):
    args = build_parser().parse_args(argv)
    for key, value in expect.items():
        assert getattr(args, key) == value, key


def test_negative_timeout_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["stop", "-t", "-1"])
    assert exc.value.code == 2


# ------------------------------------------------------------------ verbs


def test_up_detached_passes_options_and_prints_plain_progress(fake, capsys):
    assert main(["--progress", "plain", "up", "-d", "--force-recreate", "--scale", "web=2", "-t", "4", "web"]) == 0
    (_, (opts,), _), = verbs("up")
    assert opts.services == ("web",) and opts.force_recreate and opts.scale == (("web", 2),) and opts.timeout == 4
    assert verbs("prepare")  # launcher forked before any thread
    err = capsys.readouterr().err
    assert "Container demo-db-1  Started" in err


def test_up_incompatible_flags(fake, capsys):
    assert main(["up", "-d", "--abort-on-container-exit"]) == 1
    assert "incompatible" in capsys.readouterr().err
    assert main(["up", "--force-recreate", "--no-recreate"]) == 1


def test_up_unknown_service(fake, capsys):
    assert main(["up", "-d", "nope"]) != 0
    assert "no such service: nope" in capsys.readouterr().err
    assert not verbs("up")


def test_up_attached_shows_prefixed_logs_and_exit_lines(fake, capsys):
    FakeRuntime.logs_by_name = {"demo-db-1": [LogRecord("2024-05-01T10:00:00.0Z", "stdout", "ready\n")],
                                "demo-web-1": [LogRecord("2024-05-01T10:00:01.0Z", "stdout", "serving\n")]}
    FakeRuntime.codes = {"demo-db-1": 0, "demo-web-1": 0}
    assert main(["--ansi", "never", "up"]) == 0
    out = capsys.readouterr().out
    assert "Attaching to db-1, web-1" in out
    assert "db-1   | ready" in out and "web-1  | serving" in out
    assert "db-1 exited with code 0" in out and "web-1 exited with code 0" in out


def test_up_exit_code_from(fake, capsys):
    FakeRuntime.codes = {"demo-db-1": 0, "demo-web-1": 7}
    FakeRunner.infos = [Info("demo-db-1", "db"), Info("demo-web-1", "web", status="exited", exit_code=7)]
    code = main(["--ansi", "never", "up", "--exit-code-from", "web"])
    assert code == 7
    assert verbs("stop")  # aborting stops the rest
    assert "Aborting on container exit" in capsys.readouterr().err


def test_up_abort_on_failure_ignores_success(fake, capsys):
    FakeRuntime.codes = {"demo-db-1": 0, "demo-web-1": 0}
    assert main(["--ansi", "never", "up", "--abort-on-container-failure"]) == 0
    assert not verbs("stop")


def test_up_no_attach_filters(fake, capsys):
    FakeRuntime.logs_by_name = {"demo-web-1": [LogRecord("2024-05-01T10:00:01.0Z", "stdout", "serving\n")]}
    assert main(["--ansi", "never", "up", "--no-attach", "web"]) == 0
    out = capsys.readouterr().out
    assert "serving" not in out and "db-1 exited with code 0" in out


def test_down_passes_options(fake, capsys):
    assert main(["--progress", "plain", "down", "-v", "-t", "2"]) == 0
    (_, (opts,), _), = verbs("down")
    assert opts.volumes and opts.timeout == 2
    err = capsys.readouterr().err
    assert "Network demo_default  Removed" in err and "WARNING: found orphan containers (x)" in err


def test_down_with_project_name_and_no_stack_file(fake, tmp_path, monkeypatch, capsys):
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    (tmp_path / "compose.yaml").unlink()
    monkeypatch.chdir(empty)
    assert main(["-p", "demo", "down"]) == 0
    assert verbs("down")


def test_ps_plain_table(fake, capsys):
    assert main(["ps"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    assert lines[1].startswith("demo-db-1") and "127.0.0.1:8080->80/tcp" in lines[2]


def test_ps_variants(fake, capsys):
    FakeRunner.infos.append(Info("demo-init-1", "init", status="exited", exit_code=0, finished_at=2.0))
    main(["ps", "-q"])
    assert len(capsys.readouterr().out.split()) == 2
    main(["ps", "-a", "--services"])
    assert capsys.readouterr().out.split() == ["db", "init", "web"]
    main(["ps", "--status", "exited", "--format", "json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["Name"] for r in rows] == ["demo-init-1"] and rows[0]["ExitCode"] == 0


def test_ps_with_project_name_needs_no_stack_file(fake, tmp_path, monkeypatch, capsys):
    (tmp_path / "compose.yaml").write_text("this: [is not valid")
    assert main(["-p", "demo", "ps"]) == 0
    assert "demo-db-1" in capsys.readouterr().out


def test_logs_non_follow(fake, capsys):
    FakeRuntime.logs_by_name = {"demo-db-1": [LogRecord("2024-05-01T10:00:02.0Z", "stdout", "two\n")],
                                "demo-web-1": [LogRecord("2024-05-01T10:00:01.0Z", "stdout", "one\n")]}
    assert main(["logs", "--no-color"]) == 0
    assert capsys.readouterr().out == "web-1  | one\ndb-1   | two\n"
    assert main(["logs", "--no-log-prefix", "db"]) == 0
    assert capsys.readouterr().out == "two\n"
    assert main(["logs", "--tail", "x"]) == 1


def test_exec_returns_command_exit_code_without_threads(fake):
    FakeRunner.exec_code = 3
    before = threading.active_count()
    assert main(["exec", "-T", "-e", "A=1", "db", "sh", "-c", "exit 3"]) == 3
    assert threading.active_count() == before
    (_, (name, argv), kw), = verbs("exec")
    assert name == "demo-db-1" and argv == ["sh", "-c", "exit 3"] and kw["env"] == (("A", "1"),) and not kw["tty"]


def test_port(fake, capsys):
    assert main(["port", "web", "80"]) == 0
    assert capsys.readouterr().out == "127.0.0.1:8080\n"
    assert main(["port", "web", "81"]) == 1
    assert "no port 81/tcp" in capsys.readouterr().err


def test_kill_signal_and_stop_timeout(fake):
    assert main(["kill", "-s", "TERM", "db"]) == 0
    assert verbs("kill")[0][1] == (("db",), 15)
    assert main(["stop", "-t", "1"]) == 0
    assert verbs("stop")[0][1] == ((), 1.0)
    assert main(["kill", "-s", "NOPE"]) == 1


def test_rm_asks_and_respects_no(fake, monkeypatch, capsys):
    FakeRunner.infos = [Info("demo-db-1", "db", status="exited", exit_code=0)]
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("n\n"))
    assert main(["rm"]) == 0
    assert not verbs("rm") and "Going to remove demo-db-1" in capsys.readouterr().err
    assert main(["rm", "-f"]) == 0
    assert verbs("rm")


def test_top_and_version(fake, capsys):
    assert main(["top"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("demo-db-1\nUID") and "httpd -f" in out
    assert main(["version", "--short"]) == 0
    assert capsys.readouterr().out.strip().count(".") == 2


def test_ps_imports_stay_light(tmp_path):
    """`ps` into a pipe: no graph library, no config loader (with -p or a plain stack file), no rich."""
    import subprocess

    (tmp_path / "compose.yaml").write_text(STACK)
    code = ("import sys; from composer.cli.main import main; rc = main(sys.argv[1:]); "
            "heavy = [m for m in ('networkx', 'rich', 'composer.config', 'composer.project', 'yaml', 'jsonschema') "
            "if m in sys.modules]; print('HEAVY', heavy); sys.exit(rc)")
    env = {"COMPOSER_STATE_DIR": str(tmp_path / "s"), "COMPOSER_DATA_DIR": str(tmp_path / "d"), "PATH": "/usr/bin:/bin"}
    for argv in (["-p", "demo", "ps"], ["ps"]):
        proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, env=env, capture_output=True,
                              text=True)
        assert proc.returncode == 0, proc.stderr
        assert "HEAVY []" in proc.stdout, (argv, proc.stdout)


def test_ls_lists_projects(fake, monkeypatch, capsys):
    import composer.project.ops as ops

    summaries = [ops.ProjectSummary("demo", "running(2)", "/x/compose.yaml"),
                 ops.ProjectSummary("alpha", "exited(1)", "/y/compose.yaml")]
    monkeypatch.setattr(ops, "list_projects", lambda rt, all=True: [s for s in summaries if all or "running" in s.status])
    assert main(["ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "CONFIG", "FILES"] and len(lines) == 2
    assert main(["ls", "-a", "-q"]) == 0
    assert capsys.readouterr().out.split() == ["alpha", "demo"]
    assert main(["ls", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"Name": "demo", "Status": "running(2)",
                                                    "ConfigFiles": "/x/compose.yaml"}]
