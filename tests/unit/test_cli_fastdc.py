"""composer.cli.fastdc: dataclasses built through the code cache behave exactly like plain ones,
and the cache file round-trips and is refused when others could have written it."""

from __future__ import annotations

import dataclasses
import marshal
import os

import pytest

from composer.cli import fastdc


@pytest.fixture
def cache_file(tmp_path, monkeypatch):
    path = tmp_path / "dc.marshal"
    monkeypatch.setattr(fastdc, "PATH", str(path))
    monkeypatch.setattr(fastdc, "_cache", {})
    monkeypatch.setattr(fastdc, "_new", {})
    return path


def _define():
    @dataclasses.dataclass(frozen=True)
    class Point:
        x: int
        y: int = 2
        tags: tuple[str, ...] = ()

    return Point


def test_generated_methods_are_the_same(cache_file, monkeypatch):
    monkeypatch.setattr(dataclasses, "exec", fastdc._exec, raising=False)
    Point = _define()
    p = Point(1)
    assert (p, repr(p), hash(p) == hash(Point(1))) == (Point(1, 2, ()), f"{Point.__qualname__}(x=1, y=2, tags=())", True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]
    assert fastdc._new  # compiled once, kept for the file


def test_cache_round_trip_and_reuse(cache_file, monkeypatch):
    monkeypatch.setattr(dataclasses, "exec", fastdc._exec, raising=False)
    _define()
    fastdc._save()
    loaded = fastdc._load(str(cache_file))
    assert loaded and set(loaded) == set(fastdc._new)
    monkeypatch.setattr(fastdc, "_cache", loaded)
    monkeypatch.setattr(fastdc, "_new", {})
    Point = _define()
    assert Point(5).y == 2 and not fastdc._new  # every method came from the file


def test_foreign_or_broken_files_are_ignored(cache_file):
    cache_file.write_bytes(marshal.dumps({"x": b"1"}))
    os.chmod(cache_file, 0o666)
    assert fastdc._load(str(cache_file)) == {}
    os.chmod(cache_file, 0o644)
    assert fastdc._load(str(cache_file)) == {"x": b"1"}
    cache_file.write_bytes(b"\x00garbage")
    assert fastdc._load(str(cache_file)) == {}
    assert fastdc._load(str(cache_file) + ".missing") == {}


def test_a_corrupt_entry_is_compiled_again(cache_file, monkeypatch):
    monkeypatch.setattr(dataclasses, "exec", fastdc._exec, raising=False)
    src = "def __create_fn__():\n def f(self):\n  return 7\n return f"
    monkeypatch.setattr(fastdc, "_cache", {src: b"\x00not marshal"})
    ns: dict = {}
    fastdc._exec(src, {}, ns)
    assert ns["__create_fn__"]()(None) == 7 and src in fastdc._new
