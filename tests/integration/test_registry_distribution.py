"""Pull and push against a REAL registry: Debian's docker-registry on 127.0.0.1:<free port> (temp storage,
no auth), images put there by skopeo in both manifest formats (Docker v2s2 and OCI), single images and
two-platform lists/indexes; composer's push read back by skopeo; a tampering/truncating proxy between
composer and the registry. Nothing is run from the images: layers and configs are compared."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from composer.errors import ImageError
from composer.images.archive import load_archive
from composer.images.pull import pull_image
from composer.images.push import push_image
from composer.images.store import ImageStore
from tests import imagekit as kit
from tests.conftest import IN_CI

pytestmark = pytest.mark.root

BASE = kit.layer({"bin/sh": b"#!shell\n", "etc/os-release": b"ID=test\n"})
APP = kit.layer({"app/data.bin": os.urandom(300_000)})
RAW = kit.layer({"raw/file": b"uncompressed layer\n"}, compress=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (it is in DEBS: ./dev setup installs it)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return path


class Registry:
    """docker-registry serve CONFIG on a free loopback port; stopped by pid."""

    def __init__(self, base: Path) -> None:
        binary = need("docker-registry")
        self.port = free_port()
        (base / "storage").mkdir(parents=True)
        config = base / "config.yml"
        config.write_text(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {base / 'storage'}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{self.port}
""")
        self.log = open(base / "registry.log", "wb")
        self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 15
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/v2/")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"docker-registry did not start: {(base / 'registry.log').read_text()}")
            time.sleep(0.05)

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture
def store(tmp_path):
    return ImageStore(tmp_path / "data")


def skopeo(*args: str) -> str:
    proc = subprocess.run([need("skopeo"), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def skopeo_push(layout: Path, name: str, dest: str, fmt: str, *extra: str) -> None:
    skopeo("copy", "-q", "--dest-tls-verify=false", "--format", fmt, *extra, f"oci:{layout}:{name}", f"docker://{dest}")


def remote(dest: str, *what: str) -> bytes:
    out = subprocess.run([need("skopeo"), "inspect", "--raw", "--tls-verify=false", *what, f"docker://{dest}"],
                         capture_output=True, timeout=60, check=True).stdout
    return out


@pytest.mark.parametrize("fmt", ["v2s2", "oci"])
def test_pull_what_skopeo_pushed(registry, store, tmp_path, fmt):
    img = kit.image([BASE, APP, RAW])
    layout = kit.write_layout(kit.oci_layout([(img, "app")]), tmp_path / "layout")
    ref = f"{registry.domain}/it/app:{fmt}"
    skopeo_push(layout, "app", ref, fmt)
    manifest = remote(ref)
    config = remote(ref, "--config")
    image = pull_image(store, ref)
    assert image.id == kit.sha(config)
    assert image.diff_ids == (BASE.diff_id, APP.diff_id, RAW.diff_id)
    assert image.repo_digests == (f"{registry.domain}/it/app@{kit.sha(manifest)}",)
    assert store.read_blob(image.manifest) == manifest
    expected_type = kit.DOCKER_MANIFEST if fmt == "v2s2" else kit.OCI_MANIFEST
    assert json.loads(manifest)["mediaType"] == expected_type
    assert (Path(image.layers[1]) / "app/data.bin").read_bytes() == APP.tar[512 * 3:512 * 3 + 300_000] or \
        (Path(image.layers[1]) / "app/data.bin").stat().st_size == 300_000
    assert store.resolve(f"{registry.domain}/it/app@{kit.sha(manifest)}").id == image.id


@pytest.mark.parametrize("fmt", ["v2s2", "oci"])
def test_pull_two_platform_list(registry, store, tmp_path, fmt):
    amd = kit.image([BASE])
    arm = kit.image([kit.layer({"arm": b"64"})], arch="arm64")
    idx = kit.index([arm, amd])
    members = kit.oci_layout([(amd, None)])
    members.update({f"blobs/sha256/{d[7:]}": b for d, b in arm.blobs.items()})
    members[f"blobs/sha256/{kit.sha(idx)[7:]}"] = idx
    members["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": kit.OCI_INDEX, "digest": kit.sha(idx), "size": len(idx),
         "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}).encode()
    layout = kit.write_layout(members, tmp_path / "layout")
    ref = f"{registry.domain}/it/multi:{fmt}"
    skopeo_push(layout, "multi", ref, fmt, "--all")
    top = remote(ref)
    assert json.loads(top)["mediaType"] == (kit.DOCKER_LIST if fmt == "v2s2" else kit.OCI_INDEX)
    image = pull_image(store, ref)
    assert image.architecture == "amd64" and image.diff_ids == (BASE.diff_id,)
    assert image.repo_digests == (f"{registry.domain}/it/multi@{kit.sha(top)}",)
    other = pull_image(store, ref, platform=("linux", "arm64"))
    assert other.architecture == "arm64" and other.id == arm.id


@pytest.mark.parametrize("chunk", [None, 100_000])
def test_push_then_skopeo_pulls_back(registry, store, tmp_path, chunk):
    img = kit.image([kit.Layer(BASE.tar, BASE.blob, kit.DOCKER_LAYER_GZ),
                     kit.Layer(APP.tar, APP.blob, kit.DOCKER_LAYER_GZ)], docker=True)
    load_archive(store, _tar(tmp_path, kit.tar_members(kit.oci_layout([(img, "docker.io/library/src:1")]))))
    ref = f"{registry.domain}/it/pushed:{'chunked' if chunk else 'mono'}"
    store.tag("src:1", ref)
    digest = push_image(store, ref, chunk_size=chunk)
    assert digest == img.digest
    out = tmp_path / "back"
    skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"dir:{out}")
    for digest_, blob in img.blobs.items():
        if digest_ != img.digest:
            assert (out / digest_[7:]).read_bytes() == blob
    assert (out / "manifest.json").read_bytes() == img.manifest
    assert f"{registry.domain}/it/pushed@{img.digest}" in store.resolve(ref).repo_digests
    assert push_image(store, ref) == digest  # again: every blob exists, only the manifest is put


def test_push_mounts_blobs_from_another_repository(registry, store, tmp_path):
    """The real registry links blobs it holds under a repository we pushed to (201 to ?mount=&from=)."""
    img = kit.image([BASE, kit.layer({"m/file": b"mounted\n"})])
    load_archive(store, _tar(tmp_path, kit.tar_members(kit.oci_layout([(img, "docker.io/library/mnt:1")]))))
    first, second = f"{registry.domain}/it/mount-a:1", f"{registry.domain}/it/mount-b:1"
    store.tag("mnt:1", first)
    digest = push_image(store, first)
    store.tag("mnt:1", second)
    events = []
    assert push_image(store, second, progress=events.append) == digest
    assert {e.phase for e in events} == {"mounted"}
    out = tmp_path / "back"
    skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{second}", f"dir:{out}")
    assert (out / "manifest.json").read_bytes() == img.manifest


class TamperProxy:
    """Forwards to the registry; blob `digest` comes back with one byte flipped or cut short."""

    def __init__(self, upstream: int, digest: str, mode: str) -> None:
        def handler_factory():
            class Handler(BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"

                def log_message(self, *args):
                    pass

                def do_HEAD(self):
                    self.do_GET()

                def do_GET(self):
                    conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=10)
                    headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "authorization")}
                    conn.request(self.command, self.path, headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                    target = self.path.endswith(f"/blobs/{digest}") and self.command == "GET"
                    if target and mode == "tamper":
                        body = body[:200] + bytes([body[200] ^ 0xFF]) + body[201:]
                    self.send_response(resp.status)
                    for key, value in resp.getheaders():
                        if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command == "GET":
                        self.wfile.write(body[: len(body) // 3] if target and mode == "truncate" else body)
                    if target and mode == "truncate":
                        self.close_connection = True
                    conn.close()
            return Handler

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler_factory())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.domain = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode, match", [("tamper", "digest mismatch"), ("truncate", "truncated")])
def test_tampered_or_truncated_blob_from_the_registry(registry, store, tmp_path, mode, match):
    img = kit.image([BASE, APP])
    layout = kit.write_layout(kit.oci_layout([(img, "app")]), tmp_path / "layout")
    skopeo_push(layout, "app", f"{registry.domain}/it/hostile:1", "oci")
    keep = kit.image([kit.layer({"keep": b"1"})])
    load_archive(store, _tar(tmp_path, kit.tar_members(kit.oci_layout([(keep, "docker.io/library/keep:1")]))))
    before = sorted(str(p) for p in store.root.rglob("*"))
    index = store.index_path.read_bytes()
    proxy = TamperProxy(registry.port, APP.digest, mode)
    try:
        with pytest.raises(ImageError, match=match):
            pull_image(store, f"{proxy.domain}/it/hostile:1")
    finally:
        proxy.close()
    assert sorted(str(p) for p in store.root.rglob("*")) == before
    assert store.index_path.read_bytes() == index


def test_cli_pull_inspect_history_prune(registry, tmp_path, monkeypatch):
    from tests.integration.test_images_cli import composer

    monkeypatch.setenv("COMPOSER_DATA_DIR", str(tmp_path / "cli-data"))
    img = kit.image([BASE, APP])
    layout = kit.write_layout(kit.oci_layout([(img, "app")]), tmp_path / "layout")
    ref = f"{registry.domain}/it/cli:1"
    skopeo_push(layout, "app", ref, "v2s2")
    out = composer("image", "pull", ref)
    digest = kit.sha(remote(ref))
    assert f"Digest: {digest}" in out.stdout.decode()
    info = json.loads(composer("image", "inspect", ref).stdout)[0]
    assert info["RepoDigests"] == [f"{registry.domain}/it/cli@{digest}"]
    history = composer("image", "history", ref).stdout.decode()
    assert "layer 1" in history and "layer 0" in history
    bad = composer("image", "pull", f"{registry.domain}/it/missing:1", check=False)
    errors = [line for line in bad.stderr.decode().splitlines() if line.startswith("composer:")]
    assert bad.returncode == 1 and len(errors) == 1 and "not found" in errors[0] and "Traceback" not in bad.stderr.decode()
    composer("image", "tag", ref, "other:1")
    composer("image", "rm", ref)
    composer("image", "rm", "other:1")
    assert "Total reclaimed space" in composer("image", "prune", "-f").stdout.decode()


def _tar(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / f"archive-{len(data)}.tar"
    path.write_bytes(data)
    return path
