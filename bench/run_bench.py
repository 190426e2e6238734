"""`composer container run --rm IMAGE true`, whole CLI, median of N (default 30); docker/podman
side by side when present. Also the runtime part alone (create+start through exec, in-process).

    sudo .venv/bin/python bench/run_bench.py [N]"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PY = os.path.join(ROOT, ".venv", "bin", "python")


def median_ms(argv: list[str], n: int, env=None) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    base = tempfile.mkdtemp(prefix="composer-bench-", dir="/var/tmp")
    env = dict(os.environ, COMPOSER_STATE_DIR=f"{base}/state", COMPOSER_DATA_DIR=f"{base}/data")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from memory import busybox_rootfs

    layer = busybox_rootfs(base)
    with tarfile.open(f"{base}/bb.tar", "w") as t:
        t.add(layer, arcname=".")
    subprocess.run([PY, "-m", "composer", "image", "import", f"{base}/bb.tar", "bench-bb"], env=env, check=True,
                   capture_output=True)
    try:
        for net in ("none", "bridge"):
            ms = median_ms([PY, "-m", "composer", "container", "run", "--rm", "--network", net, "bench-bb", "true"], n, env)
            print(f"composer container run --rm --network {net} IMAGE true: {ms:.1f} ms (median of {n})")
        for tool in ("docker", "podman"):
            if shutil.which(tool):
                probe = subprocess.run([tool, "run", "--rm", "busybox", "true"], capture_output=True, text=True)
                if probe.returncode != 0:  # e.g. no busybox image: start them with ../shared/anchors/setup.sh
                    print(f"{tool}: skipped ({(probe.stderr.strip().splitlines() or ['failed'])[-1][:100]})")
                    continue
                ms = median_ms([tool, "run", "--rm", "busybox", "true"], n)
                print(f"{tool} run --rm busybox true: {ms:.1f} ms (median of {n})")
        os.environ.update(COMPOSER_STATE_DIR=f"{base}/state", COMPOSER_DATA_DIR=f"{base}/data")
        from composer.runtime import Runtime
        from composer.runtime.spec import ContainerSpec

        rt = Runtime()
        rt.prepare()
        starts = []
        for i in range(n):
            spec = ContainerSpec(id=os.urandom(32).hex(), name=f"b{i}", image="bb", image_id="bb", layers=(layer,),
                                 argv=("true",), network_mode="none")
            t = time.perf_counter()
            rt.create(spec)
            rt.start(spec.id)  # returns once exec has succeeded
            starts.append((time.perf_counter() - t) * 1000)
            rt.wait(spec.id)
            rt.remove(spec.id)
        print(f"runtime create+start to exec (in-process, --network none): {statistics.median(starts):.1f} ms")
    finally:
        subprocess.run([PY, "-m", "composer", "image", "rm", "bench-bb"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
