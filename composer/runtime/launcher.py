"""The launcher ("zygote"): one lean, single-threaded process per state dir that forks one monitor
per container on request. Every monitor is forked from it, so they all share its pages.

Why exec'd and not forked from the CLI (measured, bench/memory.py): a monitor forked from a CLI
that imported everything keeps that CLI's heap alive once the CLI exits (30 `run -d` CLIs: ~300 MB
PSS). Started as `python -I -S -c BOOT`, with stub packages for `composer` and `composer.runtime`
(their __init__ imports the whole Runtime API; `-m` would also pull in runpy), it imports only what
a monitor and a container's PID 1 run: os, gc, select, fcntl, resource, time, ctypes and the
C halves _signal, _socket, _json, _struct (signal/socket/json would pull in enum, re and
selectors: ~1.8 MB more heap, measured with smaps_rollup). 30 monitors + launcher: see bench.

    client (any process, may be threaded)            launcher ($STATE/launcher.sock, 0600)
      flock launcher.lock; connect  ---------------->  accept; check peer uid
                                    <----------------  {"v": VERSION, "pid"}   (hello)
      {"spawn": req} + fds (SCM_RIGHTS) ------------>  one byte to the template (cmp-zygote), which
                                                       forks; the child takes req + fds and becomes
                                                       the monitor (monitor.main)
                                    <----------------  {"monitor": pid}

Starting is race-safe across processes: a client holds an flock on launcher.lock while it checks
the socket and, if nobody answers, spawns a launcher, handing it the locked file; the launcher
unlocks once it listens, so the next client waits on the lock and then connects. A hello with
another VERSION (older composer, edited code) gets the old launcher terminated and replaced; its
monitors live on (own sessions). The launcher leaves by itself once it has had no
connection for COMPOSER_LAUNCHER_IDLE seconds (default 5; monitors do not keep it), or at once when idle and its socket is
gone (state dir removed, or replaced); it takes the lock to leave, so no client is dropped silently
(a client whose connection breaks during the hello retries)."""

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
from composer.runtime.bootcode import boot_code

PROTOCOL = 2
SOCK_NAME, LOCK_NAME, LOG_NAME = "launcher.sock", "launcher.lock", "launcher.log"
IDLE_DEFAULT = 5.0
# A launcher runs the code of these modules (in its monitors and PID 1s): changing any of them
# makes a running launcher outdated.
_CODE = ("launcher", "monitor", "rtnl", "monitor_facts", "logpump", "handoff", "health", "tty", "child", "rootfs", "caps", "seccomp", "syscalls")
_HERE = os.path.dirname(os.path.abspath(__file__))
_MAX_FDS = 8
FORK_TIMEOUT = 10.0


def code_version() -> str:
    parts = [str(PROTOCOL)]
    for name in _CODE:
        s = os.stat(os.path.join(_HERE, name + ".py"))
        parts.append(f"{s.st_size}.{s.st_mtime_ns}")
    return "/".join(parts)


def _address(path: str) -> tuple[str, int | None]:
    """sun_path holds 107 bytes: a longer path goes through /proc/self/fd/N of its directory."""
    if len(os.fsencode(path)) < 100:
        return path, None
    dfd = os.open(os.path.dirname(path), os.O_PATH | os.O_CLOEXEC)
    return f"/proc/self/fd/{dfd}/{os.path.basename(path)}", dfd


def _peer(sock) -> tuple[int, int]:
    """(pid, uid) of the other end (SO_PEERCRED)."""
    cred = memoryview(sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)).cast("i")
    return cred[0], cred[1]


# ---------------------------------------------------------------- the launcher process


class _Server:
    def __init__(self, state_dir: str, lock_fd: int, token_w: int, chan) -> None:
        self.path = os.path.join(state_dir, SOCK_NAME)
        self.token_w, self.chan = token_w, chan  # to the template
        self.broken = False
        self.lock_fd = lock_fd
        self.idle = float(os.environ.get("COMPOSER_LAUNCHER_IDLE") or IDLE_DEFAULT)
        from composer.runtime import monitor  # loaded by serve()

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
            from composer.runtime import monitor

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
    from composer.runtime import monitor  # loaded by serve(), before the template's fork

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
    """Entry of the launcher process (BOOT): argv = [state_dir, lock_fd]. Returns when idle."""
    # The monitor's code, before the template's fork (shared by every monitor); a module import, not
    # a top-level one, so that clients (every CLI that starts a container) do not pay ~2 ms for it.
    from composer.runtime import monitor  # noqa: F401

    sc.load()  # ctypes and libc too (syscalls loads them on first use)
    from composer.runtime import rtnl  # noqa: F401  start helpers set container addresses with it

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


# Run by `python -I -S -c BOOT ROOT STATE_DIR LOCK_FD`, detached from the spawning CLI.
BOOT = boot_code("launcher", "serve", detach=True)


# ---------------------------------------------------------------- the client side (any process)


class LauncherError(OSError):
    pass


class Launcher:
    """The client of one state dir's launcher. Thread-safe: one connection per request."""

    HELLO_TIMEOUT = 10.0

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, SOCK_NAME)
        self.pid: int | None = None  # of the launcher that answered last

    def start(self) -> None:
        """Make sure a launcher runs or is starting, without waiting for it (Runtime.prepare)."""
        sock = self._connect(wait=False)
        if sock is not None:
            sock.close()

    def spawn(self, req: dict, fds: list[int]) -> int:
        """Fork a monitor for req; returns its pid. fds are duplicated into it, the caller keeps its own."""
        import json

        sock = self._connect(wait=True)
        assert sock is not None
        try:
            anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, _struct.pack(f"{len(fds)}i", *fds))] if fds else []
            sock.sendmsg([json.dumps({"spawn": req}).encode()], anc)
            reply = sock.recv(4096)
        except OSError as e:
            raise LauncherError(f"the container launcher failed: {e}") from None
        finally:
            sock.close()
        if not reply:
            raise LauncherError("the container launcher exited")
        answer = json.loads(reply)
        if "error" in answer:
            raise LauncherError(f"the container launcher refused: {answer['error']}")
        return int(answer["monitor"])

    def _connect(self, wait: bool):
        os.makedirs(self.state_dir, exist_ok=True)
        for _ in range(5):
            lock = os.open(os.path.join(self.state_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)  # waits while a launcher is starting or leaving
                sock = self._hello()
                if sock is not None:
                    _reap(block=True)  # a launcher we spawned listens: its first process has exited
                    return sock
                _spawn_server(self.state_dir, lock)
            finally:
                os.close(lock)
            if not wait:
                return None
        raise LauncherError(f"cannot start the container launcher (see {os.path.join(self.state_dir, LOG_NAME)})")

    def _hello(self):
        """A connection to a current launcher, or None (absent, stale, leaving, or outdated and
        now terminated). The caller holds the lock."""
        import json

        # _socket, as the launcher: socket.py costs a client (every `container run`) ~2 ms
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        sock.settimeout(self.HELLO_TIMEOUT)
        addr, dfd = _address(self.path)
        try:
            sock.connect(addr)
            data = sock.recv(4096)
        except TimeoutError:
            sock.close()
            raise LauncherError("the container launcher does not answer") from None
        except OSError:
            data = b""
        finally:
            if dfd is not None:
                os.close(dfd)
        try:
            hello = json.loads(data) if data else None
        except ValueError:
            hello = {}
        if hello is None:  # nobody there, or it left while we connected: a new one is needed
            sock.close()
            _unlink(self.path)
            return None
        pid = _peer(sock)[0]
        if hello.get("v") != _version():
            sock.close()
            _replace(pid, self.path)
            return None
        self.pid = pid
        sock.settimeout(None)
        return sock


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _replace(pid: int, path: str) -> None:
    """An outdated launcher: new requests go to a new one; it is terminated (its monitors are in
    their own sessions and live on)."""
    _unlink(path)
    try:
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() == "cmp-launcher":
                os.kill(pid, _signal.SIGTERM)
    except (OSError, ProcessLookupError):
        pass


def _spawn_server(state_dir: str, lock: int) -> None:
    """Exec a launcher holding our locked `lock` as fd 3 (it unlocks once it listens)."""
    import sys

    root = os.path.dirname(os.path.dirname(_HERE))
    log = os.open(os.path.join(state_dir, LOG_NAME), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    src = os.dup(lock) if lock == 3 else lock  # a dup2 onto itself would keep close-on-exec
    try:
        actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_DUP2, log, 2), (os.POSIX_SPAWN_DUP2, src, 3)]
        argv = [sys.executable, "-I", "-S", "-c", BOOT, root, state_dir, "3"]
        _PENDING.append(os.posix_spawn(sys.executable, argv, os.environ, file_actions=actions, setsid=True))
    finally:
        os.close(log)
        if src != lock:
            os.close(src)


_PENDING: list[int] = []  # spawned, not reaped yet: each forks the launcher and exits


def _reap(block: bool) -> None:
    for pid in list(_PENDING):
        try:
            done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            try:
                _PENDING.remove(pid)
            except ValueError:
                pass


_VERSION: str | None = None


def _version() -> str:
    global _VERSION
    if _VERSION is None:
        _VERSION = code_version()
    return _VERSION


_CLIENTS: dict[str, Launcher] = {}


def for_state_dir(state_dir: str) -> Launcher:
    client = _CLIENTS.get(state_dir)
    if client is None:
        client = _CLIENTS.setdefault(state_dir, Launcher(state_dir))
    return client
