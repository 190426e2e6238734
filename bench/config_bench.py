"""`composer config` versus docker-compose 1.29.2's `config` on the same generated stack file.

    .venv/bin/python bench/config_bench.py [--services 200] [--runs 7]

Prints the median wall time of each (a fresh process per run, as a user pays it) and the ratio.
The goal: composer at most 1/4 of docker-compose's time on a 200-service file."""

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


def make_stack(n: int) -> str:
    """A file with the usual variety: ports, volumes, environment, depends_on, healthchecks, limits."""
    lines = ["version: '3.8'", "services:"]
    for i in range(n):
        lines += [
            f"  svc{i}:",
            f"    image: registry.example/app{i % 7}:${{TAG:-1.{i}}}",
            f"    command: [\"serve\", \"--port\", \"{8000 + i}\"]",
            "    environment:",
            f"      SERVICE_ID: \"{i}\"",
            "      LOG_LEVEL: ${LOG_LEVEL:-info}",
            "    ports:",
            f"      - \"127.0.0.1:{20000 + i}:{8000 + i}\"",
            "    volumes:",
            f"      - ./data/svc{i}:/data",
            "      - shared:/shared:ro",
            "    labels:",
            f"      tier: \"t{i % 3}\"",
            "    healthcheck:",
            f"      test: [\"CMD\", \"wget\", \"-q\", \"http://localhost:{8000 + i}/\"]",
            "      interval: 30s",
            "      retries: 3",
            "    mem_limit: 256m",
            "    restart: unless-stopped",
        ]
        if i:
            lines += ["    depends_on:", f"      - svc{i - 1}"]
    lines += ["volumes:", "  shared: {}"]
    return "\n".join(lines) + "\n"


def median_time(cmd: list[str], cwd: str, runs: int, env: dict) -> float:
    times = []
    for i in range(runs + 1):  # the first run is a warm-up (page cache, bytecode files)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if i:
            times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {proc.stderr.decode()[-500:]}")
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=200)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="config-bench-")
    try:
        Path(tmp, "docker-compose.yml").write_text(make_stack(a.services))
        # Compiled bytecode as an installed program has it (pip and Debian both write .pyc files).
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("COMPOSE_") and k != "PYTHONDONTWRITEBYTECODE"}
        composer = [str(Path(sys.executable).with_name("composer")), "config"]
        mine = median_time(composer, tmp, a.runs, env)
        print(f"composer config        {a.services} services: {mine * 1000:7.1f} ms (median of {a.runs})")
        dc = shutil.which("docker-compose")
        if not dc:
            print("docker-compose not installed: no comparison")
            return 0
        theirs = median_time([dc, "config"], tmp, a.runs, env)
        print(f"docker-compose config  {a.services} services: {theirs * 1000:7.1f} ms (median of {a.runs})")
        print(f"ratio composer/docker-compose: {mine / theirs:.3f} (goal <= 0.25)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
