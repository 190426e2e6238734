"""docker compose's spellings that users type (issue 13): parsing, what reaches the library's
option dataclasses, how a dry run's plan is printed, and the pure pieces behind the flags (bake
file, changed keys, --until, --attach-dependencies, run's capabilities). No root, no containers:
the behaviour on real containers is in tests/acceptance/test_cli_flags.py."""

from __future__ import annotations

import io
import json

import pytest

from composer.cli.main import build_parser, main
from composer.runtime import LogRecord
from tests.unit.test_cli_project import FakeRunner, FakeRuntime, Info, fake, verbs  # noqa: F401 - fixture

# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize("argv, expect", [
    (["exec", "--no-tty", "db", "true"], dict(no_tty=True, service="db", cmd_argv=["true"])),
    (["exec", "-T", "db", "true"], dict(no_tty=True)),
    (["exec", "--no-TTY", "db", "true"], dict(no_tty=True)),
    (["logs", "--until", "2024-05-01T10:00:00Z", "--since", "1h"], dict(until="2024-05-01T10:00:00Z", since="1h")),
    (["ps", "--filter", "status=exited", "--filter", "status=dead"], dict(filter=["status=exited", "status=dead"])),
    (["ps", "--status", "running"], dict(status=["running"], orphans=True)),
    (["ps", "--orphans=false"], dict(orphans=False)),
    (["ps", "--orphans"], dict(orphans=True)),
    (["down", "--rmi", "local"], dict(rmi="local")),
    (["down", "--rmi", "all", "-v"], dict(rmi="all", volumes=True)),
    (["up", "--pull", "always", "--quiet-pull", "--timestamps", "--attach-dependencies", "web"],
     dict(pull="always", quiet_pull=True, timestamps=True, attach_dependencies=True, services=["web"])),
    (["up"], dict(pull="policy", quiet_pull=False, timestamps=False, attach_dependencies=False, dry_run=False)),
    (["up", "--pull", "build"], dict(pull="build")),
    (["run", "--cap-add", "NET_ADMIN", "--cap-add", "SYS_TIME,NET_RAW", "--cap-drop", "CHOWN", "--pull", "never",
      "--quiet-pull", "--remove-orphans", "web", "id"],
     dict(cap_add=["NET_ADMIN", "SYS_TIME,NET_RAW"], cap_drop=["CHOWN"], pull="never", quiet_pull=True,
          remove_orphans=True, service="web", cmd_argv=["id"])),
    (["build", "--pull", "--build-arg", "A=1", "--build-arg", "B", "--with-dependencies", "--print", "web"],
     dict(pull=True, build_arg=["A=1", "B"], with_dependencies=True, print_bake=True, services=["web"])),
    (["pull", "--ignore-pull-failures", "--include-deps", "web"],
     dict(ignore_pull_failures=True, include_deps=True, services=["web"])),
    (["--dry-run", "up", "-d"], dict(dry_run=True, detach=True)),
    (["up", "--dry-run", "-d"], dict(dry_run=True)),
    (["--dry-run", "down"], dict(dry_run=True)),  # the verb's own --dry-run default does not undo the global one
    (["down", "--dry-run"], dict(dry_run=True)),
    (["--dry-run", "build"], dict(dry_run=True)),
    (["pull", "--dry-run"], dict(dry_run=True)),
    (["ps", "--dry-run"], dict(dry_run=True)),
    (["logs", "--dry-run"], dict(dry_run=True)),
])
def test_parse_compose_spellings(argv, expect):
    args = build_parser().parse_args(argv)
    for key, value in expect.items():
        assert getattr(args, key) == value, key


@pytest.mark.parametrize("argv", [
    ["down", "--rmi", "some"], ["up", "--pull", "sometimes"], ["ps", "--orphans=maybe"],
])
def test_bad_values_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


# ------------------------------------------------------------------ what reaches the library


def test_up_passes_pull_and_dry_run(fake, capsys):
    assert main(["--progress", "plain", "up", "-d", "--pull", "always"]) == 0
    (_, (opts,), _), = verbs("up")
    assert opts.pull == "always" and not opts.dry_run
    FakeRunner.calls = []
    assert main(["up", "-d"]) == 0
    (_, (opts,), _), = verbs("up")
    assert opts.pull == "missing"  # compose's "policy": each service's pull_policy


def test_up_dry_run_prints_the_plan_and_forks_no_launcher(fake, capsys, monkeypatch):
    from composer.project.base import Event

    def up(self, opts):
        self._record("up", opts)
        self.on_event(Event("container", "demo-db-1", "Recreate", "db", "configuration changed: environment",
                            planned=True))
        self.on_event(Event("network", "demo_default", "Create", None, "not created yet", planned=True))
        self.on_event(Event("container", "demo", "Warning", None, "found orphan containers (x)"))
        return []

    monkeypatch.setattr(FakeRunner, "up", up)
    assert main(["--dry-run", "up", "-d"]) == 0
    (_, (opts,), _), = verbs("up")
    assert opts.dry_run
    assert not verbs("prepare")  # a dry run starts no launcher
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "DRY-RUN MODE -  Container demo-db-1  Recreate: configuration changed: environment",
        "DRY-RUN MODE -  Network demo_default  Create: not created yet",
    ]
    assert "found orphan containers (x)" in err


def test_down_passes_rmi_and_dry_run(fake, capsys):
    assert main(["--dry-run", "down", "--rmi", "local"]) == 0
    (_, (opts,), _), = verbs("down")
    assert opts.rmi == "local" and opts.dry_run
    assert capsys.readouterr().out == "DRY-RUN MODE -  nothing to do\n"


@pytest.mark.parametrize("argv, method", [
    (["stop", "web"], "stop"), (["start"], "start"), (["restart"], "restart"), (["kill", "-s", "TERM"], "kill"),
    (["rm", "-s"], "rm"), (["pause"], "pause"), (["unpause"], "pause"), (["scale", "web=2"], "up"),
    (["create"], "create"), (["run", "web", "true"], "create_oneoff"),
])
def test_dry_run_reaches_every_mutating_verb(fake, capsys, monkeypatch, argv, method):
    """Each verb makes its one library call with the dry run asked for (keyword or option), starts
    no launcher, asks nothing (rm), and prints the plan the library reports."""
    from composer.project.base import Event

    def planned(self, *a, **kw):
        self._record(method, *a, **kw)
        self.on_event(Event("container", "demo-web-1", "Stop", "web", "", planned=True))

    monkeypatch.setattr(FakeRunner, method, planned, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # rm must not ask
    assert main(["--dry-run", *argv]) == 0
    (_, a, kw), = verbs(method)
    assert kw.get("dry_run") or getattr(a[0], "dry_run", False)
    assert not verbs("prepare")
    assert capsys.readouterr().out == "DRY-RUN MODE -  Container demo-web-1  Stop\n"


def test_ps_filter_status_and_orphans(fake, capsys):
    FakeRunner.infos = [Info("demo-db-1", "db", status="exited", exit_code=0), Info("demo-web-1", "web"),
                        Info("demo-gone-1", "gone", status="exited")]
    assert main(["ps", "--filter", "status=exited", "--format", "json"]) == 0
    names = [json.loads(line)["Name"] for line in capsys.readouterr().out.splitlines()]
    assert names == ["demo-db-1", "demo-gone-1"]
    assert main(["ps", "--filter", "status=exited", "--orphans=false", "--format", "json"]) == 0
    names = [json.loads(line)["Name"] for line in capsys.readouterr().out.splitlines()]
    assert names == ["demo-db-1"]  # `gone` is not in the stack file


@pytest.mark.parametrize("flt", ["status=bogus", "name=web", "status"])
def test_ps_bad_filter(fake, capsys, flt):
    assert main(["ps", "--filter", flt]) == 1
    assert "invalid --filter" in capsys.readouterr().err


def test_logs_until(fake, capsys):
    FakeRuntime.logs_by_name = {"demo-db-1": [LogRecord("2024-05-01T10:00:00.5Z", "stdout", "early\n"),
                                              LogRecord("2024-05-01T10:00:02.0Z", "stdout", "late\n")]}
    assert main(["logs", "--no-color", "--until", "2024-05-01T10:00:01Z", "db"]) == 0
    out = capsys.readouterr().out
    assert "early" in out and "late" not in out
    assert main(["logs", "--until", "yesterday-ish"]) == 1
    assert "invalid --until value" in capsys.readouterr().err


def test_up_timestamps_prefix_lines(fake, capsys):
    FakeRuntime.logs_by_name = {"demo-db-1": [LogRecord("2024-05-01T10:00:00.000000001Z", "stdout", "ready\n")]}
    FakeRuntime.codes = {"demo-db-1": 0, "demo-web-1": 0}
    assert main(["--ansi", "never", "up", "--timestamps"]) == 0
    assert "db-1   | 2024-05-01T10:00:00.000000001Z ready" in capsys.readouterr().out


def test_up_attach_dependencies_incompatible_with_attach(fake, capsys):
    assert main(["up", "--attach", "web", "--attach-dependencies"]) == 1
    assert "incompatible" in capsys.readouterr().err


# ------------------------------------------------------------------ the pieces behind the flags


def test_plan_printer_words():
    from composer.cli.project_common import PlanPrinter
    from composer.project.base import Event

    out, err = io.StringIO(), io.StringIO()
    p = PlanPrinter(out, err)
    p(Event("image", "demo-web", "Build", "web", "no image yet", planned=True))
    p(Event("container", "demo-web-1", "Start", "web", "", planned=True))
    p(Event("container", "demo-web-1", "Started", "web"))  # not a plan step: not printed
    p.done()
    assert out.getvalue() == ("DRY-RUN MODE -  Image demo-web  Build: no image yet\n"
                              "DRY-RUN MODE -  Container demo-web-1  Start\n")


def test_attach_dependencies_follows_what_up_started():
    from composer.project.attach import AttachOptions, plan

    infos = [Info("demo-db-1", "db"), Info("demo-web-1", "web")]
    assert plan(None, infos, AttachOptions(services=("web",))).followed == {"web"}
    assert plan(None, infos, AttachOptions(services=("web",), attach_dependencies=True)).followed == {"db", "web"}


def _project(tmp_path, text: str):
    from composer.config import LoadOptions, load_project

    (tmp_path / "compose.yaml").write_text(text)
    return load_project(LoadOptions(files=(str(tmp_path / "compose.yaml"),), environ={}))


BAKE_STACK = """
name: demo
services:
  web:
    build:
      context: .
      args: {A: "1"}
      target: final
      tags: ["x:1"]
      labels: {a: b}
      no_cache: true
      network: host
    image: myweb:1
    depends_on: [db]
  db:
    build: ./db
  cache:
    image: redis
"""


def test_bake_file_has_docker_compose_shape(tmp_path):
    """The shape `docker compose build --print` prints (checked against v2.40.3): group `default`
    naming the services asked for, a target per service with `build:`, those asked for and their
    dependencies, absolute context and dockerfile, args merged with --build-arg."""
    from composer.project.builds import bake_file

    (tmp_path / "db").mkdir()
    project = _project(tmp_path, BAKE_STACK)
    bake = bake_file(project, ("web",), (("B", "2"),))
    assert bake["group"] == {"default": {"targets": ["web"]}}
    assert sorted(bake["target"]) == ["db", "web"]
    web = bake["target"]["web"]
    assert web == {"context": str(tmp_path), "dockerfile": str(tmp_path / "Dockerfile"),
                   "args": {"A": "1", "B": "2"}, "labels": {"a": "b"}, "tags": ["x:1", "myweb:1"],
                   "target": "final", "no-cache": True, "network": "host", "output": ["type=docker"]}
    assert bake["target"]["db"]["tags"] == ["demo-db"]
    every = bake_file(project)
    assert every["group"]["default"]["targets"] == ["db", "web"]  # `cache` has no build


def test_build_print_prints_json(tmp_path, monkeypatch, capsys):
    (tmp_path / "db").mkdir()
    (tmp_path / "compose.yaml").write_text(BAKE_STACK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)
    monkeypatch.setenv("COMPOSER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMPOSER_DATA_DIR", str(tmp_path / "data"))
    assert main(["build", "--print", "--with-dependencies", "web"]) == 0
    bake = json.loads(capsys.readouterr().out)
    assert bake["group"]["default"]["targets"] == ["db", "web"]
    assert not (tmp_path / "state").exists() and not (tmp_path / "data").exists()  # nothing built


def test_recreate_reason_names_changed_keys(tmp_path):
    from dataclasses import replace

    from composer.config.serialize import changed_keys, config_key_hashes

    svc = _project(tmp_path, "services:\n  a:\n    image: busybox\n    environment: {X: '1'}\n").services["a"]
    before = config_key_hashes(svc)
    assert "," not in before and "=" not in before  # label listings join k=v pairs with commas
    assert changed_keys(before, svc) == []
    changed = replace(svc, environment=(("X", "2"),), command=("true",))
    assert changed_keys(before, changed) == ["command", "environment"]
    assert changed_keys("garbled=1,x", changed) == []  # not a key list: nothing said


def test_run_capabilities_add_to_the_service(tmp_path):
    from composer.project.oneoff import OneOffOptions, oneoff_service

    svc = _project(tmp_path, "services:\n  a:\n    image: busybox\n    cap_add: [SYS_TIME]\n").services["a"]
    out = oneoff_service(svc, OneOffOptions(service="a", cap_add=("net_admin",), cap_drop=("CHOWN",)))
    assert out.cap_add == ("SYS_TIME", "NET_ADMIN") and out.cap_drop == ("CHOWN",)


def test_pull_ignore_failures_goes_on(tmp_path, monkeypatch):
    from composer.errors import ImageError
    from composer.images import pull as pullmod

    class Store:
        def exists(self, ref):
            return False

    project = _project(tmp_path, "services:\n  a:\n    image: nowhere/a\n  b:\n    image: nowhere/b\n")
    pulled, failed = [], []

    def fake_pull(store, ref, progress=None):
        if ref.endswith("/a"):
            raise ImageError("registry unreachable")
        pulled.append(ref)

    monkeypatch.setattr(pullmod, "pull_image", fake_pull)
    with pytest.raises(ImageError, match="service 'a'"):
        pullmod.pull_project_images(project, Store())
    assert pullmod.pull_project_images(project, Store(), on_failure=lambda s, e: failed.append(s)) == ["nowhere/b"]
    assert failed == ["a"]


@pytest.mark.parametrize("argv", [["exec", "-T", "web", "true"], ["container", "rm", "x"], ["wait", "web"],
                                  ["exec", "--dry-run", "web", "true"]])
def test_dry_run_refused_by_verbs_without_a_plan(fake, capsys, argv):
    """A verb that would act for real refuses --dry-run rather than ignore it."""
    assert main(["--dry-run", *argv]) == 1
    assert "--dry-run is not supported" in capsys.readouterr().err
    assert FakeRunner.calls == []


class _Stack:
    """What images.prepare reads of a Stack: the model, the store's exists, the event reporter."""

    def __init__(self, model, present):
        self.model, self.events = model, []
        self.store = type("Store", (), {"exists": lambda _self, ref: ref in present})()
        self.report = self

    def need_model(self):
        return self.model

    def emit(self, kind, name, action, service=None, detail="", *, planned=False):
        self.events.append((action, name, detail))


@pytest.mark.parametrize("pull, expect", [
    ("missing", [("Build", "demo-app", "no image yet"), ("Pull", "redis", "not in the store")]),
    ("always", [("Build", "demo-app", "no image yet"), ("Pull", "busybox", "--pull always"),
                ("Pull", "redis", "--pull always")]),
    ("never", [("Build", "demo-app", "no image yet")]),
    ("build", [("Build", "demo-app", "--build"), ("Build", "demo-built", "--build"),
               ("Pull", "redis", "not in the store")]),
])
def test_up_pull_modes_in_a_dry_run(tmp_path, pull, expect):
    """`up --pull MODE`: what up's image step would build and pull (the dry run reports the same
    choice the real run makes)."""
    from composer.project.images import prepare

    (tmp_path / "app").mkdir()
    project = _project(tmp_path, "name: demo\nservices:\n  app:\n    build: ./app\n  built:\n    build: ./app\n"
                                 "  base:\n    image: busybox\n  cache:\n    image: redis\n")
    stack = _Stack(project, {"busybox", "demo-built"})
    prepare(stack, pull=pull, dry_run=True)
    assert stack.events == expect


def test_build_pull_and_build_args_reach_the_builder(monkeypatch, tmp_path):
    """`build --pull` (or `build: {pull: true}`) pulls FROM images anew; --build-arg overrides the file's args."""
    from composer.images.dockerfile import builder

    seen = []
    monkeypatch.setattr(builder, "build", lambda store, options, **kw: seen.append(options))
    svc = _project(tmp_path, "services:\n  a:\n    build:\n      context: .\n      args: {A: '1', B: '2'}\n"
                   ).services["a"]
    builder.build_service_image(svc.build, "demo-a", None, pull=True, build_args=(("B", "3"),))
    assert seen[0].pull and dict(seen[0].build_args) == {"A": "1", "B": "3"}
    builder.build_service_image(svc.build, "demo-a", None)
    assert not seen[1].pull and dict(seen[1].build_args) == {"A": "1", "B": "2"}


def test_up_plan_report(tmp_path):
    """What a dry up reports from the plan service.plan made: reasons in words, a start after each
    create/recreate, the restart of a `restart: true` dependent of a recreated service, a recreate
    that depends on an image not pulled yet, orphans removed with --remove-orphans."""
    from types import SimpleNamespace

    from composer.project.base import UpOptions
    from composer.project.up import report_plan
    from composer.service.service import Action

    project = _project(tmp_path, "name: demo\nservices:\n  db:\n    image: busybox\n  web:\n    image: busybox\n"
                                 "    depends_on: {db: {condition: service_started, restart: true}}\n"
                                 "  api:\n    image: nowhere/api\n")
    events = []
    stack = SimpleNamespace(name="demo", model=project, warn_orphans=lambda found: events.append(("warn",)),
                            emit=lambda kind, name, action, service=None, detail="", planned=False:
                            events.append((name, action, detail)))
    running = SimpleNamespace(name="demo-web-1")
    old_api = SimpleNamespace(name="demo-api-1")
    plans = {"db": [Action("create", "db", 1)], "web": [Action("noop", "web", 1, running)],
             "api": [Action("recreate", "api", 1, old_api, "image changed"), Action("create", "api", 2)]}
    orphan = SimpleNamespace(name="demo-old-1", label=lambda key, default=None: "old")
    report_plan(stack, ["api", "db", "web"], plans, UpOptions(remove_orphans=True), [orphan], {"api"})
    assert events == [
        ("demo-old-1", "Remove", "orphan"),
        ("demo-api-1", "Recreate", "image not in the store yet (if the one pulled or built differs)"),
        ("demo-api-1", "Start", ""), ("demo-api-2", "Create", "not created yet"), ("demo-api-2", "Start", ""),
        ("demo-db-1", "Create", "not created yet"), ("demo-db-1", "Start", ""),
        ("demo-web-1", "Restart", "dependency db was recreated"),
    ]
    events.clear()
    report_plan(stack, ["db", "web"], plans, UpOptions(no_start=True), [orphan])
    assert events == [("warn",), ("demo-db-1", "Create", "not created yet")]
