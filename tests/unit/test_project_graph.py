"""The dependency graph (node -> its dependencies, graphlib's form): generations, reverse order, cycles,
parallel runs with failures and skips."""

from __future__ import annotations

import threading
import time

import networkx as nx
import pytest

from composer.config import LoadOptions, load_project
from composer.errors import ConfigError, NotFoundError
from composer.project.parallel import find_cycle, generations, map_parallel, run_graph
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
    assert runner.stack.select(["lb"], no_deps=False) == ["app", "cache", "db", "lb"]
    assert runner.stack.select(["lb"], no_deps=True) == ["lb"]
    with pytest.raises(NotFoundError, match="no such service: nope"):
        runner.stack.select(["nope"], no_deps=False)


def test_cycle_is_a_config_error(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n")
    try:
        model = load_project(LoadOptions(cwd=str(tmp_path), environ={}))
    except ConfigError:
        return  # the loader already refuses it: fine
    with pytest.raises(ConfigError, match="cycle"):
        ProjectRunner(model, runtime=Runtime(tmp_path / "s", tmp_path / "d"))


def test_run_graph_order_parallel_and_skips():
    g = {"app": ["db"], "lb": ["app"], "app2": ["cache"]}
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
    g = nx.DiGraph([("db", "app")]).pred  # a networkx graph's predecessor view is a graph too
    seen = []
    out = run_graph(g, lambda n: seen.append(n), reverse=True, skip_dependents=False)
    assert seen == ["app", "db"] and out.ok


def test_between_called_after_each_generation():
    g = {"b": ["a"]}
    calls = []
    run_graph(g, lambda n: None, between=calls.append)
    assert calls == [["a"], ["b"]]


def test_run_graph_reverse_skips_the_dependencies_of_a_failure():
    def fn(node):
        if node == "app":
            raise RuntimeError("app broke")

    out = run_graph({"app": ["db"], "lb": ["app"]}, fn, reverse=True)
    assert out.errors.keys() == {"app"} and out.skipped == {"db": "app"} and out.results == {"lb": None}


def test_cycle_named_by_graphlib():
    g = {"app": ["db"], "lb": ["app"], "db": ["lb"], "alone": []}
    cycle = find_cycle(g)
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["app", "db", "lb"]
    for a, b in zip(cycle, cycle[1:]):
        assert a in g[b]  # each is a dependency of the next
    with pytest.raises(ValueError):
        generations(g)
    assert find_cycle({"app": ["db"]}) is None


def test_map_parallel_collects_errors():
    out = map_parallel([1, 2, 3], lambda i: 1 / (i - 2))
    assert set(out.results) == {1, 3} and isinstance(out.errors[2], ZeroDivisionError)


def test_runner_without_model_needs_a_name(tmp_path):
    with pytest.raises(NotFoundError):
        ProjectRunner(None, runtime=Runtime(tmp_path / "s", tmp_path / "d"))
    r = ProjectRunner(None, name="x", runtime=Runtime(tmp_path / "s", tmp_path / "d"))
    assert r.containers() == [] and list(r.graph) == []


def test_up_path_orders_with_graphlib_not_networkx():
    """networkx's import (~70 ms) stays off `up`: the runner and the up command order with graphlib."""
    import subprocess
    import sys

    code = ("import sys, composer.cli.up_cmd, composer.project.project, composer.project.parallel\n"
            "print('networkx' in sys.modules, 'graphlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
