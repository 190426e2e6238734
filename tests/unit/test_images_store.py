"""The image store: import round trip, resolution by ref/id/prefix, tags, reference-counted removal,
atomic index updates, and nothing left behind by a bad import or a failed write."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from composer.errors import ConflictError, ImageError, NotFoundError, UsageError
from composer.images.importer import apply_changes
from composer.images.model import HealthConfig
from composer.images.model import ImageConfig
from composer.images.store import ImageStore
from tests.unit.test_images_extract import entry, make_tar

ROOTFS = make_tar(entry("bin", tarfile.DIRTYPE, mode=0o755), entry("bin/hello", data=b"#!/bin/sh\necho hi\n",
                                                                    mode=0o755),
                  entry("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n"))


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "data")


def tarfile_at(tmp_path: Path, data: bytes = ROOTFS, name: str = "rootfs.tar") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def store_files(store: ImageStore) -> set[str]:
    root = store.root
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def test_import_round_trip(store, tmp_path):
    image = store.import_rootfs(tarfile_at(tmp_path), "test/app:1")
    assert image.id.startswith("sha256:") and len(image.id) == 71
    assert image.refs == ("docker.io/test/app:1",)
    assert len(image.layers) == 1 and Path(image.layers[0]).is_dir()
    assert (Path(image.layers[0]) / "bin/hello").read_bytes().startswith(b"#!")
    assert image.config == ImageConfig()
    assert image.size == len(b"#!/bin/sh\necho hi\n") + len(b"root:x:0:0::/root:/bin/sh\n")
    for ref in ("test/app:1", "docker.io/test/app:1", image.id, image.id[7:], image.short_id,
                "sha256:" + image.short_id):
        assert store.resolve(ref).id == image.id, ref
    assert store.exists("test/app:1") and not store.exists("test/app:2")
    assert [i.id for i in store.list()] == [image.id]
    assert store.layer_dir(image.diff_ids[0]) == Path(image.layers[0])
    # the blobs are what the spec says they are
    manifest = json.loads(store.blob_path(image.manifest).read_bytes())
    assert manifest["config"]["digest"] == image.id
    config = json.loads(store.blob_path(image.id).read_bytes())
    assert config["rootfs"]["diff_ids"] == list(image.diff_ids)
    assert store.blob_path(manifest["layers"][0]["digest"]).read_bytes() == ROOTFS
    # a second store object (another process) sees the same
    assert ImageStore(store.root.parent).resolve("test/app:1") == image


def test_store_is_private(store, tmp_path):
    store.import_rootfs(tarfile_at(tmp_path), "a")
    assert (store.root.stat().st_mode & 0o777) == 0o700


def test_gzip_and_stdin_like_streams(store, tmp_path):
    gz = gzip.compress(ROOTFS)
    a = store.import_rootfs(tarfile_at(tmp_path, gz, "r.tgz"), "gz:1")
    b = store.import_rootfs(io.BufferedReader(io.BytesIO(gz)), "gz:2")
    assert a.diff_ids == b.diff_ids
    manifest = json.loads(store.blob_path(a.manifest).read_bytes())
    assert manifest["layers"][0]["mediaType"].endswith("tar+gzip")
    assert len(list(store.layers_root.iterdir())) == 1  # one extraction, shared


def test_changes_are_stored(store, tmp_path):
    changes = apply_changes(ImageConfig(), ['CMD ["sh", "-c", "echo hi"]', "ENV A=1 B='x y'", "EXPOSE 80 53/udp",
                                            "WORKDIR /srv", "WORKDIR app", "USER 1000:1000", "LABEL k=v",
                                            "VOLUME /data", "STOPSIGNAL SIGINT", "ENTRYPOINT /init"])
    image = store.import_rootfs(tarfile_at(tmp_path), "c", changes=changes)
    cfg = store.resolve("c").config
    assert cfg == image.config
    assert cfg.cmd is None  # ENTRYPOINT resets CMD, as in a Dockerfile
    assert cfg.entrypoint == ("/bin/sh", "-c", "/init")
    assert dict(cfg.env) == {"PATH": ImageConfig().env[0][1], "A": "1", "B": "x y"}
    assert cfg.exposed_ports == ("53/udp", "80/tcp")
    assert (cfg.working_dir, cfg.user, cfg.stop_signal) == ("/srv/app", "1000:1000", "SIGINT")
    assert cfg.labels == (("k", "v"),) and cfg.volumes == ("/data",)


@pytest.mark.parametrize("change", ["FROM x", "RUN true", "CMD", "ENV", "EXPOSE abc", "LABEL novalue"])
def test_bad_changes(change):
    with pytest.raises(UsageError):
        apply_changes(ImageConfig(), [change])


def test_config_oci_round_trip():
    cfg = ImageConfig(env=(("A", "b=c"),), entrypoint=("/e",), cmd=("c",), working_dir="/w", user="u",
                      labels=(("l", "v"),), stop_signal="SIGQUIT", exposed_ports=("80/tcp",), volumes=("/v",),
                      healthcheck=HealthConfig(test=("CMD-SHELL", "true"), interval=1.5, retries=3),
                      shell=("/bin/bash", "-c"))
    assert ImageConfig.from_oci(json.loads(json.dumps(cfg.to_oci()))) == cfg
    assert cfg.to_oci()["Healthcheck"]["Interval"] == 1_500_000_000
    assert ImageConfig.from_oci({"Env": None, "Cmd": None, "Labels": None}).cmd is None


def test_tag_and_remove_with_reference_counting(store, tmp_path):
    a = store.import_rootfs(tarfile_at(tmp_path), "one")
    store.tag("one", "localhost:5000/two:x")
    assert store.resolve("localhost:5000/two:x").id == a.id
    b = store.import_rootfs(tarfile_at(tmp_path), "three")  # same layer, new image (new created time)
    layer = Path(a.layers[0])
    assert b.layers == a.layers and b.id != a.id

    assert store.remove("one") == ["Untagged: one:latest"]  # other refs remain: only untag
    assert store.remove("localhost:5000/two:x") == ["Untagged: localhost:5000/two:x", f"Deleted: {a.id}"]
    assert not store.exists(a.id)
    assert layer.is_dir(), "the layer is still used by 'three'"
    store.remove("three")
    assert not layer.exists()
    assert not any(store.blob_dir.iterdir()), "unused blobs must go with the last image"
    assert store.list() == []


def test_remove_by_id_with_several_refs_needs_force(store, tmp_path):
    image = store.import_rootfs(tarfile_at(tmp_path), "one")
    store.tag("one", "two")
    with pytest.raises(ConflictError, match="must be forced"):
        store.remove(image.short_id)
    lines = store.remove(image.short_id, force=True)
    assert lines == ["Untagged: one:latest", "Untagged: two:latest", f"Deleted: {image.id}"]


def test_remove_refused_when_in_use(store, tmp_path):
    store.import_rootfs(tarfile_at(tmp_path), "one")
    with pytest.raises(ConflictError, match="web-1"):
        store.remove("one", in_use=lambda image: "web-1")
    assert store.exists("one")
    store.remove("one", force=True, in_use=lambda image: "web-1")
    assert not store.exists("one")


def test_retag_leaves_a_dangling_image(store, tmp_path):
    old = store.import_rootfs(tarfile_at(tmp_path), "app")
    new = store.import_rootfs(tarfile_at(tmp_path), "app")
    assert store.resolve("app").id == new.id
    assert store.resolve(old.id).refs == ()


def test_not_found_and_ambiguous(store, tmp_path):
    with pytest.raises(NotFoundError, match="image 'nope' not found"):
        store.resolve("nope")
    with pytest.raises(ImageError, match="invalid reference"):
        store.resolve("Bad Name")
    ids = [store.import_rootfs(tarfile_at(tmp_path), f"i{n}").id for n in range(20)]
    first = [i[7] for i in ids]
    dup = next(c for c in first if first.count(c) > 1)
    with pytest.raises(ImageError, match="ambiguous"):
        store.resolve(dup)


@pytest.mark.parametrize("bad", [
    make_tar(entry("../escape", data=b"x")),
    make_tar(entry("a", data=b"x" * 4000))[:1500],
    b"not a tar at all" * 100,
])
def test_bad_import_leaves_nothing(store, tmp_path, bad):
    store.import_rootfs(tarfile_at(tmp_path), "good")
    before = store_files(store)
    index = store.index_path.read_bytes()
    with pytest.raises(ImageError):
        store.import_rootfs(tarfile_at(tmp_path, bad, "bad.tar"), "bad")
    assert store_files(store) == before
    assert store.index_path.read_bytes() == index


def test_missing_file_and_bad_name(store, tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        store.import_rootfs(tmp_path / "missing.tar", "x")
    with pytest.raises(ImageError, match="invalid reference"):
        store.import_rootfs(tarfile_at(tmp_path), "UPPER")
    assert not store.exists("x")


def test_digest_mismatch_when_staging(store, tmp_path):
    with pytest.raises(ImageError, match="digest mismatch"):
        store.stage_layer(tarfile_at(tmp_path), expected_digest="sha256:" + "1" * 64)
    with pytest.raises(ImageError, match="digest mismatch"):
        store.stage_layer(tarfile_at(tmp_path), expected_diff_id="sha256:" + "1" * 64)
    assert [p.name for p in store.layers_root.iterdir()] == []
    assert [p.name for p in store.blob_dir.iterdir()] == []


def test_failed_index_write_leaves_no_partial_image(store, tmp_path, monkeypatch):
    store.import_rootfs(tarfile_at(tmp_path), "good")
    before, index = store_files(store), store.index_path.read_bytes()
    real_rename = os.rename

    def crash(src, dst, *a, **kw):
        if str(dst).endswith("index.json"):
            raise OSError(28, "No space left on device")
        return real_rename(src, dst, *a, **kw)

    monkeypatch.setattr(os, "rename", crash)
    other = make_tar(entry("other", data=b"different content"))
    with pytest.raises(OSError):
        store.import_rootfs(tarfile_at(tmp_path, other, "o.tar"), "other")
    assert store_files(store) == before
    assert store.index_path.read_bytes() == index


def test_temp_files_of_dead_writers_are_swept(store, tmp_path):
    store.import_rootfs(tarfile_at(tmp_path), "a")
    dead = 2 ** 22 + 17  # above pid_max (at most 2**22): never a live process
    stale_dir = store.layers_root / f".tmp-{dead}-abcd-layer"
    stale_dir.mkdir()
    (stale_dir / "f").write_text("x")
    stale_blob = store.blob_dir / f".tmp-{dead}-abcd-blob"
    stale_blob.write_text("x")
    mine = store.blob_dir / f".tmp-{os.getpid()}-abcd-blob"
    mine.write_text("in progress")
    store.tag("a", "b")
    assert not stale_dir.exists() and not stale_blob.exists()
    assert mine.exists()
    mine.unlink()


def test_concurrent_imports_from_processes(store, tmp_path):
    path = tarfile_at(tmp_path)
    code = ("import sys; from composer.images.store import ImageStore; "
            "ImageStore(sys.argv[1]).import_rootfs(sys.argv[2], sys.argv[3])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(store.root.parent), str(path), f"p{n}"])
             for n in range(4)]
    assert [p.wait() for p in procs] == [0] * 4
    assert sorted(r for i in store.list() for r in i.refs) == [f"docker.io/library/p{n}:latest" for n in range(4)]
    assert len(list(store.layers_root.iterdir())) == 1


def test_listing_100_images_is_fast(store, tmp_path):
    path = tarfile_at(tmp_path)
    for n in range(100):
        store.import_rootfs(path, f"img{n}:v{n}", changes=ImageConfig(cmd=("sh",), labels=(("n", str(n)),)))
    ImageStore(store.root.parent).list()  # warm the page cache as a real `images` run would find it
    started = time.perf_counter()
    images = ImageStore(store.root.parent).list()
    elapsed = time.perf_counter() - started
    assert len(images) == 100
    assert elapsed < 0.1, f"list() of 100 images took {elapsed * 1000:.1f} ms"
