"""`composer container run --rm IMAGE true`, whole CLI, median of N (default 30); docker/podman
side by side when present (the `busybox:local` image of ../shared/anchors/setup.sh), runs
interleaved so that every tool sees the same machine load. Also the runtime part alone
(create+start through exec, in-process, with the cgroup path kept warm as the CLI keeps it).
Goals (issue 2): composer <= 1/5 of docker; the runtime part < 15 ms.

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
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stacks  # noqa: E402
PY = os.path.join(ROOT, ".venv", "bin", "python")
CLI = os.path.join(ROOT, ".venv", "bin", "composer")  # the entry script users run
ANCHORS = os.environ.get("ANCHORS_DIR", "/var/tmp/composer-anchors")
PEERS = {"docker": (["/usr/bin/docker", "run", "--rm", "busybox:local", "true"], None),
         "docker --network none": (["/usr/bin/docker", "run", "--rm", "--network", "none", "busybox:local", "true"], None),
         "podman": (["podman", "run", "--rm", "localhost/busybox:local", "true"],
                    {"CONTAINERS_CONF": os.path.join(ANCHORS, "containers.conf")})}


def once_ms(argv: list[str], env=None) -> float:
    t = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


def interleaved(cases: dict[str, tuple[list[str], dict | None]], n: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(n):
        for name, (argv, env) in cases.items():
            times[name].append(once_ms(argv, env))
    return {name: statistics.median(v) for name, v in times.items()}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    stacks.precompile()
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
        cases = {f"composer container run --rm --network {net} IMAGE true":
                 ([CLI, "container", "run", "--rm", "--network", net, "bench-bb", "true"], env)
                 for net in ("none", "bridge")}
        for tool, (argv, extra) in PEERS.items():
            peer_env = dict(os.environ, **extra) if extra else None
            if shutil.which(argv[0]) is None:
                continue
            probe = subprocess.run(argv, env=peer_env, capture_output=True, text=True)
            if probe.returncode != 0:  # e.g. no busybox:local image: start them with ../shared/anchors/setup.sh
                print(f"{tool}: skipped ({(probe.stderr.strip().splitlines() or ['failed'])[-1][:100]})")
                continue
            cases[" ".join(argv[:-2]).replace("/usr/bin/", "") + " busybox:local true"] = (argv, peer_env)
        results = interleaved(cases, n)
        docker = next((ms for name, ms in results.items() if name.startswith("docker") and "none" not in name), None)
        for name, ms in results.items():
            ratio = f"   {ms / docker:.2f}x docker" if docker and name.startswith("composer") else ""
            print(f"{name}: {ms:.1f} ms (median of {n}){ratio}")
        os.environ.update(COMPOSER_STATE_DIR=f"{base}/state", COMPOSER_DATA_DIR=f"{base}/data")
        from composer.runtime import Runtime
        from composer.runtime.spec import ContainerSpec

        from composer import startup

        # as the CLI does from its first line (here for every start, not only the first): without
        # it, a cgroup move after a quiet spell waits for an RCU grace period (composer/startup.py)
        startup.warm(seconds=120)
        rt = Runtime()
        rt.prepare()
        for net in ("none", "bridge"):
            starts = []
            for i in range(n):
                spec = ContainerSpec(id=os.urandom(32).hex(), name=f"b{net}{i}", image="bb", image_id="bb",
                                     layers=(layer,), argv=("true",), network_mode=net)
                t = time.perf_counter()
                rt.create(spec)
                rt.start(spec.id)  # returns once exec has succeeded
                starts.append((time.perf_counter() - t) * 1000)
                rt.wait(spec.id)
                rt.remove(spec.id)
            print(f"runtime create+start to exec (in-process, --network {net}): {statistics.median(starts):.1f} ms")
    finally:
        subprocess.run([PY, "-m", "composer", "image", "rm", "bench-bb"], env=env, capture_output=True)
        # the default network outlives its containers (as docker0): its bridge and firewall chains
        # would outlive this temporary state dir too
        subprocess.run([PY, "-m", "composer", "network", "rm", "bridge"], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
