"""`up -d`, `ps` and `down` of a 3-service and a 30-service stack: composer versus docker compose v2
(the Go reference, `$ANCHORS_DIR/dc2`), docker-compose 1.29 and podman-compose, same files, same
busybox rootfs, in one run; prints medians and the ratios composer / dc2 (and / docker-compose).

    .venv/bin/python bench/compose_bench.py [--runs 5] [--only composer --only dc2]
                                            [--composer NAME=CHECKOUT ...]

`--composer before=/path/to/other/checkout` adds that checkout's composer (its `.venv`) as one more
peer, so a change is measured before and after in the same run. Needs root and the peers from
../shared/anchors/setup.sh (a peer that is missing is skipped, said so). Each composer runs on its
own state/data dirs under /var/tmp, removed at the end.
Goals: composer at most 1/4 of docker-compose's time on each figure (issue 4); against dc2 (issue 11)
`down` <= 0.25x and `ps` <= 0.5x."""

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


def tools(work: Path, composers: dict[str, Path]) -> dict[str, tuple[list[str], dict[str, str]]]:
    env = dict(os.environ)
    env.pop("COMPOSE_PROJECT_NAME", None)
    out = {}
    for name, checkout in {"composer": ROOT, **composers}.items():
        composer_env = dict(env, COMPOSER_STATE_DIR=str(work / f"{name}-state"),
                            COMPOSER_DATA_DIR=str(work / f"{name}-data"))
        out[name] = ([str(checkout / ".venv" / "bin" / "composer"), "--progress", "quiet"], composer_env)
    if (ANCHORS / "dc2").exists():
        out["dc2"] = ([str(ANCHORS / "dc2")], env)
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
                project = ["-p", "cmpb" + "".join(c for c in name if c.isalnum())[:12].lower()]
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
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", action="append", default=[], help="composer, dc2, docker-compose, podman-compose")
    ap.add_argument("--composer", action="append", default=[], metavar="NAME=CHECKOUT",
                    help="another composer checkout (with its .venv) as a peer, e.g. before=/var/tmp/base")
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
        composers = dict(_named(spec) for spec in args.composer)
        chosen = {name: t for name, t in tools(work, composers).items()
                  if not args.only or name in args.only or name in composers}
        for name in ("composer", *composers):
            if name in chosen:
                prepare_composer(*chosen[name])
        report(bench(chosen, dirs, args.runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _named(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    if not sep or not name or not (Path(path) / ".venv" / "bin" / "composer").exists():
        raise SystemExit(f"compose_bench: --composer {spec!r}: want NAME=CHECKOUT with CHECKOUT/.venv/bin/composer")
    return name, Path(path).resolve()


def report(table: dict[str, dict[str, float]]) -> None:
    names = list(table)
    rows = list(next(iter(table.values()), {}))
    ours = [n for n in names if n not in ("dc2", "docker-compose", "podman-compose")]
    ratios = [(a, b) for b in ("dc2", "docker-compose") if b in table for a in ours]
    print(f"{'median seconds':<18}" + "".join(f"{n:>16}" for n in names)
          + "".join(f"{a + '/' + b:>22}" for a, b in ratios))
    for row in rows:
        line = f"{row:<18}" + "".join(f"{table[n][row]:>16.3f}" for n in names)
        line += "".join(f"{table[a][row] / table[b][row]:>21.2f}x" for a, b in ratios)
        print(line)


if __name__ == "__main__":
    sys.exit(main())
