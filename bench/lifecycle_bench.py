"""Lifecycle figures (issue 6), composer alone:

    sudo .venv/bin/python bench/lifecycle_bench.py [--runs N] [--loop-seconds S]

1. Health-gated start: `up -d` of db (healthcheck) <- app (depends_on: service_healthy); the gap
   between db's first passing probe ending (the monitor's health log) and app's start (goal < 100 ms).
2. A crash-looping `restart: always` service: CPU used by its monitor and everything it forked
   (utime+stime+cutime+cstime of the monitor) over S seconds of wall time, in % of one core (goal < 5%).
3. `up -d` on an unchanged running 30-service stack (goal < 300 ms).
Uses the anchors' busybox rootfs tar ($ANCHORS_DIR/busybox-rootfs.tar, made by ../shared/anchors/setup.sh) imported as busybox:local."""

from __future__ import annotations

import argparse
import calendar
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
import stacks  # noqa: E402

COMPOSER = str(ROOT / ".venv" / "bin" / "composer")
ROOTFS_TAR = Path(os.environ.get("ANCHORS_DIR", "/var/tmp/composer-anchors")) / "busybox-rootfs.tar"

HEALTH_STACK = f"""services:
  db:
    image: {stacks.IMAGE}
    init: true
    command: sh -c 'sleep 0.3; touch /tmp/ready; exec httpd -f -p 80'
    healthcheck: {{test: ["CMD", "test", "-e", "/tmp/ready"], interval: 1s, start_period: 5s, start_interval: 100ms}}
  app:
    image: {stacks.IMAGE}
    init: true
    command: httpd -f -p 80
    depends_on: {{db: {{condition: service_healthy}}}}
"""

LOOP_STACK = f"""services:
  crash:
    image: {stacks.IMAGE}
    command: sh -c 'exit 1'
    restart: always
"""


def composer(env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([COMPOSER, *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)


def iso(text: str) -> float:
    base, _, frac = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))


def inspect(env: dict, cwd: Path, name: str) -> dict:
    return json.loads(composer(env, cwd, "container", "inspect", name).stdout)[0]


def health_gap(env: dict, work: Path, runs: int) -> list[float]:
    d = work / "health"
    d.mkdir()
    (d / "compose.yaml").write_text(HEALTH_STACK)
    gaps = []
    for _ in range(runs):
        try:
            composer(env, d, "up", "-d")
            db, app = inspect(env, d, "health-db-1"), inspect(env, d, "health-app-1")
            passed = [e for e in db["health_log"] if e["ExitCode"] == 0]
            gaps.append(app["started_at"] - iso(passed[0]["End"]))
        finally:
            composer(env, d, "down", "-t", "1")
    return gaps


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def crash_loop(env: dict, work: Path, seconds: float) -> tuple[float, int]:
    d = work / "loop"
    d.mkdir()
    (d / "compose.yaml").write_text(LOOP_STACK)
    try:
        composer(env, d, "up", "-d")
        monitor = inspect(env, d, "loop-crash-1")["monitor_pid"]
        t0, c0 = time.monotonic(), cpu_seconds(monitor)
        time.sleep(seconds)
        used = cpu_seconds(monitor) - c0
        restarts = inspect(env, d, "loop-crash-1")["restart_count"]
        return 100.0 * used / (time.monotonic() - t0), restarts
    finally:
        composer(env, d, "down", "-t", "1")


def noop_up(env: dict, work: Path, runs: int) -> list[float]:
    d = work / "many"
    d.mkdir()
    (d / "compose.yaml").write_text(stacks.many(30))
    times = []
    try:
        composer(env, d, "up", "-d")
        for _ in range(runs):
            t = time.perf_counter()
            composer(env, d, "up", "-d")
            times.append(time.perf_counter() - t)
    finally:
        composer(env, d, "down", "-t", "1")
    return times


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--loop-seconds", type=float, default=60.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="composer-lifecycle-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, COMPOSER_STATE_DIR=str(work / "state"), COMPOSER_DATA_DIR=str(work / "data"))
        subprocess.run([COMPOSER, "image", "import", str(ROOTFS_TAR), stacks.IMAGE, "-c", 'CMD ["/bin/sh"]'],
                       env=env, check=True, capture_output=True)
        gaps = health_gap(env, work, args.runs)
        print(f"health-gated start gap: median {statistics.median(gaps) * 1000:.0f} ms, "
              f"max {max(gaps) * 1000:.0f} ms over {len(gaps)} runs (goal < 100 ms)")
        times = noop_up(env, work, args.runs)
        print(f"up -d, unchanged 30-service stack: median {statistics.median(times) * 1000:.0f} ms (goal < 300 ms)")
        pct, restarts = crash_loop(env, work, args.loop_seconds)
        print(f"crash loop (restart: always, exits at once): {pct:.2f}% of one core over {args.loop_seconds:g} s, "
              f"{restarts} restarts (goal < 5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
