"""The image commands end to end, as a user runs them (root: layers keep owners, whiteouts need mknod):
import of a real busybox rootfs, bootstrap, listing 100 images, and one-line errors that store nothing."""

from __future__ import annotations

import gzip
import json
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from composer.images.bootstrap import busybox_rootfs, find_static_busybox
from composer.images.model import ImageConfig
from composer.images.store import ImageStore

pytestmark = pytest.mark.root

_SCRIPT = Path(sys.executable).with_name("composer")
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "composer"]


@pytest.fixture
def data(tmp_path, monkeypatch):
    path = tmp_path / "composer-data"
    monkeypatch.setenv("COMPOSER_DATA_DIR", str(path))
    return path


def composer(*args, stdin=None, check=True):
    proc = subprocess.run([*CLI, *args], input=stdin, capture_output=True, env=os.environ.copy())
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


@pytest.fixture(scope="module")
def busybox_tar(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rootfs") / "busybox.tar"
    with open(path, "wb") as f:
        busybox_rootfs(f, find_static_busybox())
    return path


def run_in_layer(layer: str, *argv: str) -> str:
    """chroot into the extracted layer: proves it is a working rootfs (the runtime uses overlay)."""
    return subprocess.run(["chroot", layer, *argv], capture_output=True, text=True, check=True).stdout


def test_import_real_busybox_rootfs(data, busybox_tar):
    started = time.perf_counter()
    out = composer("image", "import", str(busybox_tar), "bb:imported", "-c", 'CMD ["sh"]', "-c", "ENV A=1")
    elapsed = time.perf_counter() - started
    image_id = out.stdout.decode().strip()
    assert image_id.startswith("sha256:")
    image = ImageStore(data).resolve("bb:imported")
    assert image.id == image_id and image.config.cmd == ("sh",) and ("A", "1") in image.config.env
    assert run_in_layer(image.layers[0], "/bin/sh", "-c", "echo ok; ls -ld /tmp") .startswith("ok\ndrwxrwxrwt")
    listing = composer("images").stdout.decode()
    assert "bb" in listing and "imported" in listing and image.short_id in listing
    inspect = json.loads(composer("image", "inspect", "bb:imported").stdout)
    assert inspect[0]["Id"] == image_id and inspect[0]["Config"]["Cmd"] == ["sh"]
    print(f"\nimage import of the busybox rootfs tar ({busybox_tar.stat().st_size >> 10} KiB): "
          f"{elapsed * 1000:.0f} ms, whole CLI")


def test_import_from_stdin_gzip_then_tag_and_rm(data, busybox_tar):
    gz = gzip.compress(busybox_tar.read_bytes())
    image_id = composer("image", "import", "-", "piped:1", stdin=gz).stdout.decode().strip()
    composer("image", "tag", "piped:1", "localhost:5000/piped:2")
    assert composer("image", "ls", "-q").stdout.decode().split() == [image_id[7:19]]
    assert composer("image", "rm", "piped:1").stdout.decode() == "Untagged: piped:1\n"
    out = composer("image", "rm", "localhost:5000/piped:2").stdout.decode()
    assert out.splitlines() == ["Untagged: localhost:5000/piped:2", f"Deleted: {image_id}"]
    assert list((data / "images" / "layers").iterdir()) == []


def test_bootstrap_busybox(data):
    first = composer("image", "bootstrap", "busybox").stdout.decode().strip()
    again = composer("image", "bootstrap", "busybox", "--if-missing").stdout.decode().strip()
    assert first == again
    image = ImageStore(data).resolve("busybox")
    assert image.config.cmd == ("sh",)
    layer = Path(image.layers[0])
    assert os.readlink(layer / "bin/sh") == "/bin/busybox"
    assert (layer / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert "nobody:x:65534" in (layer / "etc/passwd").read_text()
    assert run_in_layer(str(layer), "/bin/sh", "-c", "id -u; wget --help 2>&1 | head -1").startswith("0\nBusyBox")
    assert (data / "images").stat().st_mode & 0o777 == 0o700


def test_errors_are_one_line_and_store_nothing(data, tmp_path, busybox_tar):
    composer("image", "import", str(busybox_tar), "keep")
    before = sorted(p.name for p in (data / "images" / "blobs" / "sha256").iterdir())
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../../escape")
        tar.addfile(info)
    (tmp_path / "text.tar").write_text("not a tar\n" * 100)
    cases = [(str(tmp_path / "missing.tar"), "no such file"), (str(evil), "'..'"),
             (str(tmp_path / "text.tar"), "not a tar"), (str(busybox_tar), "invalid reference")]
    for path, words in cases:
        ref = "Bad:Name" if words == "invalid reference" else "x"
        proc = composer("image", "import", path, ref, check=False)
        err = proc.stderr.decode()
        assert proc.returncode == 1 and err.count("\n") == 1 and err.startswith("composer: "), err
        assert words in err
    assert sorted(p.name for p in (data / "images" / "blobs" / "sha256").iterdir()) == before
    assert not (tmp_path / "escape").exists()
    proc = composer("image", "rm", "nope", check=False)
    assert proc.returncode == 1 and "image 'nope' not found" in proc.stderr.decode()


def test_images_with_100_images(data, busybox_tar, tmp_path):
    store = ImageStore(data)
    first = store.import_rootfs(busybox_tar, "base:0")
    # 99 more images sharing one small layer: what `images` pays for is the index, not the layers
    small = tmp_path / "small.tar"
    with tarfile.open(small, "w") as tar:
        tar.add(busybox_tar.parent, arcname=".", recursive=False)
    for n in range(1, 100):
        store.import_rootfs(small, f"app{n}/svc:v{n}", changes=ImageConfig(cmd=("sh", "-c", f"echo {n}")))
    assert len(store.list()) == 100 and len(list(store.layers_root.iterdir())) == 2

    loads = []
    for _ in range(5):
        started = time.perf_counter()
        ImageStore(data).list()
        loads.append(time.perf_counter() - started)
    cli = []
    for _ in range(5):
        started = time.perf_counter()
        out = composer("images").stdout.decode()
        cli.append(time.perf_counter() - started)
    assert out.count("\n") == 101 and first.short_id in out
    quiet = []
    for _ in range(5):
        started = time.perf_counter()
        composer("images", "-q")
        quiet.append(time.perf_counter() - started)
    load_ms = statistics.median(loads) * 1000
    print(f"\n100 images: index load + list() {load_ms:.1f} ms; `composer images` {statistics.median(cli) * 1000:.0f}"
          f" ms; `composer images -q` {statistics.median(quiet) * 1000:.0f} ms (whole CLI, median of 5)")
    assert load_ms < 100
