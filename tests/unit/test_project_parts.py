"""ProjectRunner split into parts (project_base + mixins): the facade keeps the API the CLI and
tests use, orphans are found and reported once for up and down, steps run in dependency order."""

from __future__ import annotations

import threading

import pytest

from composer.config import LoadOptions, load_project
from composer.project.base import number
from composer.project.project import DownOptions, Event, ProjectRunner, UpOptions
from composer.runtime import Runtime

STACK = """
name: parts
services:
  db: {image: busybox}
  app: {image: busybox, depends_on: [db]}
"""


class Info:
    def __init__(self, name: str, service: str, num: str = "1") -> None:
        self.name, self.id = name, name
        self.labels = {"composer.service": service, "composer.project": "parts", "composer.number": num}

    def label(self, key: str) -> str | None:
        return self.labels.get(key)


@pytest.fixture
def runner(tmp_path):
    (tmp_path / "compose.yaml").write_text(STACK)
    model = load_project(LoadOptions(cwd=str(tmp_path), environ={}))
    events: list[Event] = []
    r = ProjectRunner(model, runtime=Runtime(tmp_path / "state", tmp_path / "data"), on_event=events.append)
    r.events = events
    return r


def test_facade_keeps_the_api():
    for name in ("up", "create", "down", "start", "stop", "restart", "kill", "pause", "rm", "wait_first",
                 "wait_ready", "containers", "container_for", "exec", "port", "top", "images", "create_oneoff",
                 "start_oneoff", "graph", "emit", "_select"):
        assert hasattr(ProjectRunner, name), name
    assert UpOptions().no_start is False and DownOptions().volumes is False


def test_number_label():
    assert number(Info("a", "db", "3")) == 3
    assert number(Info("a", "db", "x")) == 0


def test_orphans_found_and_warned_once(runner):
    infos = [Info("parts-db-1", "db"), Info("parts-old-1", "old"), Info("parts-old-2", "old", "2")]
    orphans = runner._orphans_in(infos)
    assert [c.name for c in orphans] == ["parts-old-1", "parts-old-2"]
    runner._orphans(infos, remove=False, timeout=None)  # up without --remove-orphans: warn, keep
    assert [(e.action, e.detail) for e in runner.events] == [
        ("Warning", "found orphan containers (old) for this project; remove them with --remove-orphans")]


def test_no_orphans_without_a_stack_file(tmp_path):
    r = ProjectRunner(None, name="parts", runtime=Runtime(tmp_path / "state", tmp_path / "data"))
    assert r._orphans_in([Info("parts-old-1", "old")]) == []


def test_run_services_in_dependency_order(runner):
    seen: list[str] = []
    lock = threading.Lock()

    def step(c):
        with lock:
            seen.append(c.label("composer.service"))

    infos = [Info("parts-app-1", "app"), Info("parts-db-1", "db")]
    runner._run_services(infos, step, reverse=False)
    assert seen == ["db", "app"]
    seen.clear()
    runner._run_services(infos, step, reverse=True)
    assert seen == ["app", "db"]
