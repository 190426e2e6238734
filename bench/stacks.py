"""Stack files for the compose benchmarks: the same file runs under composer, docker-compose and
podman-compose, on the same busybox rootfs imported into each as `busybox:local`. Also what every
bench does first (precompile)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

IMAGE = "busybox:local"


def three_tier() -> str:
    """db <- app <- lb, lb published on loopback (ephemeral port): the shape of examples/stack."""
    return f"""services:
  db:
    image: {IMAGE}
    init: true
    command: httpd -f -p 5000
  app:
    image: {IMAGE}
    init: true
    command: httpd -f -p 8000
    depends_on: [db]
  lb:
    image: {IMAGE}
    init: true
    command: httpd -f -p 80
    ports: ["127.0.0.1::80"]
    links: ["app:backend"]
    depends_on: [app]
"""


def many(n: int) -> str:
    """n independent services on the default network: a wide first generation."""
    out = ["services:"]
    for i in range(n):
        out += [f"  s{i:02d}:", f"    image: {IMAGE}", "    init: true", "    command: httpd -f -p 80"]
    return "\n".join(out) + "\n"


STACKS = {"3 services": three_tier, "30 services": lambda: many(30)}


def write(base: Path) -> dict[str, Path]:
    """One directory per stack under base; returns label -> directory."""
    dirs = {}
    for label, make in STACKS.items():
        d = base / ("s" + label.split()[0])
        d.mkdir(parents=True, exist_ok=True)
        (d / "compose.yaml").write_text(make())
        dirs[label] = d
    return dirs


def precompile() -> None:
    """Bytecode for the sources as they are now, as `dev` makes on install: a module edited since
    (and PYTHONDONTWRITEBYTECODE set, as in some shells) is otherwise compiled again on every run,
    ~10 ms for project.py alone, which no installed composer pays."""
    package = str(Path(__file__).resolve().parents[1] / "composer")
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", package],
                   stdout=subprocess.DEVNULL, check=False)

