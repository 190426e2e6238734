"""The launcher: a single-threaded process forked early (Runtime.prepare, before the CLI starts any
thread) that forks one monitor per container on request. Containers are never forked from a
threaded process (unshare would move only one thread), and monitors forked from this lean process
share its few pages instead of the CLI's.

Requests travel over a SOCK_SEQPACKET socketpair: a JSON request plus fds (socket.send_fds):
fds[0] the monitor's control socket to the starter, fds[1:3] the starter's stdout/stderr when
attached. The launcher answers {"monitor": pid}. It exits when the socket closes (the CLI left)."""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import threading

from composer.runtime import monitor  # imported before fork so every monitor shares it


def _detach_fds(sock: socket.socket) -> socket.socket:
    """Hold nothing of the CLI's: stdio on /dev/null (a `run -d` under a pipe must see EOF when
    the CLI exits), no other inherited fd. Returns the socket, now on fd 3."""
    from composer.runtime import syscalls as sc

    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    if sock.fileno() != 3:
        os.dup2(sock.fileno(), 3, inheritable=False)
        sock.detach()
        sock = socket.socket(fileno=3)
    sc.close_range(4)
    return sock


def _serve(sock: socket.socket) -> None:
    sock = _detach_fds(sock)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the CLI's to handle
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    gc.freeze()
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 20, 8)
        except InterruptedError:
            continue
        except OSError:
            return
        if not msg:
            return
        req = json.loads(msg)
        pid = os.fork()
        if pid == 0:
            sock.close()
            monitor.main(req, fds)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"monitor": pid}).encode())


class Launcher:
    def __init__(self) -> None:
        self.pid: int | None = None
        self.sock: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self.pid is not None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                ours.close()
                _serve(theirs)
            except BaseException:  # noqa: BLE001
                code = 1
            os._exit(code)
        theirs.close()
        self.pid, self.sock = pid, ours

    def spawn(self, req: dict, fds: list[int]) -> int:
        """Ask for a monitor; returns its pid. fds are duplicated into it, the caller keeps its own."""
        with self._lock:
            self.start()
            assert self.sock is not None
            socket.send_fds(self.sock, [json.dumps(req).encode()], fds)
            reply = self.sock.recv(4096)
        if not reply:
            raise OSError("the container launcher exited")
        return int(json.loads(reply)["monitor"])

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.pid is not None:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = None


_SHARED: Launcher | None = None


def shared() -> Launcher:
    """One launcher per process, started at the first call (Runtime.prepare calls it early)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Launcher()
    _SHARED.start()
    return _SHARED
