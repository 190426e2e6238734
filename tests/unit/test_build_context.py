"""Build context rules without root: .dockerignore as docker reads it, globs, symlink confinement,
and the COPY plan's directory semantics and content hash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from composer.errors import ImageError
from composer.images.dockerfile.context import BuildContext
from composer.images.dockerfile.copyplan import CopyRequest, plan_copy
from composer.images.dockerfile.layerview import LayerView


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("patterns, path, ignored", [
    (["*.pyc"], "a.pyc", True),
    (["*.pyc"], "sub/a.pyc", False),  # docker: anchored at the root, unlike .gitignore
    (["**/*.pyc"], "sub/deep/a.pyc", True),
    (["logs"], "logs/x/y.txt", True),  # a matched dir hides all of it
    (["/logs/"], "logs", True),
    (["./build"], "build", True),
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "NOTES.md", True),
    (["*/temp*"], "a/temporary", True),
    (["*/temp*"], "a/b/temporary", False),
    (["temp?"], "temp1", True),
    (["# comment", ""], "# comment", False),
])
def test_dockerignore(tmp_path, patterns, path, ignored):
    assert BuildContext(tmp_path, patterns).ignored(path) is ignored


def test_match_globs_and_ignore(tmp_path):
    tree(tmp_path, {"a.txt": "", "b.txt": "", ".hidden.txt": "", "c.md": "", "d/e.txt": "", "skip.txt": ""})
    ctx = BuildContext(tmp_path, ["skip.txt"])
    assert [s.rel for s in ctx.match("*.txt")] == [".hidden.txt", "a.txt", "b.txt"]
    assert [s.rel for s in ctx.match("*/e.txt")] == ["d/e.txt"]
    with pytest.raises(ImageError, match="excluded by .dockerignore: skip.txt"):
        ctx.match("skip.txt")
    with pytest.raises(ImageError, match="not found"):
        ctx.match("nothing*")


def test_symlinks_confined(tmp_path):
    ctx_root = tree(tmp_path / "ctx", {"real/f": "x"})
    os.symlink("real", ctx_root / "rel")
    os.symlink("/etc", ctx_root / "abs")
    os.symlink("../../outside", ctx_root / "real" / "up")
    ctx = BuildContext(ctx_root, [])
    assert ctx.resolve("rel/f", "COPY") == "real/f"
    for bad in ("abs/passwd", "real/up", "../x"):
        with pytest.raises(ImageError, match="outside the build context"):
            ctx.match(bad)


def test_walk_skips_ignored_and_keeps_exceptions(tmp_path):
    tree(tmp_path, {"d/keep.txt": "", "d/drop.log": "", "d/sub/x.log": "", "d/sub/important.log": ""})
    ctx = BuildContext(tmp_path, ["**/*.log", "!d/sub/important.log"])
    assert [rel for rel, _ in ctx.walk("d")] == ["d", "d/keep.txt", "d/sub", "d/sub/important.log"]


def copy_names(tmp_path, files, sources, dest, image=None):
    ctx = BuildContext(tree(tmp_path / "ctx", files), [])
    layer = tmp_path / "layer"
    layer.mkdir(exist_ok=True)
    for d in image or ():
        (layer / d).mkdir(parents=True, exist_ok=True)
    plan = plan_copy(CopyRequest("COPY", tuple(sources), dest), LayerView([str(layer)]), context=ctx)
    return [e.name for e in plan.entries], plan


@pytest.mark.parametrize("files, sources, dest, image, expected", [
    ({"a": ""}, ["a"], "/x", (), ["x"]),  # a file onto a new name
    ({"a": ""}, ["a"], "/x/", (), ["x", "x/a"]),  # into a directory
    ({"a": ""}, ["a"], "/x", ("x",), ["x", "x/a"]),  # an existing directory receives it
    ({"d/a": "", "d/s/b": ""}, ["d"], "/app", (), ["app", "app/a", "app/s", "app/s/b"]),  # dir: its contents
    ({"a": "", "b": ""}, ["a", "b"], "/x/y/", (), ["x", "x/y", "x/y/a", "x/y/b"]),
])
def test_copy_semantics(tmp_path, files, sources, dest, image, expected):
    names, _ = copy_names(tmp_path, files, sources, dest, image)
    assert names == expected


def test_copy_many_needs_dir_dest(tmp_path):
    with pytest.raises(ImageError, match="must be a directory and end with a /"):
        copy_names(tmp_path, {"a": "", "b": ""}, ["a", "b"], "/x", ())


def test_copy_hash_follows_content_not_mtime(tmp_path):
    _, plan = copy_names(tmp_path, {"a": "one"}, ["a"], "/x", ())
    first = plan.digest()
    os.utime(tmp_path / "ctx" / "a", (1, 1))
    _, plan = copy_names(tmp_path, {}, ["a"], "/x", ())
    assert plan.digest() == first
    (tmp_path / "ctx" / "a").write_text("two")
    _, plan = copy_names(tmp_path, {}, ["a"], "/x", ())
    assert plan.digest() != first


def test_layer_view_merges_and_resolves(tmp_path):
    low, up = tmp_path / "low", tmp_path / "up"
    tree(low, {"etc/passwd": "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
               "etc/group": "root:x:0:\nstaff:x:50:\n", "usr/lib/a": "", "data/old": ""})
    tree(up, {"usr/lib/b": "", "data/new": ""})
    os.symlink("/usr/lib", up / "lib")
    view = LayerView([str(low), str(up)])
    assert view.listdir("usr/lib") == ["a", "b"]
    assert view.resolve("lib/a") == "usr/lib/a"
    assert view.resolve("lib/../../../etc") == "etc"  # `..` stops at the image root
    assert view.user_ids("app", None) == (1000, 1001)
    assert view.user_ids("app", "staff") == (1000, 50)
    assert view.user_ids("7", None) == (7, 7)
    with pytest.raises(ImageError, match="unable to find user nobody"):
        view.user_ids("nobody", None)
