"""Registry client and pull logic against an in-process fake registry (threads on 127.0.0.1): auth
challenges (bearer token with docker-config credentials, basic), platform choice, digest checks,
tampered / truncated blobs and the all-or-nothing rule; plus the pure parsing helpers."""

from __future__ import annotations

import base64
import json

import pytest

from composer.errors import ImageError, NotFoundError
from composer.images.auth import credentials_for, parse_challenge, plain_http_allowed
from composer.images.manifest import pick_platform
from composer.images.pull import pull_image, pull_project_images
from composer.images.registry import RegistryClient
from composer.images.store import ImageStore
from tests import imagekit as kit
from tests.fakeregistry import FakeRegistry

BASE = kit.layer({"bin/sh": b"#!shell\n"})
APP = kit.layer({"app/x": b"y" * 5000})


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "data")


@pytest.fixture
def docker_config(tmp_path, monkeypatch):
    def write(auths):
        (tmp_path / "docker").mkdir(exist_ok=True)
        (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": auths}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    write({})
    return write


@pytest.fixture
def registry(request, docker_config):
    reg = FakeRegistry(auth=getattr(request, "param", None))
    yield reg
    reg.close()


def store_files(store):
    return {str(p.relative_to(store.root)) for p in store.root.rglob("*")} if store.root.exists() else set()


def test_challenge_and_credentials(tmp_path):
    c = parse_challenge('Bearer realm="https://auth.example/token",service="reg.example",'
                        'scope="repository:a/b:pull"')
    assert c.scheme == "bearer" and c.params == {"realm": "https://auth.example/token", "service": "reg.example",
                                                 "scope": "repository:a/b:pull"}
    assert parse_challenge('Basic realm="x"').scheme == "basic"
    config = tmp_path / "config.json"
    auth = base64.b64encode(b"bob:pa:ss").decode()
    config.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": auth},
                                            "http://reg.local:5000/v2/": {"username": "u", "password": "p"}}}))
    assert credentials_for("docker.io", config).password == "pa:ss"
    assert credentials_for("reg.local:5000", config).username == "u"
    assert credentials_for("other.example", config) is None
    config.write_text(json.dumps({"auths": {"x.example": {"auth": "!!notbase64"}}}))
    with pytest.raises(ImageError, match="not base64"):
        credentials_for("x.example", config)


def test_plain_http_only_for_loopback_or_opt_in(monkeypatch):
    monkeypatch.delenv("COMPOSER_INSECURE_REGISTRIES", raising=False)
    assert plain_http_allowed("localhost:5000") and plain_http_allowed("127.0.0.7:80")
    assert plain_http_allowed("[::1]:5000")
    assert not plain_http_allowed("10.0.0.1:5000") and not plain_http_allowed("registry.example")
    monkeypatch.setenv("COMPOSER_INSECURE_REGISTRIES", "registry.example, 10.0.0.1:5000")
    assert plain_http_allowed("registry.example:443") and plain_http_allowed("10.0.0.1:5000")


def test_pick_platform():
    descs = [{"digest": "a", "platform": {"os": "linux", "architecture": "arm64"}},
             {"digest": "b", "platform": {"os": "linux", "architecture": "amd64"}}]
    assert pick_platform(descs, ("linux", "amd64"))["digest"] == "b"
    with pytest.raises(ImageError, match="no image for platform linux/s390x .*linux/arm64, linux/amd64"):
        pick_platform(descs, ("linux", "s390x"))


@pytest.mark.parametrize("docker", [False, True])
def test_pull_both_formats_and_skip_existing_layers(store, registry, docker):
    img = kit.image([kit.layer({"bin/sh": b"#!shell\n"}, docker=docker), APP], docker=docker)
    registry.add("team/app", "1", img)
    events = []
    image = pull_image(store, f"{registry.domain}/team/app:1", progress=events.append)
    assert image.id == img.id and image.diff_ids == tuple(la.diff_id for la in img.layers)
    assert image.repo_digests == (f"{registry.domain}/team/app@{img.digest}",)
    assert store.read_blob(image.manifest) == img.manifest
    assert {e.phase for e in events} >= {"resolving", "downloading", "done", "pulled"}
    # the same layers again under another name: not fetched a second time
    registry.add("team/other", "2", img)
    registry.requests.clear()
    again = pull_image(store, f"{registry.domain}/team/other:2")
    assert again.id == img.id
    assert not [p for m, p, _ in registry.requests if "/blobs/" in p and p.endswith(tuple(
        la.digest for la in img.layers))]
    assert store.exists(f"{registry.domain}/team/other@{img.digest}")


@pytest.mark.parametrize("docker", [False, True])
def test_manifest_list_picks_the_platform(store, registry, docker):
    amd = kit.image([BASE], docker=docker)
    arm = kit.image([APP], arch="arm64", docker=docker)
    registry.add("multi", "amd", amd)
    registry.add("multi", "arm", arm)
    idx = kit.index([arm, amd], docker=docker)
    registry.add_index("multi", "latest", idx, kit.DOCKER_LIST if docker else kit.OCI_INDEX)
    assert pull_image(store, f"{registry.domain}/multi").id == amd.id
    image = pull_image(store, f"{registry.domain}/multi:latest", platform=("linux", "arm64"))
    assert image.id == arm.id and image.repo_digests == (f"{registry.domain}/multi@{kit.sha(idx)}",)
    with pytest.raises(ImageError, match="no image for platform linux/riscv64"):
        pull_image(store, f"{registry.domain}/multi", platform=("linux", "riscv64"))


@pytest.mark.parametrize("registry", ["bearer"], indirect=True)
def test_bearer_token_from_the_challenge_with_docker_config(store, registry, docker_config):
    registry.add("private/app", "1", kit.image([BASE]))
    with pytest.raises(ImageError, match="access denied by the token server"):
        pull_image(store, f"{registry.domain}/private/app:1")
    auth = base64.b64encode(b"alice:s3cret").decode()
    docker_config({f"http://{registry.domain}": {"auth": auth}})
    pull_image(store, f"{registry.domain}/private/app:1")
    assert registry.scopes[-1] == "repository:private/app:pull"
    assert all(a == f"Bearer {registry.token}" for _, p, a in registry.requests[-3:])


@pytest.mark.parametrize("registry", ["basic"], indirect=True)
def test_basic_auth(store, registry, docker_config):
    registry.add("private/app", "1", kit.image([BASE]))
    with pytest.raises(ImageError, match="authentication required"):
        pull_image(store, f"{registry.domain}/private/app:1")
    docker_config({registry.domain: {"username": "alice", "password": "s3cret"}})
    assert pull_image(store, f"{registry.domain}/private/app:1").refs


@pytest.mark.parametrize("attack, match", [("tamper", "digest mismatch"), ("truncate", "truncated"),
                                           ("config", "config of .*digest mismatch"),
                                           ("missing", "not found")])
def test_hostile_registry_leaves_nothing(store, registry, attack, match):
    keep = kit.image([kit.layer({"keep": b"1"})])
    registry.add("keep", "1", keep)
    pull_image(store, f"{registry.domain}/keep:1")
    before, index = store_files(store), store.index_path.read_bytes()
    big = kit.layer({"big": bytes(range(256)) * 4000})
    img = kit.image([BASE, big, APP])
    registry.add("bad", "1", img)
    if attack == "tamper":
        blob = big.blob
        registry.tamper[big.digest] = blob[:100] + bytes([blob[100] ^ 1]) + blob[101:]
    elif attack == "truncate":
        registry.truncate.add(big.digest)
    elif attack == "config":
        registry.tamper[img.id] = img.config.replace(b'"amd64"', b'"arm64"')
    else:
        del registry.blobs[APP.digest]
    with pytest.raises((ImageError, NotFoundError), match=match):
        pull_image(store, f"{registry.domain}/bad:1")
    assert store_files(store) == before and store.index_path.read_bytes() == index


def test_wrong_digest_in_reference_and_unknown_tag(store, registry):
    img = kit.image([BASE])
    registry.add("app", "1", img)
    registry.manifests[("app", "sha256:" + "0" * 64)] = (img.manifest, img.media_type)
    with pytest.raises(ImageError, match="digest mismatch"):
        pull_image(store, f"{registry.domain}/app@sha256:" + "0" * 64)
    with pytest.raises(NotFoundError, match="manifest app:2 not found .*MANIFEST_UNKNOWN"):
        pull_image(store, f"{registry.domain}/app:2")


def test_unreachable_registry_is_one_clear_error(store):
    with pytest.raises(ImageError, match="cannot reach registry 127.0.0.1:9"):
        RegistryClient("127.0.0.1:9", timeout=2).ping()


def test_pull_project_images_honours_pull_policy(store, registry):
    from dataclasses import dataclass

    @dataclass
    class Svc:
        name: str
        image: str | None = None
        build: object = None
        pull_policy: str | None = None

    @dataclass
    class Proj:
        services: dict

    registry.add("a", "1", kit.image([BASE]))
    registry.add("b", "1", kit.image([APP]))
    a, b = f"{registry.domain}/a:1", f"{registry.domain}/b:1"
    project = Proj({"a": Svc("a", a), "b": Svc("b", b, pull_policy="never"), "c": Svc("c", a, build=object()),
                    "d": Svc("d")})
    assert pull_project_images(project, store) == [a]
    assert pull_project_images(project, store, "missing") == []
    assert not store.exists(b)
