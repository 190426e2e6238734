"""`up -d`, `ps` and `down` of a 3-service and a 30-service stack: composer versus docker-compose and
podman-compose, same files, same busybox rootfs, in one run; prints medians and ratios.

    .venv/bin/python bench/compose_bench.py [--runs 3] [--only composer]

Needs root and the peers from ../shared/anchors/setup.sh (a peer that is missing is skipped, said
so). composer runs on its own state/data dirs under /var/tmp, removed at the end.
Goal (issue 4): composer at most 1/4 of docker-compose's time on each figure."""

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stacks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = Path(os.environ.get("ANCHORS_DIR", "/var/tmp/composer-anchors"))
ROOTFS_TAR = ANCHORS / "busybox-rootfs.tar"


def tools(work: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    env = dict(os.environ)
    env.pop("COMPOSE_PROJECT_NAME", None)
    composer_env = dict(env, COMPOSER_STATE_DIR=str(work / "composer-state"),
                        COMPOSER_DATA_DIR=str(work / "composer-data"))
    out = {"composer": ([str(ROOT / ".venv" / "bin" / "composer"), "--progress", "quiet"], composer_env)}
    if shutil.which("docker-compose"):
        out["docker-compose"] = (["docker-compose"], env)
    if shutil.which("podman-compose"):
        out["podman-compose"] = (["podman-compose"], dict(env, CONTAINERS_CONF=str(ANCHORS / "containers.conf")))
    return out


def prepare_composer(cmd: list[str], env: dict[str, str]) -> None:
    subprocess.run([cmd[0], "image", "import", str(ROOTFS_TAR), stacks.IMAGE, "-c", 'CMD ["/bin/sh"]'],
                   env=env, check=True, capture_output=True)


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return elapsed


def bench(tools_: dict[str, tuple[list[str], dict[str, str]]], dirs: dict[str, Path],
          runs: int) -> dict[str, dict[str, float]]:
    """Runs interleaved (tool A, tool B, ... then again): a shared machine's load changes by the
    second, and ratios are only fair when both sides ran under the same load."""
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in tools_}
    failed: set[str] = set()
    for label, d in dirs.items():
        for _ in range(runs):
            for name, (cmd, env) in tools_.items():
                if name in failed:
                    continue
                project = ["-p", f"cmpbench{name.split('-')[0][:6]}"]
                rows = samples[name]
                try:
                    try:
                        rows.setdefault(f"{label} up", []).append(timed([*cmd, *project, "up", "-d"], d, env))
                        rows.setdefault(f"{label} ps", []).append(timed([*cmd, *project, "ps"], d, env))
                    finally:
                        rows.setdefault(f"{label} down", []).append(
                            timed([*cmd, *project, "down", "-t", "1"], d, env))
                except RuntimeError as err:
                    print(f"{name}: skipped: {err}", file=sys.stderr)
                    failed.add(name)
    return {name: {row: statistics.median(v) for row, v in sorted(rows.items(), key=_order)}
            for name, rows in samples.items() if name not in failed}


def _order(item: tuple[str, list[float]]) -> tuple[int, int]:
    label, verb = item[0].rsplit(" ", 1)
    return int(label.split()[0]), ("up", "down", "ps").index(verb)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", action="append", default=[], help="composer, docker-compose, podman-compose")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("compose_bench: run as root", file=sys.stderr)
        return 1
    if not ROOTFS_TAR.exists():
        print(f"compose_bench: {ROOTFS_TAR} missing: run ../shared/anchors/setup.sh", file=sys.stderr)
        return 1
    stacks.precompile()
    work = Path(tempfile.mkdtemp(prefix="composer-bench-", dir="/var/tmp"))
    try:
        dirs = stacks.write(work / "stacks")
        chosen = {name: t for name, t in tools(work).items() if not args.only or name in args.only}
        if "composer" in chosen:
            prepare_composer(*chosen["composer"])
        report(bench(chosen, dirs, args.runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(table: dict[str, dict[str, float]]) -> None:
    names = list(table)
    rows = list(next(iter(table.values()), {}))
    print(f"{'median seconds':<18}" + "".join(f"{n:>16}" for n in names) + "   composer/docker-compose")
    for row in rows:
        line = f"{row:<18}" + "".join(f"{table[n][row]:>16.3f}" for n in names)
        if "composer" in table and "docker-compose" in table:
            line += f"   {table['composer'][row] / table['docker-compose'][row]:.2f}x"
        print(line)


if __name__ == "__main__":
    sys.exit(main())
