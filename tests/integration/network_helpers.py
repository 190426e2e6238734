"""Helpers for the network integration tests: netns holders (stand-ins for containers), tiny
servers and clients run inside them with nsenter, and a manager fixture that removes everything.
Traffic only ever goes between namespaces we create, our bridges, and loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from composer.runtime.net.network import NetworkManager

PY = sys.executable

SERVER = textwrap.dedent("""
    import socket, sys
    port, proto, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    if proto == "tcp":
        s.listen(16)
    print("ready", flush=True)
    while True:
        if proto == "tcp":
            c, peer = s.accept()
            c.sendall(f"{name} sees {peer[0]}".encode())
            c.close()
        else:
            data, peer = s.recvfrom(100)
            s.sendto(f"{name} sees {peer[0]}".encode(), peer)
""")

CLIENT = textwrap.dedent("""
    import socket, sys
    host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:
        if proto == "tcp":
            s = socket.create_connection((host, port), timeout=float(sys.argv[4]))
            print(s.recv(100).decode())
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(float(sys.argv[4]))
            s.sendto(b"x", (host, port))
            print(s.recvfrom(100)[0].decode())
    except OSError as err:
        print(f"FAILED {err}")
""")


def own_netns() -> str:
    return os.readlink("/proc/self/ns/net")


class Holders:
    """Processes each holding a fresh network namespace; killed by pid at teardown."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def new(self) -> int:
        proc = subprocess.Popen(["unshare", "-n", "sleep", "600"])
        self.procs.append(proc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{proc.pid}/ns/net") != own_netns():
                    return proc.pid
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError("netns holder did not start")

    def start(self, pid: int, *argv: str) -> subprocess.Popen:
        """A process inside pid's netns (a server); waits for its 'ready' line."""
        proc = subprocess.Popen(["nsenter", "-t", str(pid), "-n", *argv], stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            if proc.stdout:
                proc.stdout.close()


def run_in(pid: int, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", "-t", str(pid), "-n", *argv], capture_output=True, text=True, timeout=timeout)


def serve(holders: Holders, pid: int, port: int, name: str, proto: str = "tcp") -> None:
    holders.start(pid, PY, "-c", SERVER, str(port), proto, name)


def request(host: str, port: int, proto: str = "tcp", *, from_pid: int | None = None, timeout: float = 2) -> str:
    argv = [PY, "-c", CLIENT, host, str(port), proto, str(timeout)]
    if from_pid is not None:
        return run_in(from_pid, *argv).stdout.strip()
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10).stdout.strip()


def ping(from_pid: int, address: str) -> bool:
    return run_in(from_pid, "busybox", "ping", "-c1", "-W1", address).returncode == 0


def links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines() if ": " in line}


def nft_table() -> str:
    return subprocess.run(["nft", "list", "table", "ip", "composer"], capture_output=True, text=True).stdout


@pytest.fixture
def holders():
    h = Holders()
    yield h
    h.close()


@pytest.fixture
def manager(tmp_path: Path):
    """A NetworkManager on a private state dir; teardown removes all it made, then checks."""
    mgr = NetworkManager(tmp_path / "state")
    yield mgr
    made = {info.bridge for info in mgr.list()} | {e.host_veth for _, eps in mgr._all() for e in eps.values()}
    mgr.gc(set())
    for info in mgr.list():
        mgr.remove(info.name)
    left = links() & made
    assert not left, f"links left behind: {left}"
    assert f"_{mgr._tag}" not in nft_table()


CID = "c" * 64


@pytest.fixture
def web(manager, holders):
    """One 'container' on a network with tcp and udp servers on port 80."""
    from composer.runtime.spec import NetworkAttachment

    info = manager.ensure("p_default")
    pid = holders.new()
    ep = manager.connect("p_default", CID, pid, NetworkAttachment("p_default"), "eth0")
    serve(holders, pid, 80, "web")
    serve(holders, pid, 80, "webudp", "udp")
    return info, ep


def http_get(url: str, timeout: float = 10.0) -> str:
    """The body at url, retried until timeout (a server that is still starting)."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)

