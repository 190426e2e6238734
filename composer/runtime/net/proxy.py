"""Userspace port proxy: the fallback for published ports when nft cannot be used (like
docker-proxy). One `cmp-proxy` process per container forwards TCP and UDP from each published
host_ip:host_port to the container's address.

The caller (runtime.net.network) binds the host sockets itself, so "port already taken" is an error
at publish time, then hands the bound sockets to the proxy. The proxy is an exec'd interpreter
(`python -I -S this_file`), never a fork of the threaded CLI, in its own session so that it
outlives the command that started it; it runs stdlib code only (no composer imports, no
site-packages: ~15 ms to start). Its pid and /proc start time are recorded by the caller, so a
later `down` from any shell kills exactly it.

This file is both the library side (port_driver, bind, spawn, stop) and the program (main)."""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

COMM = "cmp-proxy"
ENV_DRIVER = "COMPOSER_PORT_DRIVER"
UDP_IDLE = 90.0  # seconds a UDP flow without replies is kept (conntrack's udp_timeout_stream is 120)
READY_TIMEOUT = 5.0


# ------------------------------------------------------------------ library side (the caller)


@dataclass(frozen=True)
class Forward:
    """One listening socket of the proxy and where its traffic goes."""

    sock: socket.socket
    protocol: str  # tcp | udp
    address: str
    port: int


@dataclass(frozen=True)
class ProxyProcess:
    """A userspace port proxy process, named by pid and start time."""

    pid: int
    start: int  # /proc/<pid>/stat field 22: with pid, names the process uniquely

    def to_dict(self) -> dict:
        return {"pid": self.pid, "start": self.start}

    @classmethod
    def from_dict(cls, d: dict) -> "ProxyProcess":
        return cls(int(d["pid"]), int(d["start"]))


_NFT_USABLE: bool | None = None


def nft_usable() -> bool:
    """nft installed and the kernel answers it (no nf_tables: 'Operation not supported')."""
    global _NFT_USABLE
    if _NFT_USABLE is None:
        import shutil

        try:
            _NFT_USABLE = shutil.which("nft") is not None and subprocess.run(
                ["nft", "list", "tables"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _NFT_USABLE = False
    return _NFT_USABLE


def forced_driver() -> str | None:
    """$COMPOSER_PORT_DRIVER (nft | proxy), None when unset (automatic choice)."""
    forced = os.environ.get(ENV_DRIVER, "")
    if forced in ("nft", "proxy"):
        return forced
    if forced:
        from composer.errors import HostError

        raise HostError(f"{ENV_DRIVER}={forced!r} is not a port driver: use nft or proxy")
    return None


def port_driver() -> str:
    """'nft' or 'proxy': $COMPOSER_PORT_DRIVER when set, else nft when usable (the caller also
    falls back to the proxy when nft refuses the port rules)."""
    return forced_driver() or ("nft" if nft_usable() else "proxy")


def bind(host_ip: str, host_port: int, protocol: str) -> socket.socket:
    """A bound (and, for TCP, listening) socket for a published port. Raises OSError."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        s.bind((host_ip or "0.0.0.0", host_port))
        if kind == socket.SOCK_STREAM:
            s.listen(128)  # connections queue from here on, before the proxy even runs
    except BaseException:
        s.close()
        raise
    return s


def spawn(container_id: str, forwards: list[Forward]) -> ProxyProcess:
    """Start the proxy owning `forwards`' sockets; returns once it runs. The caller still closes
    its own copies of the sockets. Raises OSError if it cannot start."""
    ready_r, ready_w = os.pipe()
    args = [f"{f.sock.fileno()}:{f.protocol}:{f.address}:{f.port}" for f in forwards]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), str(ready_w), container_id[:12], *args],
            pass_fds=[ready_w, *(f.sock.fileno() for f in forwards)], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    finally:
        os.close(ready_w)
    try:
        ok = select.select([ready_r], [], [], READY_TIMEOUT)[0] and os.read(ready_r, 64) == b"ok"
    finally:
        os.close(ready_r)
    if not ok:
        _kill(proc.pid, None)
        raise OSError(errno.EIO, "the port proxy did not start")
    start = _start_time(proc.pid)
    proc.returncode = 0  # detached on purpose: stop() reaps it if we are still its parent
    if start is None:
        raise OSError(errno.ESRCH, "the port proxy exited at once")
    return ProxyProcess(proc.pid, start)


def find(state_dir: str) -> dict[str, ProxyProcess]:
    """container id -> its proxy, found by command line (`proxy.py FD <id[:12]> ...`) for the
    containers of state_dir: what proxies.json held, when it is damaged."""
    try:
        ids = {i[:12]: i for i in os.listdir(os.path.join(state_dir, "containers"))}
    except OSError:
        return {}
    me = os.path.abspath(__file__)
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if me in argv and len(argv) > argv.index(me) + 2 and argv[argv.index(me) + 2] in ids:
            start = _start_time(int(pid))
            if start is not None:
                out[ids[argv[argv.index(me) + 2]]] = ProxyProcess(int(pid), start)
    return out


def stop(p: ProxyProcess, timeout: float = 2.0) -> bool:
    """Kill the proxy if (pid, start time) is still it; True once it is gone."""
    return _kill(p.pid, p.start, timeout)


def _kill(pid: int, start: int | None, timeout: float = 2.0) -> bool:
    sig = signal.SIGTERM  # its default action ends it at once: no handler in the proxy
    deadline = time.monotonic() + timeout
    while _alive(pid, start):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            if sig == signal.SIGKILL:
                return False
            sig, deadline = signal.SIGKILL, time.monotonic() + timeout
        time.sleep(0.002)
    while _exiting(pid, start) and time.monotonic() < deadline:
        time.sleep(0.002)
        _alive(pid, start)  # reaps it once the last thread is gone
    return True


def _exiting(pid: int, start: int | None) -> bool:
    """A zombie leader whose other threads are still exiting: until they are gone, the sockets
    they share stay open (the proxy runs a thread per connection and direction)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return False
    rest = raw[raw.rfind(b")") + 2:].split()
    return rest[0] == b"Z" and threads > 1 and (start is None or int(rest[19]) == start)


def _alive(pid: int, start: int | None) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # our child (spawned by this process): reap the zombie
    except ChildProcessError:
        pass
    now = _start_time(pid)
    return now is not None and (start is None or now == start)


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat; None when gone or a zombie. (The runtime's syscalls module
    has the same: not imported so that the proxy program stays stdlib-only.)"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rfind(b")") + 2:].split()
    return None if rest[0] == b"Z" else int(rest[19])


# ------------------------------------------------------------------ the program


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)  # pass the half-close on: the other direction goes on
    except OSError:
        for s in (src, dst):  # a reset on one side ends both directions
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _tcp_conn(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError:
        client.close()  # as docker-proxy: the client sees the connection closed
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _tcp_serve(lsock: socket.socket, target: tuple[str, int]) -> None:
    while True:
        try:
            client, _ = lsock.accept()
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                time.sleep(0.05)  # out of descriptors: let connections finish
            continue
        threading.Thread(target=_tcp_conn, args=(client, target), daemon=True).start()


def _udp_back(up: socket.socket, lsock: socket.socket, client: tuple, flows: dict) -> None:
    up.settimeout(UDP_IDLE)
    try:
        while True:
            lsock.sendto(up.recv(65535), client)
    except OSError:  # idle timeout, or ECONNREFUSED from the container's port
        pass
    finally:
        flows.pop(client, None)
        up.close()


def _udp_serve(lsock: socket.socket, target: tuple[str, int]) -> None:
    flows: dict[tuple, socket.socket] = {}  # client address -> our socket towards the container
    while True:
        try:
            data, client = lsock.recvfrom(65535)
        except OSError:
            continue
        up = flows.get(client)
        try:
            if up is None:
                up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                up.connect(target)
                flows[client] = up
                threading.Thread(target=_udp_back, args=(up, lsock, client, flows), daemon=True).start()
            up.send(data)
        except OSError:
            flows.pop(client, None)


def main(argv: list[str]) -> int:
    """argv: READY_FD CONTAINER [FD:PROTO:ADDRESS:PORT ...]"""
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(COMM)
    except OSError:
        pass
    threading.stack_size(256 * 1024)  # one thread per connection and direction: keep them small
    ready_fd, forwards = int(argv[0]), argv[2:]
    for item in forwards:
        fd, proto, address, port = item.split(":")
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        lsock = socket.socket(socket.AF_INET, kind, fileno=int(fd))
        serve = _tcp_serve if proto == "tcp" else _udp_serve
        threading.Thread(target=serve, args=(lsock, (address, int(port))), daemon=True).start()
    os.write(ready_fd, b"ok")
    os.close(ready_fd)
    while True:
        signal.pause()  # SIGTERM's default action ends the process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
