"""The watcher on watchdog's inotify fd: ignored trees cost no watch, a new directory is watched
and what was written in it before its watch existed is reported, lost events ask for a rescan, and
the watch limit is one message naming the sysctl and how many watches the rules need."""

from __future__ import annotations

import errno
import os
import time

import pytest

from composer.watch.inotify import Tree, WatchLimitError, Watcher


def _wait(cond, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def watcher():
    got: list[str] = []
    lost: list[bool] = []
    w = Watcher(got.append, lambda: lost.append(True))
    w.got, w.lost_calls = got, lost
    yield w
    w.close()


def test_pruned_directories_cost_no_watch(tmp_path, watcher):
    for i in range(5):
        (tmp_path / "src" / f"d{i}").mkdir(parents=True)
        (tmp_path / "src" / "node_modules" / f"p{i}").mkdir(parents=True)
    n = watcher.add_tree(Tree(str(tmp_path / "src"), lambda p: os.path.basename(p) == "node_modules"))
    assert n == 6 == watcher.watches  # src and its five directories
    (tmp_path / "src" / "node_modules" / "p1" / "x.js").write_text("x")
    (tmp_path / "src" / "d1" / "y.py").write_text("y")
    assert _wait(lambda: str(tmp_path / "src" / "d1" / "y.py") in watcher.got)
    assert not any("node_modules" in p for p in watcher.got)


def test_new_directories_are_watched_and_scanned(tmp_path, watcher):
    (tmp_path / "src").mkdir()
    watcher.add_tree(Tree(str(tmp_path / "src"), lambda p: False))
    deep = tmp_path / "src" / "a" / "b" / "c"
    os.makedirs(deep)
    (deep / "f.txt").write_text("f")
    assert _wait(lambda: str(deep / "f.txt") in watcher.got)
    assert _wait(lambda: watcher.watches == 4)
    os.rename(tmp_path / "src" / "a", tmp_path / "elsewhere")  # moved away: its watches go
    assert _wait(lambda: watcher.watches == 1)
    assert str(tmp_path / "src" / "a") in watcher.got


def test_single_files_are_watched_through_their_directory(tmp_path, watcher):
    (tmp_path / "compose.yaml").write_text("")
    watcher.add_file(str(tmp_path / "compose.yaml"))
    (tmp_path / "other.txt").write_text("o")
    (tmp_path / "compose.yaml").write_text("services: {}")
    assert _wait(lambda: str(tmp_path / "compose.yaml") in watcher.got)
    assert str(tmp_path / "other.txt") not in watcher.got


def test_lost_events_ask_for_a_rescan(watcher):
    watcher.on_queue_overflow()
    watcher.on_events_lost()
    assert watcher.lost_calls == [True]


def test_the_watch_limit_is_one_clear_message(tmp_path, watcher, monkeypatch):
    for i in range(3):
        (tmp_path / f"d{i}").mkdir()

    def refuse(*args):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(watcher._fd, "add_callback", refuse)
    with pytest.raises(WatchLimitError) as err:
        watcher.add_tree(Tree(str(tmp_path), lambda p: False))
    assert "fs.inotify.max_user_watches" in str(err.value) and "need 4 more watches" in str(err.value)
