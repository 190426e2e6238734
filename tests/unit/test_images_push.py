"""Pushing from composer's store to the in-process fake registry: blobs the registry has are skipped
(HEAD), blobs it holds in another repository are mounted, the rest uploaded monolithically or in chunks;
the manifest goes last and its digest comes back. Then compose's `push` verb through the CLI
(SERVICE..., --include-deps, --ignore-push-failures, -q) and `build --push`'s parser, and the copy into
another registry that `convert --push` pins by digest."""

from __future__ import annotations

import json

import pytest

from composer.cli.main import main
from composer.errors import ImageError
from composer.images.archive import load_archive
from composer.images.push import push_image, push_services, push_to_registry, registry_reference
from composer.images.store import ImageStore
from tests import imagekit as kit
from tests.fakeregistry import FakeRegistry

BASE = kit.layer({"bin/sh": b"#!shell\n"})
APP = kit.layer({"app/data": bytes(range(256)) * 40})  # 10 kB: several chunks of 4 kB
IMG = kit.image([BASE, APP])


@pytest.fixture
def registry(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    reg = FakeRegistry()
    yield reg
    reg.close()


def load(store: ImageStore, tmp_path, ref: str) -> None:
    path = tmp_path / "img.tar"
    path.write_bytes(kit.docker_archive([(IMG, [ref])]))
    load_archive(store, path)


def blob_puts(reg: FakeRegistry) -> list[str]:
    return [p for m, p, _ in reg.requests if m == "PUT" and "/blobs/uploads/" in p]


@pytest.mark.parametrize("chunk", [None, 4096])
def test_push_uploads_then_skips_what_exists(registry, tmp_path, chunk):
    store = ImageStore(tmp_path / "data")
    ref = f"{registry.domain}/team/app:1"
    load(store, tmp_path, ref)
    events = []
    digest = push_image(store, ref, chunk_size=chunk, progress=events.append)
    image = store.resolve(ref)
    assert digest == kit.sha(store.read_blob(image.manifest))
    assert registry.manifests[("team/app", "1")][0] == store.read_blob(image.manifest)
    assert len(blob_puts(registry)) == 3  # two layers and the config
    patches = [p for m, p, _ in registry.requests if m == "PATCH"]
    assert (len(patches) >= 3) if chunk else not patches
    assert {e.phase for e in events} == {"pushing", "pushed"}
    assert f"{registry.domain}/team/app@{digest}" in store.resolve(ref).repo_digests
    registry.requests.clear()
    events.clear()
    assert push_image(store, ref, progress=events.append) == digest
    assert not blob_puts(registry) and {e.phase for e in events} == {"exists"}


def test_blobs_are_mounted_from_another_repository(registry, tmp_path):
    store = ImageStore(tmp_path / "data")
    first = f"{registry.domain}/team/app:1"
    load(store, tmp_path, first)
    push_image(store, first)
    second = f"{registry.domain}/other/copy:2"
    store.tag(first, second)
    registry.requests.clear()
    events = []
    digest = push_image(store, second, progress=events.append)  # mounts from team/app: its repo digest
    assert {e.phase for e in events} == {"mounted"} and not blob_puts(registry)
    assert registry.manifests[("other/copy", digest)]
    # a registry that answers a mount with an upload session: the blob is uploaded after all
    registry.mounts = False
    third = f"{registry.domain}/third/copy:3"
    store.tag(first, third)
    events.clear()
    assert push_image(store, third, progress=events.append) == digest
    assert {e.phase for e in events} == {"pushing", "pushed"} and not registry.uploads


def test_push_services_and_registry_copy(registry, tmp_path):
    store = ImageStore(tmp_path / "data")
    load(store, tmp_path, "demo-web:latest")
    store.tag("demo-web:latest", "127.0.0.1:9/x/web:1")
    with pytest.raises(ImageError, match="service 'web'.*cannot reach registry 127.0.0.1:9"):
        push_services(store, [("web", "127.0.0.1:9/x/web:1")])
    store.tag("demo-web:latest", f"{registry.domain}/demo/web:1")
    results = push_services(store, [("web", "127.0.0.1:9/x/web:1"), ("api", f"{registry.domain}/demo/web:1")],
                            ignore_failures=True)
    assert results[0].error and results[0].digest is None and results[1].digest.startswith("sha256:")
    assert registry_reference("reg.example:5000/team", "docker.io/library/app:1") == \
        "reg.example:5000/team/library/app:1"
    pinned = push_to_registry(store, "demo-web", registry.domain)
    assert pinned.startswith(f"{registry.domain}/library/demo-web@sha256:")
    assert registry.manifests[("library/demo-web", pinned.split("@")[1])]


def test_push_verb(registry, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COMPOSER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COMPOSER_STATE_DIR", str(tmp_path / "state"))
    store = ImageStore(tmp_path / "data")
    dom = registry.domain
    (tmp_path / "compose.yaml").write_text(f"""
services:
  web:
    build: .
    image: {dom}/demo/web:1
    depends_on: [api]
  api:
    build:
      context: .
      tags: ["{dom}/demo/api:extra"]
    image: {dom}/demo/api:1
  broken:
    build: .
    image: 127.0.0.1:9/demo/broken:1
  db:
    image: {dom}/library/db:1
""")
    load(store, tmp_path, f"{dom}/demo/web:1")
    for ref in (f"{dom}/demo/api:1", f"{dom}/demo/api:extra", "127.0.0.1:9/demo/broken:1"):
        store.tag(f"{dom}/demo/web:1", ref)
    monkeypatch.chdir(tmp_path)
    assert main(["push", "web"]) == 0
    err = capsys.readouterr().err
    assert f"Pushed web {dom}/demo/web:1: digest: sha256:" in err
    assert ("demo/web", "1") in registry.manifests and ("demo/api", "1") not in registry.manifests
    assert main(["push", "-q", "--include-deps", "web"]) == 0
    assert capsys.readouterr().err == ""
    assert ("demo/api", "1") in registry.manifests and ("demo/api", "extra") in registry.manifests
    assert main(["push"]) != 0  # broken's registry is unreachable: an error naming the service
    err = capsys.readouterr().err
    assert "service 'broken'" in err and "Traceback" not in err
    assert main(["push", "--ignore-push-failures"]) == 0
    err = capsys.readouterr().err
    assert "Pushing broken:" in err and "Pushed web" in err
    assert ("library/db", "1") not in registry.manifests  # not built here: never pushed
    assert main(["build", "--help"]) == 0
    assert "--push" in capsys.readouterr().out
    assert json.loads(registry.manifests[("demo/web", "1")][0])["layers"]
