"""`composer image build` end to end on the busybox base (root: RUN steps are real containers, layers
keep owners, whiteouts need mknod): multi-stage with COPY --from, ENV/ARG/WORKDIR/USER/CMD, a deletion
that must be a whiteout, .dockerignore, ADD of a tar, the cache (hit under a second, miss after a
change), and hostile contexts (symlink escape, `..`) refused with nothing stored."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from tests.integration.conftest import remove_networks

pytestmark = pytest.mark.root

DOCKERFILE = """\
# a multi-stage build
ARG BASE=busybox
FROM ${BASE} AS builder
ARG GREETING=hello
ENV OUT=/out \\
    UNUSED=1
WORKDIR /src
COPY app.txt ./
RUN echo "$GREETING from $(cat app.txt)" > $OUT.txt \\
    && mkdir -p /junk && echo x > /junk/f
RUN rm -rf /junk

FROM busybox
LABEL org.example.name="build test"
COPY --from=builder /out.txt /result/
COPY . /ctx/
ADD files.tar /unpacked/
COPY --chown=nobody:nobody app.txt /owned/
RUN rm /var/www/index.html && echo made > /made
ENV MODE=${MODE:-prod}
WORKDIR /result
USER nobody
CMD ["sh", "-c", "cat out.txt; echo mode=$MODE; id -u; pwd"]
"""


@pytest.fixture
def base(composer_env):
    from composer.images.bootstrap import bootstrap_busybox
    from composer.images.store import ImageStore

    bootstrap_busybox(ImageStore())
    yield
    remove_networks(composer_env["COMPOSER_STATE_DIR"])


def make_context(root: Path, dockerfile: str = DOCKERFILE) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    (root / "app.txt").write_text("the app\n")
    (root / "secret.txt").write_text("do not ship\n")
    (root / "logs").mkdir(exist_ok=True)
    (root / "logs" / "big.log").write_text("x" * 1000)
    (root / ".dockerignore").write_text("# comment\nsecret.txt\nlogs\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("inner/file.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"inner\n"))
    (root / "files.tar").write_bytes(buf.getvalue())  # ADD unpacks it
    return root


def build(cli, ctx: Path, *extra: str, tag: str = "cmptest-built:1"):
    return cli("image", "build", "-t", tag, *extra, str(ctx), timeout=120)


def test_multistage_build_runs(cli, base, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    proc = build(cli, ctx, "--build-arg", "GREETING=howdy", "--label", "extra=1")
    assert proc.returncode == 0, proc.stderr
    assert "step 1/" in proc.stderr and "howdy" not in proc.stdout
    run = cli("container", "run", "--rm", "--network", "none", "cmptest-built:1", timeout=30)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:4] == ["howdy from the app", "mode=prod", "65534", "/result"]
    check = ("test ! -e /junk && test ! -e /var/www/index.html && test -e /var/www && cat /made "
             "&& ls /ctx && cat /unpacked/inner/file.txt && stat -c %U /owned/app.txt")
    run = cli("container", "run", "--rm", "--network", "none", "cmptest-built:1", "sh", "-c", check)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.split()
    assert lines[0] == "made"
    assert "secret.txt" not in lines and "logs" not in lines and "app.txt" in lines and "Dockerfile" in lines
    assert "inner" in lines and lines[-1] == "nobody"
    inspect = cli("image", "inspect", "cmptest-built:1")
    assert '"extra": "1"' in inspect.stdout and '"org.example.name": "build test"' in inspect.stdout
    # nothing left behind: no build containers, no staged layers
    assert cli("container", "ls", "-a", "-q").stdout.strip() == ""
    layers = Path(os.environ["COMPOSER_DATA_DIR"]) / "images" / "layers"
    assert not [p for p in os.listdir(layers) if p.startswith(".tmp-")]


def test_cache_hit_then_miss(cli, base, tmp_path):
    ctx = make_context(tmp_path / "ctx")
    first = build(cli, ctx)
    assert first.returncode == 0, first.stderr
    started = time.perf_counter()
    again = build(cli, ctx)
    elapsed = time.perf_counter() - started
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout  # same image id
    assert elapsed < 1.0, f"cached rebuild took {elapsed:.2f} s"
    assert again.stderr.count("using cache") >= 8
    (ctx / "app.txt").write_text("changed\n")
    third = build(cli, ctx)
    assert third.returncode == 0, third.stderr
    assert third.stdout != first.stdout
    # the WORKDIR before the COPY is still cached, the COPY and everything after it are not
    assert third.stderr.count("using cache") == 1
    run = cli("container", "run", "--rm", "--network", "none", "cmptest-built:1", "cat", "/result/out.txt")
    assert run.stdout == "hello from changed\n"
    # --no-cache runs every step
    fourth = build(cli, ctx, "--no-cache", "--network", "none")
    assert fourth.returncode == 0 and "using cache" not in fourth.stderr


def test_failing_run_stores_nothing(cli, base, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo ok > /a\nRUN echo failing; exit 3\nRUN true\n")
    proc = build(cli, ctx, "--network", "none", tag="cmptest-fail:1")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "composer: step 3/4 RUN echo failing; exit 3: exit code 3"
    assert "failing" in proc.stderr  # the live output came through
    assert "cmptest-fail" not in cli("image", "ls").stdout
    assert cli("container", "ls", "-a", "-q").stdout.strip() == ""
    layers = Path(os.environ["COMPOSER_DATA_DIR"]) / "images" / "layers"
    assert not [p for p in os.listdir(layers) if p.startswith(".tmp-")]
    missing = build(cli, ctx, tag="cmptest-fail:2", *("-f", str(ctx / "nope")))
    assert missing.returncode == 1 and "no such file" in missing.stderr


@pytest.mark.parametrize("setup, instruction, message", [
    (lambda c: os.symlink("/etc/passwd", c / "link"), "COPY link /x", "symlink leading outside"),
    (lambda c: os.symlink("../../../../etc/passwd", c / "link"), "COPY link /x", "outside the build context"),
    (lambda c: (c / "d").mkdir() or os.symlink("/etc", c / "d" / "etc"), "COPY d/etc/passwd /x",
     "outside the build context"),
    (lambda c: None, "COPY ../outside /x", "outside the build context"),
    (lambda c: None, "ADD http://example.com/x /x", "remote sources are not supported"),
    (lambda c: None, "ONBUILD RUN true", "ONBUILD is not supported"),
])
def test_hostile_context_refused(cli, base, tmp_path, setup, instruction, message):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (tmp_path / "outside").write_text("secret")
    setup(ctx)
    (ctx / "Dockerfile").write_text(f"FROM busybox\n{instruction}\n")
    proc = build(cli, ctx, tag="cmptest-hostile:1")
    assert proc.returncode == 1, proc.stdout
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert "cmptest-hostile" not in cli("image", "ls").stdout


def test_symlinks_inside_copied_dir_stay_links(cli, base, tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "tree").mkdir(parents=True)
    os.symlink("/etc/shadow", ctx / "tree" / "abs")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY tree /tree\n")
    proc = build(cli, ctx, tag="cmptest-links:1")
    assert proc.returncode == 0, proc.stderr
    run = cli("container", "run", "--rm", "--network", "none", "cmptest-links:1", "readlink", "/tree/abs")
    assert run.stdout.strip() == "/etc/shadow"  # a link in the image, pointing into the image
