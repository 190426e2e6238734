"""The model cache (config.cache): a second identical load is answered from the cache without the
loader, and any change to what the first load read or probed (the file, a new override file,
`.env`, an env_file, an extends or included file, the environment) makes a fresh load."""

from __future__ import annotations

import os
import pickle

import pytest

from composer.config import LoadOptions, cache, load_project
from composer.config import loader as loader_mod
from composer.config.model import FrozenMap


@pytest.fixture
def stack(tmp_path):
    d = tmp_path / "app"
    d.mkdir()
    (d / "compose.yaml").write_text("services:\n  web:\n    image: busybox:${TAG:-1}\n")
    return d


@pytest.fixture
def loads(monkeypatch):
    """How many loads reached the loader."""
    calls = []
    real = loader_mod.load_project

    def counting(opts):
        calls.append(opts)
        return real(opts)

    monkeypatch.setattr(loader_mod, "load_project", counting)
    return calls


def _load(d, cache_dir, environ=None, **kw):
    return load_project(LoadOptions(environ=environ or {}, cwd=str(d), cache_dir=str(cache_dir), **kw))


def _image(project, service="web"):
    return project.services[service].image


def test_a_second_identical_load_is_answered_from_the_cache(stack, tmp_path, loads):
    first = _load(stack, tmp_path / "cache")
    second = _load(stack, tmp_path / "cache")
    assert len(loads) == 1
    assert second == first and _image(second) == "busybox:1"
    assert hash(second.services) == hash(first.services)  # FrozenMap hashes are made again, not stored


def test_an_edit_of_the_same_size_loads_again(stack, tmp_path, loads):
    _load(stack, tmp_path / "cache")
    f = stack / "compose.yaml"
    st = f.stat()
    f.write_text(f.read_text().replace("busybox", "busyboy"))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: the content decides
    assert _image(_load(stack, tmp_path / "cache")) == "busyboy:1"
    assert len(loads) == 2


@pytest.mark.parametrize("make, expect", [
    (lambda d: (d / "compose.override.yaml").write_text("services:\n  web:\n    image: other\n"), "other"),
    (lambda d: (d / ".env").write_text("TAG=2\n"), "busybox:2"),
])
def test_a_new_file_the_load_looked_for_loads_again(stack, tmp_path, loads, make, expect):
    _load(stack, tmp_path / "cache")
    make(stack)
    assert _image(_load(stack, tmp_path / "cache")) == expect


def test_the_environment_is_part_of_the_key(stack, tmp_path, loads):
    assert _image(_load(stack, tmp_path / "cache", {"TAG": "3"})) == "busybox:3"
    assert _image(_load(stack, tmp_path / "cache", {"TAG": "4"})) == "busybox:4"
    assert _image(_load(stack, tmp_path / "cache", {"TAG": "3"})) == "busybox:3"
    assert len(loads) == 2


def test_env_files_extends_and_includes_are_watched(stack, tmp_path, loads):
    (stack / "base.yaml").write_text("services:\n  base:\n    image: base:1\n")
    (stack / "inc.yaml").write_text("services:\n  inc:\n    image: inc:1\n")
    (stack / "compose.yaml").write_text(
        "include: [inc.yaml]\nservices:\n  web:\n    extends: {file: base.yaml, service: base}\n"
        "    env_file: [{path: opt.env, required: false}]\n")
    p = _load(stack, tmp_path / "cache")
    assert (_image(p), _image(p, "inc"), dict(p.services["web"].environment)) == ("base:1", "inc:1", {})
    (stack / "opt.env").write_text("A=1\n")
    assert dict(_load(stack, tmp_path / "cache").services["web"].environment) == {"A": "1"}
    (stack / "base.yaml").write_text("services:\n  base:\n    image: base:2\n")
    assert _image(_load(stack, tmp_path / "cache")) == "base:2"
    (stack / "inc.yaml").write_text("services:\n  inc:\n    image: inc:2\n")
    assert _image(_load(stack, tmp_path / "cache"), "inc") == "inc:2"
    assert len(loads) == 4
    _load(stack, tmp_path / "cache")
    assert len(loads) == 4


def test_a_failed_load_is_not_kept_and_errors_stay_errors(stack, tmp_path, loads):
    from composer.errors import ConfigError

    (stack / "compose.yaml").write_text("services:\n  web: [\n")
    for _ in range(2):
        with pytest.raises(ConfigError):
            _load(stack, tmp_path / "cache")
    assert len(loads) == 2


def test_damaged_foreign_or_absent_entries_mean_a_plain_load(stack, tmp_path, loads, monkeypatch):
    _load(stack, tmp_path / "cache")
    (entry,) = (tmp_path / "cache").iterdir()
    entry.write_bytes(b"\x80\x05garbage")
    assert _image(_load(stack, tmp_path / "cache")) == "busybox:1"  # and written again
    assert pickle.loads(entry.read_bytes())[0]
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)  # an entry someone else wrote: not unpickled
    _load(stack, tmp_path / "cache")
    assert len(loads) == 3


def test_no_cache_dir_no_stdin_entries(stack, tmp_path, loads):
    import io

    _load(stack, tmp_path / "cache", files=("-",), stdin=io.StringIO("services:\n  web:\n    image: x\n"))
    load_project(LoadOptions(environ={}, cwd=str(stack)))
    assert not (tmp_path / "cache").exists() and len(loads) == 2


def test_entries_are_bounded(stack, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    for i in range(6):
        _load(stack, tmp_path / "cache", {"TAG": str(i)})
    assert len(list((tmp_path / "cache").iterdir())) == 3


def test_frozenmap_pickles_without_its_hash():
    m = FrozenMap({"a": 1})
    hash(m)
    assert pickle.loads(pickle.dumps(m))._h is None
