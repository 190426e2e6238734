"""Dockerfile build: cold build, cached rebuild (the goal: under 1 s), rebuild after one file changed.
Whole CLI (median of N, default 10) and the library call alone; docker build side by side when a
docker with a busybox image is present.

    sudo .venv/bin/python bench/build_bench.py [N]"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PY = os.path.join(ROOT, ".venv", "bin", "python")

DOCKERFILE = """\
FROM busybox AS builder
ARG VERSION=1
WORKDIR /src
COPY src/ ./
RUN find . -type f | sort > /manifest && echo built $VERSION > /version
RUN rm -rf /src/tmp

FROM busybox
ENV APP=/app
WORKDIR /app
COPY --from=builder /manifest /version ./
COPY data.bin ./
COPY src/ ./src/
RUN cat version && wc -l manifest
USER nobody
CMD ["cat", "/app/version"]
"""


def make_context(base: str) -> str:
    ctx = os.path.join(base, "ctx")
    for i in range(200):
        path = os.path.join(ctx, "src", f"pkg{i % 10}", f"mod{i}.py")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(f"value = {i}\n" * 20)
    os.makedirs(os.path.join(ctx, "src", "tmp"), exist_ok=True)
    with open(os.path.join(ctx, "data.bin"), "wb") as f:
        f.write(os.urandom(20 << 20))
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    return ctx


def timed(argv: list[str], env=None) -> float:
    t = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    base = tempfile.mkdtemp(prefix="composer-bench-build-", dir="/var/tmp")
    env = dict(os.environ, COMPOSER_STATE_DIR=f"{base}/state", COMPOSER_DATA_DIR=f"{base}/data")
    build = [PY, "-m", "composer", "image", "build", "--network", "none", "-t", "bench-build:1"]
    try:
        subprocess.run([PY, "-m", "composer", "image", "bootstrap", "busybox"], env=env, check=True,
                       capture_output=True)
        ctx = make_context(base)
        print(f"context: 200 small files + a 20 MB file; Dockerfile: 2 stages, 14 steps, 3 RUN")
        print(f"composer cold build:               {timed(build + [ctx], env):6.2f} s")
        cached = [timed(build + [ctx], env) for _ in range(n)]
        print(f"composer cached rebuild (CLI):     {statistics.median(cached):6.2f} s (median of {n}, max "
              f"{max(cached):.2f})")
        os.environ.update(COMPOSER_STATE_DIR=env["COMPOSER_STATE_DIR"], COMPOSER_DATA_DIR=env["COMPOSER_DATA_DIR"])
        from composer.images.dockerfile.builder import BuildOptions, build as lib_build
        from composer.images.store import ImageStore

        store = ImageStore()
        opts = BuildOptions(context=ctx, tags=("bench-build:1",), network="none")
        lib = []
        for _ in range(n):
            t = time.perf_counter()
            lib_build(store, opts)
            lib.append(time.perf_counter() - t)
        print(f"composer cached rebuild (library): {statistics.median(lib):6.3f} s (median of {n})")
        with open(os.path.join(ctx, "src", "pkg3", "mod3.py"), "a") as f:
            f.write("changed = True\n")
        print(f"composer rebuild after 1 file changed: {timed(build + [ctx], env):6.2f} s")
        docker_side_by_side(ctx, n)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def docker_side_by_side(ctx: str, n: int) -> None:
    if not shutil.which("docker"):
        return
    if subprocess.run(["docker", "image", "inspect", "busybox"], capture_output=True).returncode != 0:
        print("docker: skipped (no busybox image)")
        return
    argv = ["docker", "build", "-q", "--network", "none", "-t", "composer-bench-build:1", ctx]
    try:
        print(f"docker cold build:                 {timed(argv):6.2f} s")
        cached = [timed(argv) for _ in range(n)]
        print(f"docker cached rebuild:             {statistics.median(cached):6.2f} s (median of {n})")
    except subprocess.CalledProcessError as err:
        print(f"docker: failed ({err})")
    finally:
        subprocess.run(["docker", "rmi", "-f", "composer-bench-build:1"], capture_output=True)


if __name__ == "__main__":
    main()
