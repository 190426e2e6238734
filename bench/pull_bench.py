"""`composer image pull` versus `skopeo copy docker://... dir:` from the same local registry.

    .venv/bin/python bench/pull_bench.py [--size-mb 100] [--runs 5] [--uncompressed] [--data random|binaries]

Starts Debian's docker-registry on 127.0.0.1:<free port> (temp storage), puts an image with one
~100 MB layer there (random data, or the host's shared libraries: what real layers hold and gzip
shrinks ~3x, so inflating is a real cost) (gzip by default, as registries usually serve), then alternates:
a fresh `composer image pull` (a process, empty store: download + verify + extract) and a fresh
`skopeo copy` to a directory (download + verify, no extraction). Prints both medians and the ratio.
The goal: composer within 1.5x of skopeo."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import imagekit as kit  # noqa: E402
from tests.integration.test_registry_distribution import Registry  # noqa: E402


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _binaries(size: int) -> dict[str, bytes]:
    """Files of /usr/lib up to `size` bytes: content as compressible as a real layer's."""
    files, total = {}, 0
    for dirpath, _dirs, names in os.walk("/usr/lib"):
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            if total >= size or os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read(size - total)
            files[path.lstrip("/")] = data
            total += len(data)
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--uncompressed", action="store_true", help="serve the layer as a plain tar")
    parser.add_argument("--data", choices=("random", "binaries"), default="random")
    args = parser.parse_args()
    composer = str(ROOT / ".venv" / "bin" / "composer")
    work = Path(tempfile.mkdtemp(prefix="pull-bench-composer-", dir="/var/tmp"))
    registry = None
    try:
        registry = Registry(work / "registry")
        print(f"registry on {registry.domain}; making a {args.size_mb} MB random layer ...", flush=True)
        if args.data == "random":
            big = kit.random_layer(args.size_mb << 20, compress=not args.uncompressed)
        else:
            big = kit.layer(_binaries(args.size_mb << 20), compress=not args.uncompressed)
        img = kit.image([kit.layer({"etc/hostname": b"bench\n"}), big])
        layout = kit.write_layout(kit.oci_layout([(img, "bench")]), work / "layout")
        ref = f"{registry.domain}/bench/big:1"
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:bench", f"docker://{ref}"],
                       check=True)
        print(f"layer blob {len(big.blob) / 1e6:.1f} MB, tar {len(big.tar) / 1e6:.1f} MB "
              f"({'plain tar' if args.uncompressed else 'gzip'}, {args.data})")
        ours, theirs = [], []
        for run in range(args.runs):
            data = work / f"data-{run}"
            env = {**os.environ, "COMPOSER_DATA_DIR": str(data)}
            ours.append(timed([composer, "image", "pull", "-q", ref], env))
            out = work / f"skopeo-{run}"
            theirs.append(timed(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                                 f"dir:{out}"], env))
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
            print(f"run {run + 1}: composer {ours[-1]:.2f} s, skopeo {theirs[-1]:.2f} s", flush=True)
        a, b = statistics.median(ours), statistics.median(theirs)
        print(f"runs: composer {' '.join(f'{x:.2f}' for x in ours)}; skopeo {' '.join(f'{x:.2f}' for x in theirs)}")
        print(f"median: composer image pull {a:.2f} s, skopeo copy to dir {b:.2f} s, ratio {a / b:.2f}x "
              f"(goal <= 1.5x)")
    finally:
        if registry is not None:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
