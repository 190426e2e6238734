"""What composer may leave on the host, found by the naming rules (links/netns `cmp*`, mounts
under a `/composer` path, cgroups in a `composer` directory, nft tables `composer`, monitor
processes). The session-end check and the per-test fixtures use it to prove cleanup."""

from __future__ import annotations

import os
import subprocess


def links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = {line.split(": ")[1].split("@")[0] for line in out.splitlines() if ": " in line}
    return {n for n in names if n.startswith("cmp")}


def netns() -> set[str]:
    try:
        return {n for n in os.listdir("/run/netns") if n.startswith("cmp")}
    except FileNotFoundError:
        return set()


def mounts(under: str = "/composer") -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f if under in line.split()[4]}


def cgroups() -> set[str]:
    found = set()
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        depth = root.count("/") - 3
        if depth > 7:
            dirs[:] = []
            continue
        if "/composer/" in root + "/" and os.path.basename(root) != "composer":
            found.add(root)
        elif "/composer.slice/" in root + "/" and os.path.basename(root) != "composer.slice":
            found.add(root)  # systemd hosts: composer.slice/composer-<id>.scope/{container,supervisor}
    return found


def nft_tables() -> set[str]:
    try:
        out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return set()
    return {line.strip() for line in out.splitlines() if line.strip().endswith(" composer")}


def processes(marker: str) -> set[str]:
    """Processes whose environment or cmdline carries marker (each test run has its own)."""
    found = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker.encode() in f.read():
                    found.add(pid)
        except OSError:
            continue
    return found


def snapshot() -> dict[str, set[str]]:
    return {"links": links(), "netns": netns(), "mounts": mounts(), "cgroups": cgroups(),
            "nft": nft_tables()}


def leaked(before: dict[str, set[str]]) -> dict[str, set[str]]:
    now = snapshot()
    return {k: now[k] - before.get(k, set()) for k in now if now[k] - before.get(k, set())}
