"""What a fault test looks at: the project's host objects (by its ids and the state dir's scope), the
files left in the state and data dirs, and the named volume's contents."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import time
from pathlib import Path

from composer.runtime.net import nft
from tests import hostobjects
from tests.acceptance.conftest import CLI, Stack, _alive
from tests.acceptance.test_crash_recovery import SIMPLE, Owned

STACK = SIMPLE  # two services, a named volume with data, a published port


def data_dir(s: Stack) -> str:
    return os.path.join(s.env["COMPOSER_DATA_DIR"], "containers")


def state_dir(s: Stack) -> str:
    return s.env["COMPOSER_STATE_DIR"]


def staged_ids(s: Stack) -> set[str]:
    """Ids in staging and trash dir names (`.new-<id>-<pid>`, `.gone-<id>-<pid>`)."""
    return {n.split("-")[1] for n in os.listdir(data_dir(s)) if n.startswith((".new-", ".gone-"))} \
        if os.path.isdir(data_dir(s)) else set()


def look(owned: Owned) -> None:
    owned.look()
    owned.ids |= staged_ids(owned.s) | {n for n in _entries(data_dir(owned.s)) if len(n) == 64}
    owned.ids |= {n for n in _entries(os.path.join(state_dir(owned.s), "containers"))}
    for i in owned.ids:  # a monitor whose state was never written is still a cmp-mon-<id[:7]>
        owned.pids |= monitors(i)


def monitors(cid: str) -> set[int]:
    out = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == f"cmp-mon-{cid[:7]}":
                    out.add(int(pid))
        except OSError:
            continue
    return out


def _entries(path: str) -> list[str]:
    try:
        return [n for n in os.listdir(path) if n != "lock"]
    except OSError:
        return []


def orphan_files(s: Stack, ids: set[str]) -> list[str]:
    """Files of the project (or of nobody) left in the state and data dirs after its down."""
    left = [os.path.join(data_dir(s), n) for n in _entries(data_dir(s))
            if n.startswith(".") or n in ids or not os.path.exists(os.path.join(data_dir(s), n, "spec.json"))]
    left += [os.path.join(state_dir(s), "containers", n) for n in _entries(os.path.join(state_dir(s), "containers"))
             if n in ids or not os.path.isdir(os.path.join(data_dir(s), n))]
    left += glob.glob(os.path.join(state_dir(s), "networks", f"{s.name}_*.json"))
    ports = os.path.join(state_dir(s), "networks", "ports.json")
    if os.path.exists(ports):
        left += [f"{ports}: {p['container_id'][:12]}" for p in json.loads(Path(ports).read_text())
                 if p["container_id"] in ids]
    return left


def volume_file(s: Stack, path: str = "runs") -> str:
    try:
        return Path(s.env["COMPOSER_DATA_DIR"], "volumes", f"{s.name}_data", "_data", path).read_text()
    except OSError:
        return ""


def run_with_fault(s: Stack, step: str, *args: str, action: str = "kill", wait: bool = True) -> subprocess.Popen:
    env = dict(s.env, COMPOSER_FAULT=f"{step}:{action}")
    proc = subprocess.Popen([*CLI, "-p", s.name, *args], cwd=s.dir, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if wait:
        proc.wait(timeout=60)
    return proc


def stopped(proc: subprocess.Popen) -> bool:
    try:
        with open(f"/proc/{proc.pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def wait_for(pred, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def left_on_host(owned: Owned) -> dict[str, set[str]]:
    left = owned.left()
    left.pop("nft", None)
    tag = nft.scope_tag(str(Path(state_dir(owned.s)).resolve()))
    if not glob.glob(os.path.join(state_dir(owned.s), "networks", "*_*.json")):  # no network of this scope left
        chains = {line.strip() for line in nft.table_text().splitlines() if f"_{tag} " in line}
        if chains:
            left["nft"] = chains
    procs = {str(p) for i in owned.ids for p in monitors(i)}
    if procs:
        left["monitors"] = procs
    cgroups = {c for c in hostobjects.cgroups() if any(i in c for i in owned.ids)}
    if cgroups:
        left["cgroups"] = cgroups
    return {k: v for k, v in left.items() if v}


__all__ = ["STACK", "Owned", "_alive"]
