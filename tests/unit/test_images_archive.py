"""image load / save: docker save archives (legacy and blobs/ naming, linked layers), OCI layouts (nested
index, two platforms), gzip and pipes, a save -> load round trip, and hostile archives that must add
nothing. The docker cross-check runs only where a dockerd answers (never in CI, which has none)."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from composer.errors import ImageError
from composer.images.archive import load_archive, save_images
from composer.images.store import ImageStore
from tests import imagekit as kit

BASE = kit.layer({"bin/sh": b"#!shell\n", "etc/os-release": b"ID=test\n"})
APP = kit.layer({"app/main.py": b"print('hi')\n"}, compress=False)


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "data")


def store_files(store: ImageStore) -> set[str]:
    return {str(p.relative_to(store.root)) for p in store.root.rglob("*")} if store.root.exists() else set()


def load_bytes(store, data: bytes, tmp_path: Path, name: str = "a.tar"):
    path = tmp_path / name
    path.write_bytes(data)
    return load_archive(store, path)


@pytest.mark.parametrize("legacy", [True, False])
def test_docker_archive(store, tmp_path, legacy):
    one = kit.image([BASE, APP], docker=True)
    two = kit.image([BASE], cmd=["/bin/true"])  # shares BASE: a linked layer in the legacy form
    loaded = load_bytes(store, kit.docker_archive([(one, ["app:1", "app:latest"]), (two, ["base:1"])],
                                                  legacy=legacy), tmp_path)
    assert [lo.refs for lo in loaded] == [("app:1", "app:latest"), ("base:1",)]
    image = store.resolve("app:1")
    assert image.id == one.id and image.diff_ids == (BASE.diff_id, APP.diff_id)
    assert (Path(image.layers[1]) / "app/main.py").read_bytes() == b"print('hi')\n"
    assert store.resolve("base:1").layers[0] == image.layers[0]  # extracted once, shared
    assert image.config.cmd == ("/bin/sh",)


def test_oci_layout_gzip_from_a_pipe_with_nested_index(store, tmp_path):
    amd = kit.image([BASE, APP])
    arm = kit.image([kit.layer({"arm": b"x"})], arch="arm64")
    members = kit.oci_layout([(amd, None)])
    idx = kit.index([amd, arm])
    members.update({f"blobs/sha256/{d[7:]}": b for d, b in arm.blobs.items()})
    members[f"blobs/sha256/{kit.sha(idx)[7:]}"] = idx
    members["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": kit.OCI_INDEX, "digest": kit.sha(idx), "size": len(idx),
         "annotations": {"io.containerd.image.name": "docker.io/library/multi:2"}}]}).encode()
    stream = io.BufferedReader(io.BytesIO(gzip.compress(kit.tar_members(members))))  # not a file: spooled
    loaded = load_archive(store, stream)
    assert [(lo.image.id, lo.refs) for lo in loaded] == [(amd.id, ("multi:2",))]
    assert store.resolve("multi:2").manifest == amd.digest  # the manifest is kept as it came


def test_oci_layout_without_names_is_loaded_by_id(store, tmp_path):
    img = kit.image([APP])
    loaded = load_bytes(store, kit.tar_members(kit.oci_layout([(img, "1.0")])), tmp_path)
    assert loaded[0].refs == () and store.resolve(img.id).refs == ()


def test_save_then_load_round_trip(store, tmp_path):
    img = kit.image([BASE, APP], docker=True)
    load_bytes(store, kit.tar_members(kit.oci_layout([(img, "docker.io/library/rt:1")])), tmp_path)
    store.tag("rt:1", "example.com/team/rt:2")
    buf = io.BytesIO()
    assert save_images(store, ["rt:1", "example.com/team/rt:2"], buf) == 1
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        oci_index = json.load(tar.extractfile("index.json"))
        names = set(tar.getnames())
    assert manifest[0]["RepoTags"] == ["rt:1", "example.com/team/rt:2"]
    assert {"oci-layout", "repositories", f"blobs/sha256/{img.digest[7:]}"} <= names
    assert [m["digest"] for m in oci_index["manifests"]] == [img.digest, img.digest]
    other = ImageStore(tmp_path / "other")
    for data in (buf.getvalue(), _drop(buf.getvalue(), "manifest.json")):  # docker form, then OCI form
        loaded = load_archive(other, io.BufferedReader(io.BytesIO(data)))
        assert loaded[0].image.id == img.id
        assert set(loaded[0].refs) == {"rt:1", "example.com/team/rt:2"}


def _drop(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile() and m.name != name}
    return kit.tar_members(members)


def _tamper(members: dict[str, bytes], name: str, data: bytes) -> dict[str, bytes]:
    return {**members, name: data}


def hostile_cases():
    img = kit.image([BASE, APP])
    good = kit.oci_layout([(img, "docker.io/library/bad:1")])
    layer_name = f"blobs/sha256/{BASE.digest[7:]}"
    legacy = kit.docker_archive([(kit.image([BASE, APP], docker=True), ["bad:1"])])
    bad_diff = kit.image([BASE])
    wrong_config = json.loads(bad_diff.config)
    wrong_config["rootfs"]["diff_ids"] = [APP.diff_id]
    bad_config = json.dumps(wrong_config).encode()
    return {
        "layer digest": (kit.tar_members(_tamper(good, layer_name, gzip.compress(b"x" * 10))), "truncated"),
        "layer bytes": (kit.tar_members(_tamper(good, layer_name, BASE.blob[:-9] + b"123456789")), "digest mismatch"),
        "config digest": (kit.tar_members(_tamper(good, f"blobs/sha256/{img.id[7:]}", b"{}")), "digest mismatch"),
        "missing blob": (kit.tar_members({k: v for k, v in good.items() if k != layer_name}), "missing"),
        "diff_id": (kit.docker_archive([(kit.Img([BASE], bad_config, b"", ""), ["bad:1"])]), "digest mismatch"),
        "escape link": (kit.tar_members({"manifest.json": json.dumps([{"Config": "c.json", "Layers": ["l/layer.tar"]}]
                                                                     ).encode(), "c.json": bad_config},
                                        {"l/layer.tar": "../../../etc/passwd"}), "leaves"),
        "truncated gzip": (gzip.compress(legacy)[:-200], "truncated"),
        "not a tar": (b"hello world" * 100, "not a tar"),
        "neither": (kit.tar_members({"foo": b"bar"}), "neither"),
        "bad ref": (kit.docker_archive([(img, ["UPPER:1"])]), "invalid reference"),
    }


@pytest.mark.parametrize("case", list(hostile_cases()))
def test_bad_archive_adds_nothing(store, tmp_path, case):
    data, match = hostile_cases()[case]
    load_bytes(store, kit.docker_archive([(kit.image([kit.layer({"keep": b"1"})]), ["keep:1"])]), tmp_path, "k.tar")
    before, index = store_files(store), store.index_path.read_bytes()
    with pytest.raises(ImageError, match=match) as info:
        load_bytes(store, data, tmp_path)
    assert str(info.value).startswith("cannot load ")
    assert store_files(store) == before and store.index_path.read_bytes() == index


def _docker_up() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _docker_up(), reason="local-only cross-check with docker: no dockerd answers here "
                                             "(CI has none; the round trips above cover the formats)")
def test_docker_cross_check(store, tmp_path):
    """docker save -> our load; our save -> docker load, under a tag only this test uses."""
    have = subprocess.run(["docker", "image", "inspect", "busybox:local"], capture_output=True)
    if have.returncode != 0:
        pytest.skip("local-only cross-check: docker has no busybox:local image")
    archive = tmp_path / "docker.tar"
    subprocess.run(["docker", "save", "-o", str(archive), "busybox:local"], check=True)
    loaded = load_archive(store, archive)
    docker_id = json.loads(have.stdout)[0]["Id"]
    assert loaded[0].image.id == docker_id
    store.tag("busybox:local", "composer-test/roundtrip:saved")
    ours = tmp_path / "ours.tar"
    with open(ours, "wb") as f:
        save_images(store, ["composer-test/roundtrip:saved"], f)
    try:
        out = subprocess.run(["docker", "load", "-i", str(ours)], capture_output=True, text=True, check=True)
        assert "composer-test/roundtrip:saved" in out.stdout
        again = subprocess.run(["docker", "image", "inspect", "composer-test/roundtrip:saved"],
                               capture_output=True, text=True, check=True)
        assert json.loads(again.stdout)[0]["Id"] == docker_id
    finally:
        subprocess.run(["docker", "rmi", "composer-test/roundtrip:saved"], capture_output=True)
