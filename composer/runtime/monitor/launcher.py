"""The launcher ("zygote"): one lean, single-threaded process per state dir that forks one monitor
per container on request. Every monitor is forked from it, so they all share its pages. This
module is the client (every CLI that starts a container imports it) and what both sides share;
the launcher process itself is runtime.monitor.launcher_server.

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
monitors live on (own sessions). The launcher leaves by itself once it has had no connection
for COMPOSER_LAUNCHER_IDLE seconds (default 5; monitors do not keep it), or at once when idle and
its socket is gone (state dir removed, or replaced); it takes the lock to leave, so no client is
dropped silently (a client whose connection breaks during the hello retries)."""

from __future__ import annotations

import os

import _signal
import _socket
import _struct
import fcntl

from composer.runtime.monitor.bootcode import boot_code

PROTOCOL = 2
SOCK_NAME, LOCK_NAME, LOG_NAME = "launcher.sock", "launcher.lock", "launcher.log"
# A launcher runs the code of these modules (in its monitors and PID 1s): changing any of them
# makes a running launcher outdated.
# (paths under composer/runtime/)
_CODE = ("monitor/launcher", "monitor/launcher_server", "monitor/monitor", "monitor/launch", "net/rtnl",
         "monitor/facts", "monitor/failure", "monitor/logpump", "monitor/handoff", "monitor/health", "monitor/tty",
         "monitor/child", "fs/rootfs", "fs/cgroupns", "security/caps", "security/seccomp", "syscalls")
_RUNTIME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def code_version() -> str:
    parts = [str(PROTOCOL)]
    for name in _CODE:
        s = os.stat(os.path.join(_RUNTIME, name + ".py"))
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


# Run by `python -I -S -c BOOT ROOT STATE_DIR LOCK_FD`, detached from the spawning CLI.
BOOT = boot_code("monitor.launcher_server", "serve", detach=True)


class LauncherError(OSError):
    pass


class Launcher:
    """The client of one state dir's launcher. Thread-safe: one connection per request."""

    HELLO_TIMEOUT = 10.0

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, SOCK_NAME)
        self.pid: int | None = None  # of the launcher that answered last
        self._kept: dict[str, object] = {}  # "sock": start()'s connection, for the next spawn

    def start(self, keep: bool = False) -> None:
        """Make sure a launcher runs or is starting, without waiting for it (Runtime.prepare).
        keep: a spawn follows at once (`container run`): keep a connection to a running launcher
        for it, one connect and hello less. Not otherwise: an open connection keeps the launcher
        from leaving when idle."""
        sock = self._connect(wait=False)
        if sock is not None and keep:
            old = self._kept.pop("sock", None)
            self._kept["sock"] = sock
            sock = old
        if sock is not None:
            sock.close()

    def spawn(self, req: dict, fds: list[int]) -> int:
        """Fork a monitor for req; returns its pid. fds are duplicated into it, the caller keeps its own."""
        import json

        data = json.dumps({"spawn": req}).encode()
        anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, _struct.pack(f"{len(fds)}i", *fds))] if fds else []
        sock = self._kept.pop("sock", None)  # dict.pop: threads never share one connection
        if sock is not None:
            try:
                sock.sendmsg([data], anc)
            except OSError:  # that launcher is gone: nothing was sent, a fresh connection retries
                sock.close()
                sock = None
        if sock is None:
            sock = self._connect(wait=True)
            assert sock is not None
            try:
                sock.sendmsg([data], anc)
            except OSError as e:
                sock.close()
                raise LauncherError(f"the container launcher failed: {e}") from None
        try:
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

    root = os.path.dirname(os.path.dirname(_RUNTIME))
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
