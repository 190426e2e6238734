"""Integration fixtures: a busybox rootfs built once per session (no image store needed), a
Runtime on the test's own state dir that removes whatever the test left, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


@pytest.fixture(scope="session")
def busybox_rootfs(composer_root) -> str:
    """/bin/busybox (Debian's busybox-static), a link per applet, passwd/group, /tmp 1777."""
    root = composer_root / "busybox-rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        path = root / applet
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() and not path.is_symlink():
            path.symlink_to("/bin/busybox")
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "tmp").mkdir(exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    (root / "root").mkdir(exist_ok=True)
    return str(root)


@pytest.fixture
def runtime(composer_env):
    from composer.runtime import Runtime

    rt = Runtime()
    rt.prepare()
    yield rt
    for info in rt.list(all=True):
        try:
            rt.remove(info.id, force=True)
        except Exception as e:  # noqa: BLE001
            print(f"cleanup of {info.name} failed: {e}")
    remove_networks(rt.state_dir)


def remove_networks(state_dir: str) -> None:
    """The default `bridge` network outlives its containers (like docker0): tests remove it."""
    if not os.path.isdir(os.path.join(state_dir, "networks")):
        return
    from composer.runtime.net.network import NetworkManager

    nm = NetworkManager(Path(state_dir))
    for net in nm.list():
        nm.remove(net.name)


@pytest.fixture
def make_spec(busybox_rootfs):
    from composer.runtime.spec import ContainerSpec

    def make(*argv: str, **kw) -> ContainerSpec:
        kw.setdefault("network_mode", "none")
        kw.setdefault("env", (("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),))
        cid = os.urandom(32).hex()
        return ContainerSpec(id=cid, name=kw.pop("name", "t" + cid[:10]), image="busybox", image_id="test",
                             layers=(busybox_rootfs,), argv=argv or ("true",), **kw)

    return make


@pytest.fixture(scope="session")
def busybox_image(composer_root, busybox_rootfs) -> str:
    """The same rootfs imported into the session's image store (for CLI tests)."""
    tar = composer_root / "busybox.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox_rootfs, arcname=".")
    env = dict(os.environ, COMPOSER_DATA_DIR=str(composer_root / "data"),
               COMPOSER_STATE_DIR=str(composer_root / "state" / "image-import"))
    (composer_root / "data").mkdir(exist_ok=True)
    subprocess.run([PYTHON, "-m", "composer", "image", "import", str(tar), "cmptest-busybox:latest"],
                   env=env, check=True, capture_output=True)
    return "cmptest-busybox:latest"


@pytest.fixture
def cli(composer_env):
    """Run the composer CLI as a separate process on this test's state."""
    env = dict(os.environ, **composer_env)

    def run(*args: str, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([PYTHON, "-m", "composer", *args], env=env, capture_output=True, text=True,
                              timeout=timeout, **kw)

    run.env = env
    return run
