"""`up` prepares its images in the library (project/images.py) and the CLI only draws the progress:
a service with `build:` is built when its image is missing, not again when it exists, again with
--build, never with --no-build; `composer build` rebuilds; a missing image is pulled (here from a
registry that refuses, on loopback: the error names the service), and `create` neither builds nor
pulls."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import remove_networks

pytestmark = pytest.mark.root

STACK = """\
services:
  app:
    build: ./app
    command: ["sleep", "30"]
"""


@pytest.fixture
def stack(cli, composer_env, tmp_path):
    from composer.images.bootstrap import bootstrap_busybox
    from composer.images.store import ImageStore

    bootstrap_busybox(ImageStore())
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM busybox\nCOPY msg.txt /msg.txt\n")
    (tmp_path / "app" / "msg.txt").write_text("built\n")
    (tmp_path / "compose.yaml").write_text(STACK)
    name = "cmptimg" + uuid.uuid4().hex[:6]  # the data dir (and its images) outlive a test

    def run(*args: str, check: bool = True):
        proc = cli("--progress", "plain", "-p", name, *args, cwd=tmp_path, timeout=120)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    run.dir, run.name = tmp_path, name
    yield run
    cli("-p", name, "down", "-t", "0", cwd=tmp_path)
    remove_networks(composer_env["COMPOSER_STATE_DIR"])


def test_up_builds_what_is_missing_once_and_build_rebuilds(stack):
    first = stack("up", "-d")
    assert f"Building app ({stack.name}-app)" in first.stderr and "Built app" in first.stderr
    assert f"Container {stack.name}-app-1  Started" in first.stderr
    assert stack("exec", "-T", "app", "cat", "/msg.txt").stdout == "built\n"
    again = stack("up", "-d")
    assert "Building" not in again.stderr and f"Container {stack.name}-app-1  Running" in again.stderr
    assert "Built app" in stack("build").stderr
    (stack.dir / "app" / "msg.txt").write_text("rebuilt\n")
    rebuilt = stack("up", "-d", "--build")
    assert "Building app" in rebuilt.stderr and "Recreate" in rebuilt.stderr
    assert stack("exec", "-T", "app", "cat", "/msg.txt").stdout == "rebuilt\n"


def test_no_build_create_and_a_missing_image(stack):
    bad = stack("up", "-d", "--no-build", check=False)
    assert bad.returncode != 0 and f"image {stack.name}-app for service app not found" in bad.stderr
    assert "Building" not in bad.stderr
    bad = stack("create", check=False)  # create neither builds nor pulls
    assert bad.returncode != 0 and "Building" not in bad.stderr
    (stack.dir / "compose.yaml").write_text(STACK + "  gone:\n    image: 127.0.0.1:1/nosuch:1\n")
    bad = stack("up", "-d", "gone", check=False)  # pulled first: the registry (loopback, closed port) refuses
    assert bad.returncode != 0 and "service 'gone'" in bad.stderr and "127.0.0.1:1" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_build_push_then_convert_push_mounts_and_pins(stack):
    """`build --push` pushes what it built to the image's registry; `convert --push` copies it to another
    repository there (every blob mounted, none uploaded) and the manifest names it by digest."""
    import yaml

    from tests.fakeregistry import FakeRegistry

    reg = FakeRegistry()
    try:
        (stack.dir / "compose.yaml").write_text(STACK + f"    image: {reg.domain}/team/app:1\n")
        out = stack("build", "--push")
        assert "Built app" in out.stderr and f"Pushed app {reg.domain}/team/app:1: digest: sha256:" in out.stderr
        digest = out.stderr.split("digest: ")[1].split()[0]
        assert reg.manifests[("team/app", digest)]
        reg.requests.clear()
        conv = stack("convert", "--push", f"{reg.domain}/cluster")
        (deployment,) = [d for d in yaml.safe_load_all(conv.stdout) if d and d["kind"] == "Deployment"]
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == f"{reg.domain}/cluster/team/app@{digest}"
        assert not [p for m, p, _ in reg.requests if m == "PUT" and "/blobs/uploads/" in p]  # all mounted
        assert "warning" not in conv.stderr
    finally:
        reg.close()
