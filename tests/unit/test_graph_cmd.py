"""`composer graph`: the dependency graph as a tree, dot, mermaid and json; labelled edges, the
transitive reduction, profiles, subgraphs and the errors a user can make. No root."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pydot
import pytest

from composer.cli.main import main
from composer.config import LoadOptions, load_project
from composer.config.model import Dependency, FrozenMap
from composer.errors import ConfigError, NotFoundError
from composer.project.graph import stack_graph

ROOT = Path(__file__).resolve().parents[2]
# pydot's parser still calls pyparsing's camelCase names, which pyparsing 3.3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pydot.dot_parser")

STACK = """
name: shop
services:
  db:
    image: postgres
  cache:
    image: redis
  migrate:
    image: app
    depends_on: {db: {condition: service_healthy}}
  api:
    image: app
    depends_on:
      migrate: {condition: service_completed_successfully}
      db: {condition: service_healthy, restart: true}
    links: ["cache:kv"]
  web:
    build: ./web
    depends_on: [api, cache]
  debug:
    image: busybox
    profiles: [debug]
    depends_on: [web]
"""

DOT = '''digraph "shop" {
  rankdir=TB;
  node [shape=box];
  // 1 implied edge left out (--no-reduce shows them)
  "api";
  "cache";
  "db";
  "migrate";
  "web";
  "api" -> "cache" [label="started, restart, link: kv"];
  "api" -> "db" [label="healthy, restart"];
  "api" -> "migrate" [label="completed"];
  "migrate" -> "db" [label="healthy"];
  "web" -> "api" [label="started"];
}
'''

MERMAID = '''graph TD
  %% 1 implied edge left out (--no-reduce shows them)
  s0["api"]
  s1["cache"]
  s2["db"]
  s3["migrate"]
  s4["web"]
  s0 -->|started, restart, link: kv| s1
  s0 -->|healthy, restart| s2
  s0 -->|completed| s3
  s3 -->|healthy| s2
  s4 -->|started| s0
'''

TREE = """shop
└── web
    └── api  (started)
        ├── cache  (started, restart, link: kv)
        ├── db  (healthy, restart)
        └── migrate  (completed)
            └── db  (healthy)
1 implied edge left out (--no-reduce shows them)
"""


@pytest.fixture
def stack(tmp_path, monkeypatch):
    (tmp_path / "compose.yaml").write_text(STACK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_dot_labels_conditions_restart_and_link_aliases(stack, capsys):
    code, out, _ = run(capsys, "graph", "--format", "dot")
    assert code == 0 and out == DOT
    (graph,) = pydot.graph_from_dot_data(out)  # a real dot parser reads it back
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"')): e.get_label().strip('"')
             for e in graph.get_edges()}
    assert edges[("api", "db")] == "healthy, restart" and len(edges) == 5
    assert sorted(n.get_name().strip('"') for n in graph.get_nodes() if n.get_name() != "node") == \
        ["api", "cache", "db", "migrate", "web"]


_MERMAID_LINE = re.compile(r'  (%% .*|s\d+\["[^"|]+"\]|s\d+ -->\|[^"|\[\](){}]+\| s\d+)')


def test_mermaid_is_graph_td_with_labelled_edges(stack, capsys):
    code, out, _ = run(capsys, "graph", "--format", "mermaid")
    assert code == 0 and out == MERMAID
    lines = out.splitlines()
    assert lines[0] == "graph TD" and all(_MERMAID_LINE.fullmatch(line) for line in lines[1:])


def test_json_has_every_field_and_the_implied_edge(stack, capsys):
    code, out, _ = run(capsys, "graph", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["project"] == "shop"
    assert [s["name"] for s in doc["services"]] == ["api", "cache", "db", "migrate", "web"]
    web = next(s for s in doc["services"] if s["name"] == "web")
    assert web["image"] is None and web["build"] == str(stack / "web")
    api_db = next(d for d in doc["dependencies"] if (d["service"], d["depends_on"]) == ("api", "db"))
    assert api_db == {"service": "api", "depends_on": "db", "condition": "service_healthy", "required": True,
                      "restart": True, "links": [], "volumes_from": False, "network_mode": False,
                      "label": "healthy, restart"}
    assert [(d["service"], d["depends_on"]) for d in doc["implied"]] == [("web", "cache")]


def test_tree_is_the_default(stack, capsys):
    code, out, _ = run(capsys, "--ansi", "never", "graph")
    assert code == 0 and out == TREE


def test_reduction_drops_only_plain_redundant_edges(stack):
    model = load_project(LoadOptions(cwd=str(stack), environ={}))
    g = stack_graph(model)
    pairs = {(e.service, e.dependency) for e in g.edges}
    # web -> cache is implied by web -> api -> cache and says nothing more: left out
    assert ("web", "cache") not in pairs and [(e.service, e.dependency) for e in g.implied] == [("web", "cache")]
    # api -> db is implied by api -> migrate -> db too, but waits for health and restarts: kept
    assert ("api", "db") in pairs
    full = stack_graph(model, reduce=False)
    assert {(e.service, e.dependency) for e in full.edges} == pairs | {("web", "cache")} and not full.implied


def test_no_reduce_shows_every_edge(stack, capsys):
    _, out, _ = run(capsys, "graph", "--no-reduce", "--format", "mermaid")
    assert "s4 -->|started| s1" in out and "implied" not in out


def test_services_show_a_subgraph_of_what_they_need(stack, capsys):
    code, out, _ = run(capsys, "graph", "--format", "dot", "migrate")
    assert code == 0
    assert re.findall(r'^  "(\w+)";$', out, re.M) == ["db", "migrate"]
    assert '"migrate" -> "db" [label="healthy"];' in out and "api" not in out


def test_profiles_are_honoured_as_config_does(stack, capsys):
    _, out, _ = run(capsys, "graph", "--format", "json")
    assert "debug" not in [s["name"] for s in json.loads(out)["services"]]
    _, out, _ = run(capsys, "--profile", "debug", "graph", "--format", "json")
    assert ("debug", "web") in [(d["service"], d["depends_on"]) for d in json.loads(out)["dependencies"]]
    # naming a service enables its profiles, as `config SERVICE` and `up SERVICE` do
    _, out, _ = run(capsys, "--ansi", "never", "graph", "debug")
    assert out.startswith("shop\n└── debug  profiles: debug\n    └── web  (started)\n")


def test_unknown_service_is_one_short_error(stack, capsys):
    code, out, err = run(capsys, "graph", "nope")
    assert code != 0 and out == "" and err.startswith("composer: ") and "nope" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    model = load_project(LoadOptions(cwd=str(stack), environ={}))
    with pytest.raises(NotFoundError, match="no such service: nope"):
        stack_graph(model, ["nope"])
    with pytest.raises(NotFoundError, match="'debug' is not enabled by the active profiles"):
        stack_graph(model, ["debug"])


def test_cycle_is_named_with_its_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "compose.yaml").write_text(
        "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n"
        "  c: {image: x, links: [a]}\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "graph")
    assert code == ConfigError.exit_code and out == ""
    assert "compose.yaml" in err and "cycle" in err and re.search(r"a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c", err)


def test_library_refuses_a_cycle_the_loader_did_not_see(stack):
    # a model built by other code than the loader (which refuses cycles itself)
    model = load_project(LoadOptions(cwd=str(stack), environ={}))
    db = dataclasses.replace(model.services["db"], depends_on=FrozenMap({"web": Dependency()}))
    model = dataclasses.replace(model, services=FrozenMap({**model.services, "db": db}))
    with pytest.raises(ConfigError) as err:
        stack_graph(model)
    assert str(err.value).startswith(f"{stack / 'compose.yaml'}: dependency cycle: ")
    assert set(re.findall(r"\w+", str(err.value).split("cycle: ")[1].split(" (")[0])) == {"db", "web", "api"}


@pytest.mark.parametrize("example, tree", [
    ("busybox", "example-busybox\n└── lb\n    └── app  (started, link: backend)\n        └── db  (started)\n"),
    ("stack", "example\n└── lb\n    └── app  (started)\n        └── redis  (healthy)\n"),
])
def test_examples_end_to_end(example, tree):
    """The console entry on the repository's examples, as a user types it."""
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("COMPOSE_FILE", None)
    cmd = [sys.executable, "-m", "composer", "-f", str(ROOT / "examples" / example / "compose.yaml")]
    out = subprocess.run([*cmd, "--ansi", "never", "graph"], capture_output=True, text=True, env=env, check=True)
    assert out.stdout == tree and out.stderr == ""
    dot = subprocess.run([*cmd, "graph", "--format", "dot"], capture_output=True, text=True, env=env, check=True)
    assert len(pydot.graph_from_dot_data(dot.stdout)[0].get_edges()) == 2
    mm = subprocess.run([*cmd, "graph", "--format", "mermaid", "app"], capture_output=True, text=True, env=env,
                        check=True)
    assert mm.stdout.splitlines()[0] == "graph TD" and len(mm.stdout.splitlines()) == 4  # app, its db, one edge
