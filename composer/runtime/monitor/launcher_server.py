"""The launcher process itself (the server side of runtime.monitor.launcher, which describes the protocol):
`python -I -S -c launcher.BOOT` runs serve(), which forks the template (cmp-zygote) and then
serves spawn requests on $STATE/launcher.sock until it has been idle for COMPOSER_LAUNCHER_IDLE
seconds (default 5; monitors do not keep it), or at once when idle and its socket is gone.

Lean like everything the launcher runs: os, gc, select, fcntl, time and the C halves _signal,
_socket, _struct; the monitor's code (and its _json) is imported by serve() before the template's
fork, so that every monitor shares it."""

from __future__ import annotations

import gc
import os
import select
import time

import _signal
import _socket
import _struct
import fcntl

from composer.runtime import syscalls as sc
from composer.runtime.monitor.launcher import SOCK_NAME, _address, _peer, code_version

IDLE_DEFAULT = 5.0
_MAX_FDS = 8
FORK_TIMEOUT = 10.0


# ---------------------------------------------------------------- the launcher process


class _Server:
    def __init__(self, state_dir: str, lock_fd: int, token_w: int, chan) -> None:
        self.path = os.path.join(state_dir, SOCK_NAME)
        self.token_w, self.chan = token_w, chan  # to the template
        self.broken = False
        self.lock_fd = lock_fd
        self.idle = float(os.environ.get("COMPOSER_LAUNCHER_IDLE") or IDLE_DEFAULT)
        from composer.runtime.monitor import monitor  # loaded by serve()

        self.hello = monitor.dumps({"v": code_version(), "pid": os.getpid()}).encode()
        self.conns: dict[int, object] = {}  # fd -> _socket.socket
        self.monitors: dict[int, int] = {}  # pidfd -> pid
        self.poller = select.poll()
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        self.ident: tuple[int, int] | None = None

    def listen(self) -> None:
        addr, dfd = _address(self.path)
        old = os.umask(0o077)
        try:
            try:
                self.sock.bind(addr)
            except OSError:  # a stale socket file (we hold the lock: no other launcher is starting)
                os.unlink(addr)
                self.sock.bind(addr)
        finally:
            os.umask(old)
            if dfd is not None:
                os.close(dfd)
        self.sock.listen(64)
        self.sock.setblocking(False)
        s = os.stat(self.path)
        self.ident = (s.st_dev, s.st_ino)
        fcntl.flock(self.lock_fd, fcntl.LOCK_UN)  # clients waiting for our start may connect now
        self.poller.register(self.sock.fileno(), select.POLLIN)

    def _ours(self) -> bool:
        try:
            s = os.stat(self.path)
        except OSError:
            return False
        return (s.st_dev, s.st_ino) == self.ident

    def run(self) -> None:
        idle_since = time.monotonic()
        while True:
            busy = bool(self.conns)  # monitors live on without us: not a daemon
            timeout = None if busy else max(0.0, min(1.0, idle_since + self.idle - time.monotonic()))
            try:
                events = self.poller.poll(None if timeout is None else int(timeout * 1000) + 1)
            except InterruptedError:
                continue
            for fd, _ in events:
                if fd == self.sock.fileno():
                    self._accept()
                elif fd in self.conns:
                    self._serve(fd)
                elif fd in self.monitors:  # exited (SIGCHLD is ignored: the kernel reaps it)
                    self.poller.unregister(fd)
                    os.close(fd)
                    del self.monitors[fd]
            if self.broken:
                self._leave(self._ours(), wait=True)
                return
            if self.conns:
                continue
            if busy:
                idle_since = time.monotonic()
            ours = self._ours()
            if (not ours or time.monotonic() - idle_since >= self.idle) and self._leave(ours):
                return

    def _leave(self, ours: bool, wait: bool = False) -> bool:
        """Stop serving, unless a client is starting or connecting right now."""
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        if not wait and select.select([self.sock.fileno()], [], [], 0)[0]:  # a connection waits: serve it
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
            return False
        if ours and self._ours():
            os.unlink(self.path)
        self.sock.close()
        return True  # the lock goes with the process

    def _accept(self) -> None:
        try:
            fd, _ = self.sock._accept()  # accept4(SOCK_CLOEXEC), blocking fd
        except (BlockingIOError, InterruptedError):
            return
        conn = _socket.socket(fileno=fd)
        uid = _peer(conn)[1]
        if uid not in (0, os.getuid()):
            conn.close()
            return
        try:
            conn.send(self.hello)
        except OSError:
            conn.close()
            return
        self.conns[fd] = conn
        self.poller.register(fd, select.POLLIN)

    def _serve(self, fd: int) -> None:
        conn = self.conns[fd]
        try:
            data, anc, _, _ = conn.recvmsg(1 << 20, _socket.CMSG_LEN(_MAX_FDS * 4), _socket.MSG_CMSG_CLOEXEC)
        except OSError:
            data, anc = b"", []
        fds = _fds(anc)
        try:
            if not data:
                self.poller.unregister(fd)
                del self.conns[fd]
                conn.close()
                return
            if data.startswith(b'{"spawn": '):
                reply = self._fork(data, fds)
            else:
                reply = {"error": "unknown request"}
            from composer.runtime.monitor import monitor

            try:
                conn.send(monitor.dumps(reply).encode())
            except OSError:
                pass
        finally:
            for f in fds:
                os.close(f)

    def _fork(self, data: bytes, fds: list[int]) -> dict:
        """Have the template fork a monitor, hand it the request (as received) and the fds."""
        try:
            os.write(self.token_w, b"f")
            anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, _struct.pack(f"{len(fds)}i", *fds))] if fds else []
            self.chan.sendmsg([data], anc)
            if not select.select([self.chan.fileno()], [], [], FORK_TIMEOUT)[0]:
                raise TimeoutError("no monitor answered")
            pid = int(self.chan.recv(64))
        except (OSError, ValueError) as e:
            self.broken = True  # leave: the next client starts a sound launcher
            return {"error": f"the template process failed: {e}"}
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone
            return {"monitor": pid}
        self.monitors[pidfd] = pid
        self.poller.register(pidfd, select.POLLIN)
        return {"monitor": pid}


def _fds(anc: list) -> list[int]:
    fds: list[int] = []
    for level, kind, raw in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += memoryview(raw)[: len(raw) - len(raw) % 4].cast("i").tolist()
    return fds


# ---------------------------------------------------------------- the template ("cmp-zygote")
#
# Monitors are forked from a template process, not from the launcher itself. Every page a process
# writes after a fork becomes a copy, and the copy left behind lives on in the child: forking from
# the busy launcher (sockets, JSON, poll between forks) left each monitor its own copy of the
# launcher's hot pages. The template is forked once, before the launcher serves anything, and
# between forks it only reads one byte. Measured: ~70 kB less per idle monitor (1049 -> 978 kB).
# What remains (~1 MB PSS per monitor) is first-touch copying by the monitor's own Python code
# after the fork: ~100 kB per small step (recvmsg, JSON, setsid...), see bench/memory.py.


def _template(token_r: int, chan) -> None:
    """Fork one monitor per byte on token_r; exits when the launcher closes the pipe."""
    sc.set_name("cmp-zygote")
    while True:
        try:
            token = os.read(token_r, 1)
        except InterruptedError:
            continue
        if not token:
            os._exit(0)
        if os.fork() == 0:
            os.close(token_r)
            _monitor(chan)


def _monitor(chan) -> None:
    """In a fresh child of the template: take one request from the launcher, become its monitor."""
    from composer.runtime.monitor import monitor  # loaded by serve(), before the template's fork

    try:
        size = chan.recv_into(bytearray(1), 1, _socket.MSG_PEEK | _socket.MSG_TRUNC)
        data, anc, _, _ = chan.recvmsg(size, _socket.CMSG_LEN(_MAX_FDS * 4), _socket.MSG_CMSG_CLOEXEC)
        fds = _fds(anc)
        chan.send(b"%d" % os.getpid())
        chan.close()
        req = monitor.loads(data.decode())["spawn"]
    except BaseException:  # noqa: BLE001
        os._exit(1)
    monitor.main(req, fds)  # never returns


def serve(argv: list[str]) -> None:
    """Entry of the launcher process (launcher.BOOT): argv = [state_dir, lock_fd]. Returns when idle."""
    # The monitor's code, before the template's fork (shared by every monitor).
    from composer.runtime.monitor import monitor  # noqa: F401

    sc.load()  # ctypes and libc too (syscalls loads them on first use)
    from composer.runtime.net import rtnl  # noqa: F401  start helpers set container addresses with it

    state_dir, lock_fd = argv[0], int(argv[1])
    sc.close_range(lock_fd + 1)  # nothing of the starting CLI's
    sc.set_name("cmp-launcher")
    _signal.signal(_signal.SIGCHLD, _signal.SIG_IGN)  # template and monitors: reaped by the kernel
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    token_r, token_w = os.pipe()
    chan, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    gc.freeze()  # the template and all monitors share every object alive now; GC never touches them
    if os.fork() == 0:
        os.close(token_w)
        os.close(lock_fd)
        chan.close()
        _template(token_r, theirs)
    os.close(token_r)
    theirs.close()
    server = _Server(state_dir, lock_fd, token_w, chan)
    server.listen()
    server.run()

