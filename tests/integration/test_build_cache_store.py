"""The build cache never hands out an entry the store can no longer commit: a layer's dir AND blob are
checked on a hit, and a layer whose dir is in the store without its blob gets its blob back. The
issue's sequence (pull, load, build FROM it with COPY and RUN, rm everything; again) builds every time."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests import imagekit as kit
from tests.fakeregistry import FakeRegistry
from tests.integration.conftest import BUSYBOX, remove_networks

pytestmark = pytest.mark.root


def _busybox_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d in ("bin", "etc", "tmp"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
            t.addfile(info)
        data = Path(BUSYBOX).read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode, info.mtime = len(data), 0o755, 1_600_000_000
        t.addfile(info, io.BytesIO(data))
        for applet in ("sh", "cat", "echo"):
            info = tarfile.TarInfo("bin/" + applet)
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "busybox", 1_600_000_000
            t.addfile(info)
    return buf.getvalue()


def _gz(raw: bytes, mtime: int) -> kit.Layer:
    return kit.Layer(raw, gzip.compress(raw, compresslevel=1, mtime=mtime), kit.OCI_LAYER_GZ)


@pytest.fixture
def clean_state(composer_env):
    yield
    remove_networks(composer_env["COMPOSER_STATE_DIR"])


def test_pull_load_build_rm_repeated_always_builds(cli, clean_state, tmp_path):
    base, extra = _busybox_tar(), kit.tar_of({"etc/hello": b"hi\n"})
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f.txt").write_text("file\n")
    for round_ in range(3):  # a fresh registry each time, same layer contents, other compressed blobs
        img = kit.image([_gz(base, round_), _gz(extra, round_)])
        archive = tmp_path / "saved.tar"
        archive.write_bytes(kit.docker_archive([(kit.image([_gz(base, 0), _gz(extra, 0)],
                                                           created="2025-01-01T00:00:00Z"), ["cmptest-loaded:1"])]))
        reg = FakeRegistry()
        try:
            reg.add("app", "1", img)
            cli.env["COMPOSER_INSECURE_REGISTRIES"] = reg.domain
            pulled = f"{reg.domain}/app:1"
            for base_ref in (pulled, "cmptest-loaded:1"):
                assert cli("image", "pull", pulled).returncode == 0
                assert cli("image", "load", "-i", str(archive)).returncode == 0
                (ctx / "Dockerfile").write_text(f"FROM {base_ref}\nCOPY f.txt /f.txt\nRUN cat /f.txt /etc/hello > /out\n")
                r = cli("image", "build", "--network", "none", "-t", "cmptest-built:1", str(ctx), timeout=120)
                assert r.returncode == 0, (round_, base_ref, r.stderr)
                run = cli("container", "run", "--rm", "--network", "none", "cmptest-built:1", "cat", "/out")
                assert run.stdout == "file\nhi\n", run.stderr
                r = cli("image", "rm", "cmptest-built:1", pulled, "cmptest-loaded:1")
                assert r.returncode == 0, r.stderr
        finally:
            reg.close()


def test_a_layer_dir_without_its_blob_gets_the_blob_back(cli, clean_state, tmp_path):
    from composer.images.bootstrap import bootstrap_busybox
    from composer.images.store import ImageStore

    bootstrap_busybox(ImageStore())
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f.txt").write_text("file\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY f.txt /f.txt\nRUN cat /f.txt > /out\n")
    first = cli("image", "build", "--network", "none", "-t", "cmptest-one:1", str(ctx), timeout=120)
    assert first.returncode == 0, first.stderr
    store = Path(os.environ["COMPOSER_DATA_DIR"]) / "images"
    index = json.loads((store / "index.json").read_text())["images"]
    entry = next(e for e in index.values() if any("cmptest-one" in r for r in e["refs"]))
    copy_blob = store / "blobs" / "sha256" / entry["blobs"][-2][7:]
    copy_blob.unlink()  # its dir stays: what a pull and a load of the same layers could leave
    for _ in range(2):  # and it never fails again on a retry
        again = cli("image", "build", "--network", "none", "-t", "cmptest-two:1", str(ctx), timeout=120)
        assert again.returncode == 0, again.stderr
    assert copy_blob.exists()
    assert cli("image", "save", "-o", str(tmp_path / "out.tar"), "cmptest-two:1").returncode == 0
    for ref in ("cmptest-one:1", "cmptest-two:1"):
        cli("image", "rm", ref)
