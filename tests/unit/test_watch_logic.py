"""composer watch's pure parts: the ignore set (what a rule leaves alone and why), the debouncer
(batches after a quiet window, capped during long bursts) and the batch planner (per service:
rebuild, then sync, restart, exec, each once)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from composer.config.model import WatchExec, WatchRule
from composer.watch.debounce import Debouncer
from composer.watch.ignore import IgnoreSet
from composer.watch.plan import plan
from composer.watch.rules import Rule


# ------------------------------------------------------------------ ignore set


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "app" / "src").mkdir(parents=True)
    (tmp_path / "app" / ".dockerignore").write_text("src/build\n*.log\n")
    (tmp_path / "app" / "Dockerfile.dev.dockerignore").write_text("src/dev-only\n")
    return tmp_path


def test_editor_temp_files_and_git_are_ignored(tree):
    root = str(tree / "app" / "src")
    s = IgnoreSet(root)
    for name in ("x.py.swp", ".x.py.swx", "4913", "x.py~", "#x.py#", ".#x.py", "x.py___jb_tmp___",
                 "x.py___jb_old___"):
        assert "editor temp files" in s.why(f"{root}/pkg/{name}"), name
    assert s.why(f"{root}/.git/HEAD") == "matches .git/"
    assert s.prune(f"{root}/.git")
    assert s.why(f"{root}/pkg/x.py") is None


def test_build_context_dockerignore_applies_inside_the_context(tree):
    ctx = str(tree / "app")
    root = f"{ctx}/src"
    s = IgnoreSet(root, context=ctx, dockerfile="Dockerfile")
    assert s.why(f"{root}/build/out.o") == "matches src/build in .dockerignore"
    assert s.prune(f"{root}/build")
    assert s.why(f"{root}/x.log") is None  # docker anchors .dockerignore patterns at the context root
    # <Dockerfile>.dockerignore wins over .dockerignore
    s = IgnoreSet(root, context=ctx, dockerfile="Dockerfile.dev")
    assert s.why(f"{root}/build/out.o") is None
    assert "Dockerfile.dev.dockerignore" in s.why(f"{root}/dev-only/a")


def test_rule_ignore_is_relative_to_the_rule_path_and_prunes(tree):
    root = str(tree / "app" / "src")
    s = IgnoreSet(root, ignore=("node_modules/", "**/*.pyc"))
    assert s.prune(f"{root}/node_modules")
    assert s.why(f"{root}/a/b/c.pyc") == "matches the rule's ignore **/*.pyc"
    assert s.why(f"{root}/a/b/c.py") is None
    # an exception could bring a child back: the directory keeps its watch
    s = IgnoreSet(root, ignore=("vendor/", "!vendor/keep"))
    assert not s.prune(f"{root}/vendor")


def test_include_takes_only_matching_files(tree):
    root = str(tree / "app" / "src")
    s = IgnoreSet(root, include=("*.py",))
    assert s.why(f"{root}/deep/er/x.py") is None  # a name pattern matches at any depth
    assert s.why(f"{root}/x.txt") == "matches none of the rule's include patterns"
    assert s.why(f"{root}/deep", is_dir=True) is None  # directories are walked, not filtered


# ------------------------------------------------------------------ debouncer


def test_a_burst_becomes_one_batch_after_the_quiet_window():
    d = Debouncer(quiet=0.05, cap=5)
    for p in ("a", "b", "a", "c"):
        d.add(p)
    t0 = time.monotonic()
    assert d.get() == ["a", "b", "c"]
    assert 0.03 < time.monotonic() - t0 < 0.5
    assert d.get(timeout=0.05) == []


def test_a_long_burst_still_produces_batches():
    d = Debouncer(quiet=0.05, cap=0.15)
    stop = threading.Event()

    def burst():
        i = 0
        while not stop.is_set():
            d.add(i)
            i += 1
            time.sleep(0.01)  # never quiet for 50 ms

    t = threading.Thread(target=burst)
    t.start()
    try:
        t0 = time.monotonic()
        first = d.get()
        second = d.get()
        took = time.monotonic() - t0
    finally:
        stop.set()
        t.join()
    assert first and second and not set(first) & set(second)
    assert took < 1.0


def test_close_ends_a_waiting_get():
    d = Debouncer()
    threading.Timer(0.05, d.close).start()
    assert d.get() is None


# ------------------------------------------------------------------ planner


def _rule(service, number, action, path, target=None, ignore=(), hook=None):
    spec = WatchRule(action=action, path=path, target=target, ignore=ignore, exec=hook, where=f"c.yaml:{number}")
    return Rule(service, number, spec, path, path, IgnoreSet(path, ignore=ignore))


def test_plan_orders_rebuild_sync_restart_exec_once_per_service():
    hook = WatchExec(command=("kill", "-HUP", "1"))
    rules = [_rule("web", 1, "sync+restart", "/p/web/src", "/app/src"),
             _rule("web", 2, "sync+exec", "/p/web/static", "/app/static", hook=hook),
             _rule("api", 1, "rebuild", "/p/api"),
             _rule("api", 2, "sync", "/p/api/src", "/app")]
    p = plan(["/p/web/src/a.py", "/p/web/src/b.py", "/p/web/static/x.css", "/p/api/src/m.py",
              "/p/README.md"], rules, {"/p/compose.yaml"})
    assert [(step, s) for step, s, _ in p.steps()] == [("rebuild", "api"), ("sync", "web"), ("restart", "web"),
                                                      ("exec", "web")]
    web = p.services["web"]
    assert web.syncs[rules[0]] == ["/p/web/src/a.py", "/p/web/src/b.py"]
    assert web.execs == [rules[1]]
    assert p.notes == [("/p/README.md", "matches no watch rule")]
    assert not p.reload


def test_plan_reload_and_ignored_reasons():
    rules = [_rule("web", 1, "sync", "/p/src", "/app", ignore=("*.tmp",))]
    p = plan(["/p/compose.yaml", "/p/src/x.tmp"], rules, {"/p/compose.yaml"})
    assert p.reload and not p.services
    assert p.notes == [("/p/src/x.tmp", "matches the rule's ignore *.tmp (web rule 1 (sync /p/src, c.yaml:1))")]


def test_plan_path_taken_by_another_rule_has_no_note():
    rules = [_rule("web", 1, "sync", "/p/src", "/app", ignore=("gen/",)), _rule("web", 2, "restart", "/p/src/gen")]
    p = plan(["/p/src/gen/x"], rules)
    assert p.services["web"].restart and not p.notes


def test_rule_targets():
    r = _rule("web", 1, "sync", "/p/src", "/app/src")
    assert r.target_of("/p/src") == "/app/src"
    assert r.target_of("/p/src/a/b.py") == "/app/src/a/b.py"
    assert r.covers("/p/src/x") and not r.covers("/p/srcx")
    assert os.path.basename(r.target_of("/p/src/a/b.py")) == "b.py"
