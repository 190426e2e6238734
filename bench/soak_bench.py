"""Soak: many up/down cycles of a stack, then a log flood; reports what grew and how fast it went.

    sudo .venv/bin/python bench/soak_bench.py [--cycles 30] [--flood-lines 200000] [--json]

Self-contained: its own state and data dirs under /var/tmp/composer-soak-*, a busybox rootfs made
from Debian's busybox-static and imported as busybox:local. After a warm-up cycle it measures, then
runs the cycles (`up -d` of the three-tier stack of bench/stacks.py, one HTTP request to the published
port, `down`), then measures again. Growth, per cycle and in total:
- files and dirs under the state dir and the data dir (the image store excluded),
- composer processes of this state dir (launcher, monitors: comm `cmp-*`), their fds and RSS,
- host objects the runs made: links, cgroups and mounts naming a container id or a network of this
  run, and nft chains naming its bridges.
Throughput: cycles per minute, median `up -d` and `down` times. The flood: two services printing
--flood-lines lines each, one of them also a 1 MB line without newline; `logs` is timed (lines/s) and
checked: every line whole, none split at a 16 KiB record or a monitor's hand-off. Everything made is
removed at the end (`down -v`, the dirs). Exit 1 when anything grew or a line came back split."""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))
import stacks  # noqa: E402
from memory import busybox_rootfs  # noqa: E402

COMPOSER = str(ROOT / ".venv" / "bin" / "composer")


class Soak:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.state, self.data = base / "state", base / "data"
        self.env = dict(os.environ, COMPOSER_STATE_DIR=str(self.state), COMPOSER_DATA_DIR=str(self.data))
        self.env.pop("COMPOSE_PROJECT_NAME", None)
        self.ids: set[str] = set()
        self.networks: set[str] = set()

    def run(self, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([COMPOSER, *args], cwd=cwd, env=self.env, capture_output=True, text=True)
        if check and proc.returncode:
            raise SystemExit(f"composer {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def image(self) -> None:
        root = busybox_rootfs(str(self.base))
        for applet in ("httpd", "seq", "head", "tr", "cat"):
            os.symlink("busybox", os.path.join(root, "bin", applet))
        tar = self.base / "rootfs.tar"
        with tarfile.open(tar, "w") as t:
            t.add(root, arcname=".")
        self.run(self.base, "image", "import", str(tar), stacks.IMAGE)

    def remember(self) -> None:
        """The ids and networks of what runs now: their host objects are looked for later."""
        self.ids |= {os.path.basename(p) for p in glob.glob(str(self.data / "containers" / "*"))
                     if len(os.path.basename(p)) == 64}
        self.networks |= {os.path.basename(p)[:-5] for p in glob.glob(str(self.state / "networks" / "*.json"))}

    # ------------------------------------------------------------ measures

    def measure(self) -> dict[str, int]:
        files = dirs = 0
        for top in (self.state, self.data):
            for dirpath, dirnames, filenames in os.walk(top):
                if dirpath == str(self.data):
                    dirnames[:] = [d for d in dirnames if d != "images"]
                dirs += len(dirnames)
                files += len(filenames)
        procs = self._processes()
        fds = rss = 0
        for pid in procs:
            try:
                fds += len(os.listdir(f"/proc/{pid}/fd"))
                with open(f"/proc/{pid}/status") as f:
                    rss += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
            except (OSError, StopIteration):
                pass
        return {"files": files, "dirs": dirs, "processes": len(procs), "fds": fds, "rss_kb": rss,
                **self._host_objects()}

    def _processes(self) -> list[int]:
        marker = str(self.state).encode()
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if not f.read().startswith("cmp-"):
                        continue
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if marker in f.read():
                        found.append(int(pid))
            except OSError:
                continue
        return found

    def _host_objects(self) -> dict[str, int]:
        from composer.runtime.net.ipam import bridge_name, veth_name
        from tests import hostobjects

        bridges = {bridge_name(n) for n in self.networks}
        names = bridges | {veth_name(i, n) for i in self.ids for n in self.networks}
        links = len(names & hostobjects.links())
        cgroups = sum(1 for c in hostobjects.cgroups() if any(i in c for i in self.ids))
        mounts = sum(1 for m in hostobjects.mounts("/") if str(self.base) in m or any(i in m for i in self.ids))
        nft = subprocess.run(["nft", "list", "table", "ip", "composer"], capture_output=True, text=True).stdout
        chains = sum(1 for line in nft.splitlines() if any(b in line for b in bridges))
        return {"links": links, "cgroups": cgroups, "mounts": mounts, "nft_lines": chains}

    # ------------------------------------------------------------ phases

    def cycles(self, n: int) -> dict:
        d = self.base / "cycle"
        d.mkdir()
        (d / "compose.yaml").write_text(stacks.three_tier())
        ups, downs = [], []
        self._cycle(d, [], [])  # warm-up: launcher, seccomp cache, bytecode
        before = self.measure()
        start = time.perf_counter()
        for _ in range(n):
            self._cycle(d, ups, downs)
        elapsed = time.perf_counter() - start
        after = self.measure()
        return {"cycles": n, "cycles_per_min": round(60 * n / elapsed, 1),
                "up_median_s": round(statistics.median(ups), 3), "down_median_s": round(statistics.median(downs), 3),
                "before": before, "after": after, "growth": {k: after[k] - before[k] for k in after}}

    def _cycle(self, d: Path, ups: list, downs: list) -> None:
        t = time.perf_counter()
        self.run(d, "up", "-d")
        ups.append(time.perf_counter() - t)
        self.remember()
        port = self.run(d, "port", "lb", "80").stdout.strip().rsplit(":", 1)[-1]
        try:  # traffic to our own container on loopback only
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
        except OSError:
            pass  # busybox httpd without an index answers 404: the connection is what counts
        t = time.perf_counter()
        self.run(d, "down")
        downs.append(time.perf_counter() - t)

    def flood(self, lines: int) -> dict:
        d = self.base / "flood"
        d.mkdir()
        big = 1 << 20
        (d / "compose.yaml").write_text(f"""services:
  a:
    image: {stacks.IMAGE}
    command: [seq, '1', '{lines}']
  b:
    image: {stacks.IMAGE}
    command: [sh, -c, 'seq 1 {lines}; head -c {big} /dev/zero | tr "\\\\0" x; echo']
""")
        self.run(d, "up", "-d")
        self.remember()
        deadline = time.monotonic() + 300
        while self.run(d, "ps", "-q").stdout.strip():  # running ones only
            if time.monotonic() > deadline:
                raise SystemExit("the flood did not end in 300 s")
            time.sleep(0.2)
        t = time.perf_counter()
        out = self.run(d, "logs", "--no-log-prefix").stdout
        took = time.perf_counter() - t
        got = out.splitlines()
        expected = 2 * lines + 1
        numbers = sorted(int(x) for x in got if x.isdigit())
        whole = numbers == sorted(list(range(1, lines + 1)) * 2) and sum(1 for x in got if x == "x" * big) == 1
        self.run(d, "down")
        return {"lines": len(got), "expected": expected, "all_whole": whole and len(got) == expected,
                "logs_s": round(took, 2), "lines_per_s": int(len(got) / took)}

    def cleanup(self) -> None:
        for sub in ("cycle", "flood"):
            if (self.base / sub).is_dir():
                self.run(self.base / sub, "down", "-v", check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--flood-lines", type=int, default=200_000)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("soak_bench needs root (namespaces, cgroups, bridges)", file=sys.stderr)
        return 2
    stacks.precompile()
    soak = Soak(Path(tempfile.mkdtemp(prefix="composer-soak-", dir="/var/tmp")))
    try:
        soak.image()
        result = {"cycles": soak.cycles(args.cycles), "flood": soak.flood(args.flood_lines)}
    finally:
        soak.cleanup()
        shutil.rmtree(soak.base, ignore_errors=True)
    c, f = result["cycles"], result["flood"]
    grown = {k: v for k, v in c["growth"].items() if v > 0 and k != "rss_kb"}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{c['cycles']} up/down cycles of 3 services: {c['cycles_per_min']} cycles/min, "
              f"up -d median {c['up_median_s']} s, down median {c['down_median_s']} s")
        print("before: " + ", ".join(f"{k} {v}" for k, v in c["before"].items()))
        print("after:  " + ", ".join(f"{k} {v}" for k, v in c["after"].items()))
        print("growth: " + (", ".join(f"{k} +{v}" for k, v in grown.items()) or "none")
              + f" (rss of composer processes {c['growth']['rss_kb']:+d} kB)")
        print(f"log flood: {f['lines']} lines ({f['expected']} expected, "
              f"{'all whole' if f['all_whole'] else 'SPLIT OR LOST LINES'}), logs took {f['logs_s']} s, "
              f"{f['lines_per_s']} lines/s")
    return 1 if grown or not f["all_whole"] else 0


if __name__ == "__main__":
    sys.exit(main())
