"""The Debian base: debootstrap --variant=minbase from Debian's mirror (network to deb.debian.org, which
CI has), imported as one layer, then a Dockerfile built on it and run. Measured here: ~25 s for a plain
minbase with an empty package cache (~40 s with --include python3,redis-server,nginx-light)."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import remove_networks

pytestmark = pytest.mark.root


def test_debian_bootstrap_then_build(cli, composer_env, tmp_path):
    from composer.images.bootstrap import bootstrap_debian
    from composer.images.store import ImageStore

    store = ImageStore()
    lines: list[str] = []
    started = time.monotonic()
    image = bootstrap_debian(store, "bookworm", (), "cmptest-debian:bookworm", progress=lines.append)
    elapsed = time.monotonic() - started
    print(f"debootstrap minbase bookworm: {elapsed:.1f} s, {image.size / 1e6:.0f} MB")
    assert len(image.layers) == 1 and image.config.cmd == ("bash",)
    assert any(line.startswith("I: Base system installed successfully") for line in lines)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM cmptest-debian:bookworm\nSHELL [\"/bin/bash\", \"-c\"]\n"
        "RUN [[ -x /usr/sbin/policy-rc.d ]] && rm /etc/motd && echo ok > /built\nCMD [\"cat\", \"/built\"]\n")
    try:
        proc = cli("image", "build", "--network", "none", "-t", "cmptest-deb-app:1", str(ctx), timeout=120)
        assert proc.returncode == 0, proc.stderr
        run = cli("container", "run", "--rm", "--network", "none", "cmptest-deb-app:1")
        assert run.stdout == "ok\n", run.stderr
        run = cli("container", "run", "--rm", "--network", "none", "cmptest-deb-app:1", "bash", "-c",
                  "test ! -e /etc/motd && cat /etc/debian_version && test -z \"$(ls /var/lib/apt/lists | grep -v "
                  "partial)\"")
        assert run.returncode == 0 and run.stdout.startswith("12."), run.stderr
    finally:
        remove_networks(composer_env["COMPOSER_STATE_DIR"])
