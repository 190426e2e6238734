"""The dependency graph: generations, reverse order, parallel runs with failures and skips."""

from __future__ import annotations

import threading
import time

import networkx as nx
import pytest

from composer.config import LoadOptions, load_project
from composer.errors import ConfigError, NotFoundError
from composer.project.parallel import generations, map_parallel, run_graph
from composer.project.project import ProjectRunner
from composer.runtime import Runtime

STACK = """
name: g
services:
  db: {image: busybox}
  cache: {image: busybox}
  app: {image: busybox, depends_on: [db, cache]}
  worker: {image: busybox, links: ["db"]}
  lb: {image: busybox, depends_on: {app: {condition: service_started}}}
  side: {image: busybox, volumes_from: [worker]}
"""


@pytest.fixture
def runner(tmp_path):
    (tmp_path / "compose.yaml").write_text(STACK)
    model = load_project(LoadOptions(cwd=str(tmp_path), environ={}))
    return ProjectRunner(model, runtime=Runtime(tmp_path / "state", tmp_path / "data"))


def test_generations_forward_and_reverse(runner):
    assert generations(runner.graph) == [["cache", "db"], ["app", "worker"], ["lb", "side"]]
    assert generations(runner.graph, reverse=True) == [["lb", "side"], ["app", "worker"], ["cache", "db"]]


def test_select_adds_dependencies(runner):
    assert runner._select(["lb"], no_deps=False) == ["app", "cache", "db", "lb"]
    assert runner._select(["lb"], no_deps=True) == ["lb"]
    with pytest.raises(NotFoundError, match="no such service: nope"):
        runner._select(["nope"], no_deps=False)


def test_cycle_is_a_config_error(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n")
    try:
        model = load_project(LoadOptions(cwd=str(tmp_path), environ={}))
    except ConfigError:
        return  # the loader already refuses it: fine
    with pytest.raises(ConfigError, match="cycle"):
        ProjectRunner(model, runtime=Runtime(tmp_path / "s", tmp_path / "d"))


def test_run_graph_order_parallel_and_skips():
    g = nx.DiGraph([("db", "app"), ("app", "lb"), ("cache", "app2")])
    order, lock = [], threading.Lock()
    active, peak = [0], [0]

    def fn(node):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
            order.append(node)
        if node == "db":
            raise RuntimeError("db broke")
        return node.upper()

    out = run_graph(g, fn)
    assert peak[0] == 2  # db and cache ran together
    assert out.errors.keys() == {"db"} and str(out.errors["db"]) == "db broke"
    assert out.skipped == {"app": "db", "lb": "app"}
    assert out.results == {"cache": "CACHE", "app2": "APP2"}
    assert order.index("cache") < order.index("app2")


def test_run_graph_reverse_does_not_skip():
    g = nx.DiGraph([("db", "app")])
    seen = []
    out = run_graph(g, lambda n: seen.append(n), reverse=True, skip_dependents=False)
    assert seen == ["app", "db"] and out.ok


def test_between_called_after_each_generation():
    g = nx.DiGraph([("a", "b")])
    calls = []
    run_graph(g, lambda n: None, between=calls.append)
    assert calls == [["a"], ["b"]]


def test_map_parallel_collects_errors():
    out = map_parallel([1, 2, 3], lambda i: 1 / (i - 2))
    assert set(out.results) == {1, 3} and isinstance(out.errors[2], ZeroDivisionError)


def test_runner_without_model_needs_a_name(tmp_path):
    with pytest.raises(NotFoundError):
        ProjectRunner(None, runtime=Runtime(tmp_path / "s", tmp_path / "d"))
    r = ProjectRunner(None, name="x", runtime=Runtime(tmp_path / "s", tmp_path / "d"))
    assert r.containers() == [] and list(r.graph) == []
