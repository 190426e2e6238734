"""Volumes: records, labels, and seeding from an image's layer dirs read top-down as overlayfs
does (whiteouts: char dev 0:0; opaque dirs: trusted.overlay.opaque=y). As root the real device
nodes and xattrs are made; otherwise they are faked by inode/path, so the logic is the same."""

from __future__ import annotations

import os
import stat

import pytest

from composer.errors import NotFoundError
from composer.service import volumes as V

ROOT = os.geteuid() == 0


@pytest.fixture
def marks(monkeypatch):
    fake_wh: set[int] = set()
    fake_opq: set[str] = set()

    def whiteout(path):
        if ROOT:
            os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        else:
            open(path, "w").close()
            fake_wh.add(os.lstat(path).st_ino)

    def opaque(path):
        if ROOT:
            os.setxattr(path, V.OPAQUE_XATTR, b"y")
        else:
            fake_opq.add(os.path.abspath(path))

    if not ROOT:
        real_wh, real_opq = V._is_whiteout, V._is_opaque
        monkeypatch.setattr(V, "_is_whiteout", lambda st: real_wh(st) or st.st_ino in fake_wh)
        monkeypatch.setattr(V, "_is_opaque", lambda p: real_opq(p) or os.path.abspath(p) in fake_opq)
    return whiteout, opaque


def write(path, text=""):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def tree(path):
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            if os.path.islink(full):
                out[rel] = "->" + os.readlink(full)
            elif os.path.isdir(full):
                out[rel] = "/"
            else:
                out[rel] = open(full).read()
    return out


@pytest.fixture
def layers(tmp_path, marks):
    whiteout, opaque = marks
    l1, l2, l3 = (str(tmp_path / f"l{i}") for i in (1, 2, 3))
    # bottom layer
    write(f"{l1}/data/keep.txt", "base")
    write(f"{l1}/data/gone.txt", "deleted above")
    write(f"{l1}/data/sub/old.txt", "hidden by opaque")
    write(f"{l1}/data/over/x.txt", "lower x")
    write(f"{l1}/other/file", "not in the volume")
    # middle: whiteout gone.txt, make sub opaque with a new file, replace a file
    os.makedirs(f"{l2}/data/sub")
    whiteout(f"{l2}/data/gone.txt")
    opaque(f"{l2}/data/sub")
    write(f"{l2}/data/sub/new.txt", "new")
    write(f"{l2}/data/keep.txt", "updated")
    os.symlink("keep.txt", f"{l2}/data/link")
    # top: adds to over/, leaves the rest
    write(f"{l3}/data/over/y.txt", "upper y")
    return (l1, l2, l3)  # bottom-most first, as images list them


def test_merged_view(layers, tmp_path):
    dest = tmp_path / "vol"
    dest.mkdir()
    assert V.copy_image_path(layers, "/data", str(dest))
    assert tree(dest) == {
        "keep.txt": "updated", "link": "->keep.txt", "sub": "/", "sub/new.txt": "new",
        "over": "/", "over/x.txt": "lower x", "over/y.txt": "upper y",
    }


def test_missing_or_whiteouted_target(layers, tmp_path, marks):
    whiteout, _ = marks
    dest = tmp_path / "vol"
    dest.mkdir()
    assert not V.copy_image_path(layers, "/nope", str(dest))
    write(f"{layers[2]}/x", "")
    os.makedirs(f"{layers[2]}/other_parent")
    whiteout(f"{layers[2]}/other")
    assert V.merged_dirs(layers, "/other") == []
    assert V.merged_dirs(layers, "/data/../other") == []


def test_store_seeds_once_and_keeps_data(layers, tmp_path):
    store = V.VolumeStore(str(tmp_path / "d"))
    info = store.ensure("p_data", (("composer.project", "p"),))
    assert info.path.endswith("volumes/p_data/_data") and info.label("composer.project") == "p"
    assert store.seed("p_data", layers, "/data")
    assert open(os.path.join(info.path, "keep.txt")).read() == "updated"
    os.unlink(os.path.join(info.path, "keep.txt"))
    assert not store.seed("p_data", layers, "/data")  # first use only, as docker
    assert not os.path.exists(os.path.join(info.path, "keep.txt"))
    write(os.path.join(info.path, "mine"), "user data")
    store.ensure("p_data")  # idempotent: never touches data
    assert open(os.path.join(info.path, "mine")).read() == "user data"
    assert [v.name for v in store.list({"composer.project": "p"})] == ["p_data"]
    assert store.list({"composer.project": "q"}) == []


def test_non_empty_volume_is_not_seeded(layers, tmp_path):
    store = V.VolumeStore(str(tmp_path / "d"))
    info = store.ensure("v")
    write(os.path.join(info.path, "existing"), "x")
    assert not store.seed("v", layers, "/data")
    assert os.listdir(info.path) == ["existing"]


def test_anonymous_and_remove(tmp_path):
    store = V.VolumeStore(str(tmp_path / "d"))
    anon = store.new_anonymous((("composer.project", "p"),))
    assert anon.anonymous and len(anon.name) == 64
    assert store.owner_of(anon.path).name == anon.name
    assert store.owner_of("/somewhere/else/_data") is None
    store.remove(anon.name)
    store.remove(anon.name)  # idempotent
    with pytest.raises(NotFoundError):
        store.get(anon.name)


def test_record_lost_keeps_volume(tmp_path):
    store = V.VolumeStore(str(tmp_path / "d"))
    info = store.ensure("v")
    os.unlink(os.path.join(os.path.dirname(info.path), "volume.json"))
    assert store.get("v").path == info.path
