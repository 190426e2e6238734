"""Watch figures (issue 15): composer watch, and docker compose v2's `watch` side by side when the
anchors' dockerd runs (../shared/anchors/setup.sh; `$ANCHORS_DIR/dc2`):

    sudo .venv/bin/python bench/watch_bench.py [--saves N] [--tools composer,dc2]

1. save -> visible: a file under a `sync` rule rewritten in place; the time until its new content
   is readable inside the container (polled through the container's root, /proc/<pid>/root, every ms).
2. save -> restarted and answering: a file under a `sync+restart` rule; until the service's httpd
   (on loopback) serves a new boot id.
3. rebuild -> answering: a file COPY'd into the image under a `rebuild` rule; until httpd serves it.
4. a 2,000-file tree with a 10,000-file ignored node_modules/: the inotify watches the watcher
   holds (its /proc fdinfo) and the time from starting `watch --no-up` to its "watching" line.
Medians and p95 over N saves each (default 50). Same stack file, same busybox rootfs for both."""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
import stacks  # noqa: E402

COMPOSER = str(ROOT / ".venv" / "bin" / "composer")
ANCHORS = Path(os.environ.get("ANCHORS_DIR", "/var/tmp/composer-anchors"))
DC2 = str(ANCHORS / "dc2")
ROOTFS_TAR = ANCHORS / "busybox-rootfs.tar"
HTTPD = "mkdir -p /www; cat /proc/sys/kernel/random/uuid > /www/boot; exec httpd -f -p 80 -h /www"

STACK = f"""services:
  app:
    image: {stacks.IMAGE}
    init: true
    command: ["sh", "-c", "{HTTPD}"]
    ports: ["127.0.0.1:${{APP_PORT}}:80"]
    develop:
      watch:
        - {{action: sync, path: ./src, target: /app/src}}
        - {{action: sync+restart, path: ./conf, target: /app/conf}}
  built:
    build: ./img
    init: true
    ports: ["127.0.0.1:${{BUILT_PORT}}:80"]
    develop:
      watch:
        - {{action: rebuild, path: ./img/version.txt}}
"""
DOCKERFILE = f"""FROM {stacks.IMAGE}
COPY version.txt /www/version.txt
CMD ["httpd", "-f", "-p", "80", "-h", "/www"]
"""
TREE_STACK = f"""services:
  big:
    image: {stacks.IMAGE}
    init: true
    command: ["sleep", "36000"]
    develop:
      watch:
        - {{action: sync, path: ./tree, target: /tree, ignore: [node_modules/]}}
"""


class Tool:
    def __init__(self, name: str, work: Path, ports: tuple[int, int]) -> None:
        self.name, self.ports = name, ports
        self.project = f"cmpw{name}{uuid.uuid4().hex[:4]}"
        if name == "composer":
            self.argv = [COMPOSER, "-p", self.project]
            self.env = dict(os.environ, COMPOSER_STATE_DIR=str(work / "state"), COMPOSER_DATA_DIR=str(work / "data"))
        else:
            self.argv = [DC2, "-p", self.project]
            self.env = dict(os.environ)
        self.env.update(APP_PORT=str(ports[0]), BUILT_PORT=str(ports[1]))

    def run(self, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.argv, *args], cwd=cwd, env=self.env, capture_output=True, text=True,
                              check=check, timeout=600)

    def pid(self, cwd: Path, service: str) -> int:
        cid = self.run(cwd, "ps", "-q", service).stdout.split()[0]
        if self.name == "composer":
            with open(os.path.join(self.env["COMPOSER_STATE_DIR"], "containers", cid, "state.json")) as f:
                return int(json.load(f)["pid"])
        out = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", cid], capture_output=True, text=True)
        return int(out.stdout)

    def watch(self, cwd: Path, *args: str) -> "Watch":
        return Watch(self, cwd, args)


class Watch:
    """A watch process; `ready` is set at its "watching" line (dc2: "Watch enabled")."""

    def __init__(self, tool: Tool, cwd: Path, args: tuple[str, ...]) -> None:
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen([*tool.argv, "watch", *args], cwd=cwd, env=tool.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.ready = threading.Event()
        self.ready_after: float | None = None
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if not self.ready.is_set() and ("watching" in line or "Watch enabled" in line):
                self.ready_after = time.perf_counter() - self.t0
                self.ready.set()

    def wait_ready(self, timeout: float = 300) -> float:
        if not self.ready.wait(timeout):
            raise RuntimeError("watch never became ready:\n" + "".join(self.lines[-30:]))
        return self.ready_after

    def stop(self) -> None:
        self.proc.send_signal(2)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def inotify_watches(self) -> int:
        """Watches on every inotify fd of the process and its children (dc2 runs a plugin)."""
        pids = [self.proc.pid]
        for path in glob.glob("/proc/[0-9]*/stat"):
            try:
                with open(path) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                        pids.append(int(path.split("/")[2]))
            except (OSError, ValueError, IndexError):
                continue
        n = 0
        for pid in pids:
            for info in glob.glob(f"/proc/{pid}/fdinfo/*"):
                try:
                    with open(info) as f:
                        n += sum(1 for line in f if line.startswith("inotify wd:"))
                except OSError:
                    continue
        return n


def rewrite(path: Path, text: str) -> None:
    with open(path, "r+") as f:  # in place, as an editor's save
        f.write(text)
        f.truncate()


def poll(check, timeout: float = 30.0, step: float = 0.001) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if check():
            return time.perf_counter() - t0
        time.sleep(step)
    raise RuntimeError("timed out")


def read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def get(port: int, path: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=0.05) as r:
            return r.read().decode()
    except (OSError, ValueError, http.client.HTTPException):  # refused, timed out, cut short
        return None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stats(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]
    return f"median {statistics.median(xs) * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms   (n={len(xs)})"


def bench_saves(tool: Tool, base: Path, saves: int, gap: float) -> dict[str, list[float]]:
    d = base / f"stack-{tool.name}"
    (d / "src").mkdir(parents=True)
    (d / "conf").mkdir()
    (d / "img").mkdir()
    (d / "compose.yaml").write_text(STACK)
    (d / "src" / "file.txt").write_text("0\n")
    (d / "conf" / "app.conf").write_text("0\n")
    (d / "img" / "version.txt").write_text("v0\n")
    (d / "img" / "Dockerfile").write_text(DOCKERFILE)
    out: dict[str, list[float]] = {"save -> visible": [], "save -> restarted, answering": [],
                                   "rebuild -> answering": []}
    tool.run(d, "up", "-d", "--build")
    w = tool.watch(d, "--no-up")
    try:
        w.wait_ready()
        time.sleep(1.0)
        seen = f"/proc/{tool.pid(d, 'app')}/root/app/src/file.txt"
        for i in range(saves + 1):  # the first save is a warm-up (docker compose creates the file)
            text = f"{i} {uuid.uuid4()}\n"
            t0 = time.perf_counter()
            rewrite(d / "src" / "file.txt", text)
            poll(lambda: read(seen) == text)
            if i:
                out["save -> visible"].append(time.perf_counter() - t0)
            time.sleep(gap)
        port = tool.ports[0]
        for i in range(saves):
            boot = get(port, "/boot")
            t0 = time.perf_counter()
            rewrite(d / "conf" / "app.conf", f"{i} {uuid.uuid4()}\n")
            poll(lambda: (b := get(port, "/boot")) is not None and b != boot, step=0.005)
            out["save -> restarted, answering"].append(time.perf_counter() - t0)
            time.sleep(gap)
        for i in range(saves):
            text = f"v{i + 1} {uuid.uuid4()}\n"
            t0 = time.perf_counter()
            rewrite(d / "img" / "version.txt", text)

            poll(lambda: get(tool.ports[1], "/version.txt") == text, timeout=120, step=0.005)
            out["rebuild -> answering"].append(time.perf_counter() - t0)
            time.sleep(gap)
    finally:
        w.stop()
        tool.run(d, "down", "-v", "-t", "0", *(["--rmi", "local"] if tool.name == "dc2" else []), check=False)
        if tool.name == "dc2":  # the images the rebuilds left, by their compose label
            label = f"label=com.docker.compose.project={tool.project}"
            ids = subprocess.run(["docker", "images", "-q", "--filter", label], capture_output=True,
                                 text=True).stdout.split()
            if ids:
                subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True)
        if os.environ.get("WATCH_BENCH_LINES"):
            print("".join(w.lines))
    return out


def bench_tree(tool: Tool, base: Path) -> tuple[int, float]:
    d = base / f"tree-{tool.name}"
    (d / "compose.yaml").parent.mkdir(parents=True)
    (d / "compose.yaml").write_text(TREE_STACK)
    for i in range(2000):
        p = d / "tree" / f"d{i // 20:03}" / f"f{i % 20:02}.txt"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(str(i))
    for i in range(10000):
        p = d / "tree" / "node_modules" / f"pkg{i // 20:03}" / f"m{i % 20:02}.js"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(str(i))
    tool.run(d, "up", "-d")
    try:
        w = tool.watch(d, "--no-up")
        took = w.wait_ready()
        time.sleep(1.0)
        watches = w.inotify_watches()
        w.stop()
        return watches, took
    finally:
        tool.run(d, "down", "-v", "-t", "0", check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--saves", type=int, default=50)
    ap.add_argument("--tools", default="composer,dc2")
    ap.add_argument("--gap", type=float, default=0.7, help="seconds between saves (dc2 waits 500 ms itself)")
    args = ap.parse_args()
    stacks.precompile()
    tools = args.tools.split(",")
    docker_up = subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    if "dc2" in tools and not (os.path.exists(DC2) and docker_up):
        print("dc2: no dockerd or no $ANCHORS_DIR/dc2 (run ../shared/anchors/setup.sh): composer alone")
        tools = [t for t in tools if t != "dc2"]
    with tempfile.TemporaryDirectory(prefix="composer-watchbench-") as tmp:
        base = Path(tmp)
        for i, name in enumerate(tools):
            tool = Tool(name, base / name, (free_port(), free_port()))
            if name == "composer":
                (base / name).mkdir()
                subprocess.run([COMPOSER, "image", "import", str(ROOTFS_TAR), stacks.IMAGE, "-c", 'CMD ["/bin/sh"]'],
                               env=tool.env, check=True, capture_output=True)
            saves = bench_saves(tool, base, args.saves, args.gap)
            watches, took = bench_tree(tool, base)
            print(f"== {name}")
            for label, xs in saves.items():
                print(f"  {label:<30} {stats(xs)}")
            print(f"  2,000 files + 10,000 ignored    {watches} inotify watches, watching after {took * 1000:.0f} ms",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
