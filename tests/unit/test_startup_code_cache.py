"""composer.startup's code cache: dataclasses built through the code cache behave exactly like plain ones,
and the cache file round-trips and is refused when others could have written it."""

from __future__ import annotations

import dataclasses
import marshal
import os

import pytest

from composer import startup


@pytest.fixture
def cache_file(tmp_path, monkeypatch):
    path = tmp_path / "dc.marshal"
    monkeypatch.setattr(startup, "CODE_CACHE", str(path))
    monkeypatch.setattr(startup, "_cache", {})
    monkeypatch.setattr(startup, "_new", {})
    return path


def _define():
    @dataclasses.dataclass(frozen=True)
    class Point:
        x: int
        y: int = 2
        tags: tuple[str, ...] = ()

    return Point


def test_generated_methods_are_the_same(cache_file, monkeypatch):
    monkeypatch.setattr(dataclasses, "exec", startup._exec, raising=False)
    Point = _define()
    p = Point(1)
    assert (p, repr(p), hash(p) == hash(Point(1))) == (Point(1, 2, ()), f"{Point.__qualname__}(x=1, y=2, tags=())", True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]
    assert startup._new  # compiled once, kept for the file


def test_cache_round_trip_and_reuse(cache_file, monkeypatch):
    monkeypatch.setattr(dataclasses, "exec", startup._exec, raising=False)
    _define()
    startup._save()
    loaded = startup._load(str(cache_file))
    assert loaded and set(loaded) == set(startup._new)
    monkeypatch.setattr(startup, "_cache", loaded)
    monkeypatch.setattr(startup, "_new", {})
    Point = _define()
    assert Point(5).y == 2 and not startup._new  # every method came from the file


def test_foreign_or_broken_files_are_ignored(cache_file):
    cache_file.write_bytes(marshal.dumps({"x": b"1"}))
    os.chmod(cache_file, 0o666)
    assert startup._load(str(cache_file)) == {}
    os.chmod(cache_file, 0o644)
    assert startup._load(str(cache_file)) == {"x": b"1"}
    cache_file.write_bytes(b"\x00garbage")
    assert startup._load(str(cache_file)) == {}
    assert startup._load(str(cache_file) + ".missing") == {}


def test_a_corrupt_entry_is_compiled_again(cache_file, monkeypatch):
    monkeypatch.setattr(dataclasses, "exec", startup._exec, raising=False)
    src = "def __create_fn__():\n def f(self):\n  return 7\n return f"
    monkeypatch.setattr(startup, "_cache", {src: b"\x00not marshal"})
    ns: dict = {}
    startup._exec(src, {}, ns)
    assert ns["__create_fn__"]()(None) == 7 and src in startup._new
