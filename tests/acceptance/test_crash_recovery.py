"""Crashes and reboots, through the CLI: `kill -9` of `composer up` at several points (networks being
made, containers being created, a later service gated), `kill -9` of a monitor, a simulated reboot
(processes, links, cgroups, nft chains and the state dir all gone) and a lost state dir with the
host objects still there. After each, `down` must leave nothing of the project on the host, and a
named volume's data must survive a `down` without -v."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from composer.runtime.net import ipam, nft
from tests import hostobjects
from tests.acceptance.conftest import CLI, Stack, _alive
from tests.acceptance.test_lifecycle_scale_run import IDLE, tstack  # noqa: F401 - fixture

pytestmark = pytest.mark.root

STACK = f"""
services:
  db:
    image: busybox
    command: sh -c "echo before-crash > /data/f; {IDLE[7:-1]}"
    volumes: [data:/data]
    ports: ["127.0.0.1::80"]
    networks: [default, back]
  gate:
    image: busybox
    depends_on: [db]
    networks: [back]
    command: {IDLE}
  late:
    image: busybox
    depends_on: {{gate: {{condition: service_completed_successfully}}}}
    command: {IDLE}
networks:
  back: {{}}
volumes:
  data: {{}}
"""

SIMPLE = f"""
services:
  db:
    image: busybox
    command: sh -c "echo run >> /data/runs; {IDLE[7:-1]}"
    volumes: [data:/data]
    ports: ["127.0.0.1::80"]
  web:
    image: busybox
    depends_on: [db]
    command: {IDLE}
volumes:
  data: {{}}
"""


# ---------------------------------------------------------------- what the project owns


def scope(s: Stack) -> str:
    return str(Path(s.env["COMPOSER_STATE_DIR"]).resolve())


def bridges(s: Stack, networks=("default", "back")) -> set[str]:
    return {ipam.bridge_name(f"{scope(s)}\0{s.name}_{n}") for n in networks}


def specs(s: Stack) -> list[dict]:
    out = []
    for path in glob.glob(os.path.join(s.env["COMPOSER_DATA_DIR"], "containers", "*", "spec.json")):
        try:
            spec = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        if dict(map(tuple, spec.get("labels", []))).get("composer.project") == s.name:
            out.append(spec)
    return out


class Owned:
    """Everything of the project seen so far (gathered while it runs, checked after down)."""

    def __init__(self, s: Stack) -> None:
        self.s = s
        self.ids: set[str] = set()
        self.links: set[str] = set(bridges(s))
        self.pids: set[int] = set()

    def look(self) -> None:
        for spec in specs(self.s):
            self.ids.add(spec["id"])
            for net in spec.get("networks", []):
                self.links.add(ipam.veth_name(spec["id"], net["network"]))
        for i in self.ids:
            st = _read(os.path.join(self.s.env["COMPOSER_STATE_DIR"], "containers", i, "state.json"))
            self.pids |= {p for p in (json.loads(st).get("pid"), json.loads(st).get("monitor_pid")) if p} if st else set()
        for d in hostobjects.cgroups():
            if any(i in d for i in self.ids):
                self.pids |= {int(p) for p in _read(os.path.join(d, "cgroup.procs")).split()}

    def left(self) -> dict[str, set[str]]:
        tag = nft.scope_tag(scope(self.s))
        left = {
            "links": self.links & hostobjects.links(),
            "cgroups": {c for c in hostobjects.cgroups() if any(i in c for i in self.ids)},
            "mounts": {m for m in hostobjects.mounts() if self.s.env["COMPOSER_STATE_DIR"] in m
                       or any(i in m for i in self.ids)},
            "processes": {str(p) for p in self.pids if _alive(p)},
            "nft": {line.strip() for line in nft.table_text().splitlines()
                    if any(x in line for x in (f"_{tag} ", f"network {self.s.name}_", *self.links,
                                               *(i[:12] for i in self.ids)))
                    and (f"_{tag} " not in line or not self.others_in_scope())},
        }
        return {k: v for k, v in left.items() if v}


    def others_in_scope(self) -> bool:
        """Another project's networks keep this state dir's chains (with their own rules)."""
        return any(p.name != f"{self.s.name}_default"
                   for p in Path(self.s.env["COMPOSER_STATE_DIR"], "networks").glob("*_*.json"))


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def wait_for(pred, timeout: float = 20.0, step: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(step)


def running(s: Stack, service: str) -> bool:
    for spec in specs(s):
        if dict(map(tuple, spec["labels"])).get("composer.service") == service:
            st = _read(os.path.join(s.env["COMPOSER_STATE_DIR"], "containers", spec["id"], "state.json"))
            if st and json.loads(st).get("pid"):
                return True
    return False


def volume_file(s: Stack, path: str) -> str:
    return _read(os.path.join(s.env["COMPOSER_DATA_DIR"], "volumes", f"{s.name}_data", "_data", path))


def start_up(s: Stack) -> subprocess.Popen:
    return subprocess.Popen([*CLI, "-p", s.name, "up", "-d"], cwd=s.dir, env=s.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


# ---------------------------------------------------------------- kill -9 of `up`

POINTS = {
    "bridge": lambda s: bool(bridges(s) & hostobjects.links()),
    "container": lambda s: bool(specs(s)),
    "cgroup": lambda s: any(sp["id"] in c for sp in specs(s) for c in hostobjects.cgroups()),
    "started": lambda s: running(s, "db"),
    "gated": lambda s: running(s, "gate"),
}


@pytest.mark.parametrize("point", list(POINTS))
def test_kill_up_then_down_removes_everything(tstack, point):
    s = tstack(STACK)
    owned = Owned(s)
    up = start_up(s)
    try:
        wait_for(lambda: POINTS[point](s) or up.poll() is not None)
        owned.look()
        assert up.poll() is None, "up ended before the kill point"
        kill9(up)
    finally:
        if up.poll() is None:
            kill9(up)
    time.sleep(0.1)
    owned.look()  # what the crash left (a monitor may have finished its start)
    if point == "gated":
        wait_for(lambda: volume_file(s, "f") == "before-crash\n", timeout=5)
        s("down", "-t", "0")
        assert volume_file(s, "f") == "before-crash\n"  # a named volume survives down without -v
    else:
        s("down", "-v", "-t", "0")
        assert not os.path.exists(os.path.join(s.env["COMPOSER_DATA_DIR"], "volumes", f"{s.name}_data"))
    assert owned.left() == {}
    assert not specs(s)


def test_kill_monitor_then_down(tstack):
    s = tstack(SIMPLE)
    s("up", "-d")
    owned = Owned(s)
    owned.look()
    db = next(sp for sp in specs(s) if dict(map(tuple, sp["labels"]))["composer.service"] == "db")
    state = json.loads(_read(os.path.join(s.env["COMPOSER_STATE_DIR"], "containers", db["id"], "state.json")))
    os.kill(state["monitor_pid"], signal.SIGKILL)
    wait_for(lambda: not _alive(state["monitor_pid"]), timeout=5)
    assert _alive(state["pid"])  # PID 1 outlives its monitor
    s("down", "-t", "0")
    assert owned.left() == {}
    assert volume_file(s, "runs") == "run\n"


# ---------------------------------------------------------------- reboot and lost state


def simulate_reboot(s: Stack, owned: Owned) -> None:
    """What a reboot does to the project: every process, link, cgroup and nft chain gone, /run empty."""
    owned.look()
    for pid in owned.pids | {int(p) for p in hostobjects.processes(s.env["COMPOSER_STATE_DIR"])}:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not any(_alive(p) for p in owned.pids), timeout=10)
    for link in owned.links & hostobjects.links():
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    for d in sorted((c for c in hostobjects.cgroups() if any(i in c for i in owned.ids)), key=len, reverse=True):
        wait_for(lambda: _rmdir(d), timeout=5)
    tag = nft.scope_tag(scope(s))
    script = "".join(f"delete chain ip composer {k}_{tag}\n" for k in ("fwd", "post", "pre", "out", "ports"))
    subprocess.run(["nft", "-f", "-"], input=script, text=True, capture_output=True)
    nft.drop_table_if_empty()
    shutil.rmtree(s.env["COMPOSER_STATE_DIR"])
    os.makedirs(s.env["COMPOSER_STATE_DIR"])


def _rmdir(d: str) -> bool:
    try:
        os.rmdir(d)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def ps(s: Stack) -> dict[str, str]:
    return {json.loads(x)["Service"]: json.loads(x)["State"]
            for x in s("ps", "-a", "--format", "json").stdout.splitlines()}


def test_reboot_then_up_and_down(tstack):
    s = tstack(SIMPLE)
    s("up", "-d")
    owned = Owned(s)
    before = {sp["id"] for sp in specs(s)}
    simulate_reboot(s, owned)
    assert set(ps(s).values()) == {"exited"}  # the data dir still knows them
    s("up", "-d")
    assert ps(s) == {"db": "running", "web": "running"}
    assert {sp["id"] for sp in specs(s)} == before  # unchanged config: restarted, not recreated
    assert volume_file(s, "runs") == "run\nrun\n"
    port = json.loads(s("ps", "--format", "json", "db").stdout.splitlines()[0])
    assert port["Publishers"] and port["Publishers"][0]["PublishedPort"]
    owned.look()
    s("down", "-t", "0")
    assert owned.left() == {}
    assert volume_file(s, "runs") == "run\nrun\n"


def test_reboot_then_down(tstack):
    s = tstack(SIMPLE)
    s("up", "-d")
    owned = Owned(s)
    simulate_reboot(s, owned)
    s("down", "-t", "0")
    assert not specs(s) and owned.left() == {}
    assert not os.listdir(os.path.join(s.env["COMPOSER_DATA_DIR"], "containers")) or \
        not any(i in os.listdir(os.path.join(s.env["COMPOSER_DATA_DIR"], "containers")) for i in owned.ids)


def test_lost_state_dir_with_host_objects_then_down(tstack):
    """The state dir vanished but the bridges, nft chains (and even processes) are still there:
    `down` must find this project's objects without the records, and nothing else's."""
    s = tstack(SIMPLE)
    other = tstack(SIMPLE)  # another project in the same state dir must survive
    s("up", "-d")
    other("up", "-d")
    owned = Owned(s)
    owned.look()
    keep = Owned(other)
    keep.look()
    net_dir = os.path.join(s.env["COMPOSER_STATE_DIR"], "networks")
    saved = {p: _read(p) for p in glob.glob(os.path.join(net_dir, "*.json"))}
    for i in owned.ids:
        shutil.rmtree(os.path.join(s.env["COMPOSER_STATE_DIR"], "containers", i))
    os.unlink(os.path.join(net_dir, f"{s.name}_default.json"))
    assert saved  # the other project's network record stays
    s("down", "-t", "0")
    assert owned.left() == {}
    assert ps(other) == {"db": "running", "web": "running"}
    assert bridges(other, ("default",)) <= hostobjects.links()
    tag = nft.scope_tag(scope(s))
    assert f"_{tag}" in nft.table_text()  # the other project's rules are still in place
    keep.look()
    other("down", "-t", "0")
    assert keep.left() == {}


def test_state_dir_wiped_while_running_then_down_without_stack_file(tstack, tmp_path):
    """rm -rf of the whole state dir under a running project; `down -p NAME` from elsewhere (no
    stack file, so the networks are known only by their tags) still removes all of it."""
    s = tstack(SIMPLE)
    s("up", "-d")
    owned = Owned(s)
    owned.look()
    assert owned.pids and all(_alive(p) for p in owned.pids)
    shutil.rmtree(s.env["COMPOSER_STATE_DIR"])
    os.makedirs(s.env["COMPOSER_STATE_DIR"])
    elsewhere = Stack(tmp_path, s.name, s.env)
    out = elsewhere("down", "-t", "0")
    assert f"{s.name}_default" in out.stderr + out.stdout
    wait_for(lambda: not any(_alive(p) for p in owned.pids), timeout=5)  # monitors follow their PID 1
    assert owned.left() == {}
    assert volume_file(s, "runs") == "run\n"


@pytest.mark.parametrize("point", ["container", "cgroup", "started"])
def test_kill_up_then_up_again_converges(tstack, point):
    s = tstack(SIMPLE)
    owned = Owned(s)
    up = start_up(s)
    try:
        wait_for(lambda: POINTS[point](s) or up.poll() is not None)
        assert up.poll() is None, "up ended before the kill point"
        kill9(up)
    finally:
        if up.poll() is None:
            kill9(up)
    s("up", "-d")
    assert ps(s) == {"db": "running", "web": "running"}
    assert s("exec", "-T", "web", "ping", "-c1", "-W2", "db").returncode == 0
    owned.look()
    s("down", "-t", "0")
    assert owned.left() == {}


@pytest.mark.parametrize("point", ["stopping", "removing"])
def test_kill_down_then_down_again(tstack, point):
    s = tstack(SIMPLE)
    s("up", "-d")
    owned = Owned(s)
    owned.look()
    down = subprocess.Popen([*CLI, "-p", s.name, "down", "-t", "0"], cwd=s.dir, env=s.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if point == "stopping":  # web (the dependent) goes first
            wait_for(lambda: not any(_alive(p) for p in owned.pids if p in _pids_of(s, "web")) or down.poll() is not None)
        else:
            wait_for(lambda: len(specs(s)) < 2 or down.poll() is not None)
        assert down.poll() is None, "down ended before the kill point"
    finally:
        kill9(down)
    s("down", "-t", "0")
    assert owned.left() == {} and not specs(s)
    assert volume_file(s, "runs") == "run\n"


def _pids_of(s: Stack, service: str) -> set[int]:
    out: set[int] = set()
    for spec in specs(s):
        if dict(map(tuple, spec["labels"])).get("composer.service") == service:
            st = _read(os.path.join(s.env["COMPOSER_STATE_DIR"], "containers", spec["id"], "state.json"))
            out |= {json.loads(st)["pid"]} if st else set()
    return out
