"""Terminals and stdin for containers: pty pairs inside a container's own devpts, the controlling
terminal, window sizes, raw mode and the copy loops.

Two users, two weights:
- the monitor and PID 1 (lean: imported by the launcher, forked children): os, fcntl and the C
  halves _socket/_signal only. `PidOneStdio` decides PID 1's fds 0/1/2 for one launch: /dev/null,
  a stdin pipe (stdin_open), or a pty (tty). PID 1 allocates the pty itself, after pivot_root, from
  the container's devpts (so `tty` inside prints /dev/pts/N and ttyname works), makes the slave
  its controlling terminal and hands the master to the monitor over a socket (runc's console
  socket). A small forwarder process copies the attached client's stdin to the container.
- the CLI (`exec -t`, `run -t`): raw mode, SIGWINCH, the relay loop. termios is imported lazily.

Window size of an attached `run -t`: the CLI sends SIGWINCH to the monitor, which copies the size
of the attached terminal (it holds a dup of the CLI's stdout) onto the master."""

from __future__ import annotations

import _signal
import _socket
import errno
import fcntl
import os
import select

TIOCGWINSZ, TIOCSWINSZ, TIOCSCTTY = 0x5413, 0x5414, 0x540E
TIOCGPTPEER, TIOCSPTLCK = 0x5441, 0x40045431
PTMX_DEV = os.makedev(5, 2)
READ_SIZE = 65536
PR_SET_PDEATHSIG = 1


class TTYError(OSError):
    pass


# ---------------------------------------------------------------- sizes and pty pairs


def get_size(fd: int | None) -> bytes | None:
    """struct winsize (8 bytes) of a terminal fd, None if it is not one."""
    if fd is None:
        return None
    try:
        return fcntl.ioctl(fd, TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None


def set_size(fd: int, size: bytes | None) -> None:
    if size and size != b"\0" * 8:
        try:
            fcntl.ioctl(fd, TIOCSWINSZ, size)
        except OSError:
            pass


def winsize(rows: int, cols: int) -> bytes:
    return rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + b"\0" * 4


def open_pair(ptmx: str) -> tuple[int, int]:
    """(master, slave) from the devpts instance whose ptmx node is at `ptmx`. The slave comes from
    TIOCGPTPEER (no path lookup: nothing in the container can swap it) and carries that devpts
    mount's path, so inside the container it is /dev/pts/N."""
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        st = os.fstat(master)
        if not (st.st_mode & 0o170000 == 0o020000 and st.st_rdev == PTMX_DEV):
            raise TTYError(errno.ENOTTY, f"{ptmx} is not a pty multiplexer")
        fcntl.ioctl(master, TIOCSPTLCK, b"\0\0\0\0")  # unlockpt
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, slave


def open_in_container(pid1: int) -> tuple[int, int]:
    """A pty pair in the devpts of the container whose PID 1 is pid1 (for exec -t)."""
    try:
        return open_pair(f"/proc/{pid1}/root/dev/pts/ptmx")
    except OSError as e:
        raise TTYError(e.errno or errno.EIO, f"cannot allocate a pseudo-terminal in the container: "
                       f"{e.strerror or e}") from None


def make_controlling(slave: int) -> None:
    """In the process that will exec: new session, the slave as controlling terminal and 0/1/2."""
    os.setsid()
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


# ---------------------------------------------------------------- passing the master (PID 1 -> monitor)


def console(sock_fd: int, size: bytes | None) -> None:
    """PID 1's hook, after pivot_root, before exec: allocate the container's console, send the
    master to the monitor, keep the slave as 0/1/2 and controlling terminal."""
    master, slave = open_pair("/dev/pts/ptmx")
    set_size(master, size)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, sock_fd)
    try:
        sock.sendmsg([b"m"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, master.to_bytes(4, "little"))])
    finally:
        sock.close()
        os.close(master)
    make_controlling(slave)


def recv_fd(sock_fd: int) -> int | None:
    """The fd PID 1 sent (non-blocking: it was sent before exec, so before the start report)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET, 0, sock_fd)
    try:
        sock.setblocking(False)
        _, anc, _, _ = sock.recvmsg(1, _socket.CMSG_LEN(4), _socket.MSG_CMSG_CLOEXEC)
    except OSError:
        return None
    finally:
        sock.close()
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
            return int.from_bytes(data[:4], "little")
    return None


# ---------------------------------------------------------------- the monitor's side


class PidOneStdio:
    """PID 1's stdio for one launch. Steps, in the monitor: __init__ before the fork of C1,
    child() in PID 1 before child.main, parent() after the fork, started() once PID 1 runs
    (returns the fd to pump as stdout), close() at the end of the launch."""

    def __init__(self, req: dict, attach: list[int]) -> None:
        self.tty = bool(req.get("tty"))
        self.stdin_open = bool(req.get("stdin_open"))
        self.attach_out = attach[0] if attach else None
        self.attach_in = attach[2] if len(attach) > 2 else None
        self.in_r = self.in_w = self.sock_r = self.sock_w = self.master = None
        if self.tty:
            a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
            self.sock_r, self.sock_w = a.detach(), b.detach()
            os.set_inheritable(self.sock_r, False)
        elif self.stdin_open:
            self.in_r, self.in_w = os.pipe()

    def child(self, cfg: dict, out_w: int, err_w: int) -> None:
        """In PID 1 (before child.main): fds 0/1/2; the console socket's number goes into cfg."""
        stdin = self.in_r if self.in_r is not None else os.open("/dev/null", os.O_RDWR)
        os.dup2(stdin, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        if self.tty:
            cfg["console_fd"] = self.sock_w
            cfg["console_size"] = get_size(self.attach_out) or get_size(self.attach_in)

    def parent(self) -> None:
        for fd in (self.in_r, self.sock_w):
            if fd is not None:
                os.close(fd)
        self.in_r = self.sock_w = None

    def started(self, out_r: int, ctl: int | None) -> int:
        """PID 1 runs: the fd to pump as stdout (the pty master with a tty), the stdin forwarder
        started when a client is attached, the idle write end kept when not (stdin_open)."""
        if self.tty and self.sock_r is not None:
            self.master = recv_fd(self.sock_r)
            self.sock_r = None
            if self.master is not None:
                os.close(out_r)  # PID 1 replaced its pipe by the pty
                out_r = os.dup(self.master)  # the pump closes its own copy
                if self.attach_out is not None:
                    _on_resize(self.master, self.attach_out)
        target = self.master if self.master is not None else self.in_w
        if self.attach_in is not None and target is not None:
            forwarder(self.attach_in, target, ctl, pty=self.master is not None)
            if self.in_w is not None:  # the forwarder holds it now: its EOF is the container's
                os.close(self.in_w)
                self.in_w = None
        return out_r

    def close(self) -> None:
        for fd in (self.in_r, self.in_w, self.sock_r, self.sock_w, self.master):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.in_r = self.in_w = self.sock_r = self.sock_w = self.master = None
        if self.tty:
            _signal.signal(_signal.SIGWINCH, _signal.SIG_IGN)


def _on_resize(master: int, term: int) -> None:
    def handler(signum, frame) -> None:
        set_size(master, get_size(term))

    _signal.signal(_signal.SIGWINCH, handler)


def forwarder(src: int, dst: int, ctl: int | None, pty: bool) -> int:
    """Fork a process that copies src (the client's stdin) to dst (a pipe or the pty master).
    It leaves on src EOF (closing a pipe; a pty gets ^D), when dst's reader is gone, or when the
    client is (ctl hangs up): it never reads a terminal nobody attached watches."""
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        from composer.runtime import syscalls as sc

        sc.prctl(PR_SET_PDEATHSIG, 9)
        copy_in(src, dst, ctl, pty)
    except BaseException:  # noqa: BLE001
        code = 1
    os._exit(code)


def copy_in(src: int, dst: int, ctl: int | None, pty: bool) -> None:
    poller = select.poll()
    poller.register(src, select.POLLIN)
    poller.register(dst, 0)  # POLLERR/POLLHUP only: the container side is gone
    if ctl is not None:
        poller.register(ctl, 0)
    while True:
        for fd, ev in poller.poll():
            if fd != src:
                return
            try:
                data = os.read(src, READ_SIZE)
            except OSError:
                data = b""
            if not data:
                if pty:
                    write_all(dst, b"\x04")
                return
            write_all(dst, data)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


# ---------------------------------------------------------------- the CLI's side


class raw_mode:
    """The terminal on fd in raw mode for the block, restored on every way out: normal end,
    exception, Ctrl-C, and SIGTERM/SIGHUP (turned into SystemExit so the restore runs)."""

    def __init__(self, fd: int = 0) -> None:
        self.fd, self.saved, self.handlers = fd, None, {}

    def __enter__(self) -> "raw_mode":
        import signal
        import termios

        try:
            self.saved = termios.tcgetattr(self.fd)
        except termios.error:
            return self  # not a terminal: nothing to change
        mode = termios.tcgetattr(self.fd)
        # cfmakeraw, as docker's term.MakeRaw (output post-processing off: the pty inside does it)
        mode[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                     | termios.IGNCR | termios.ICRNL | termios.IXON)
        mode[1] &= ~termios.OPOST
        mode[2] &= ~(termios.CSIZE | termios.PARENB)
        mode[2] |= termios.CS8
        mode[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
        for sig in (signal.SIGTERM, signal.SIGHUP):
            self.handlers[sig] = signal.signal(sig, _exit_on_signal)
        termios.tcsetattr(self.fd, termios.TCSADRAIN, mode)
        return self

    def __exit__(self, *exc) -> None:
        import signal
        import termios

        if self.saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            except termios.error:
                pass
            self.saved = None
        for sig, old in self.handlers.items():
            signal.signal(sig, old)
        self.handlers = {}


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


def relay(master: int, pid: int, interactive: bool, in_fd: int = 0, out_fd: int = 1) -> None:
    """exec -t in the CLI: copy in_fd -> master and master -> out_fd until process pid (which
    waits for the command) exits, then drain the master. pid is not reaped here. SIGWINCH
    resizes the pty; a Ctrl-C that reaches us (terminal not raw) is passed on as ^C."""
    import signal

    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(master, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    reading = interactive and _readable(in_fd)
    if reading:
        poller.register(in_fd, select.POLLIN)

    def resize(signum, frame) -> None:
        set_size(master, get_size(in_fd) or get_size(out_fd))

    old = signal.signal(signal.SIGWINCH, resize)
    try:
        done = False
        while not done:
            try:
                events = poller.poll()
            except KeyboardInterrupt:
                write_all(master, b"\x03")
                continue
            for fd, _ in events:
                if fd == master and not _copy_out(master, out_fd):
                    poller.unregister(master)  # every slave closed: only the exit is left to wait for
                elif fd == in_fd and reading:
                    try:
                        data = os.read(in_fd, READ_SIZE)
                    except OSError:
                        data = b""
                    write_all(master, data or b"\x04")  # EOF: ^D, the pty's end of input
                    if not data:
                        poller.unregister(in_fd)
                        reading = False
                elif fd == pidfd:
                    done = True
        os.set_blocking(master, False)
        while _copy_out(master, out_fd):
            pass
    finally:
        signal.signal(signal.SIGWINCH, old)
        os.close(pidfd)


def _readable(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def _copy_out(master: int, out_fd: int) -> bool:
    """One read from the master to out_fd; False at its end (EIO once no slave is open) or when
    nothing more is there (non-blocking drain)."""
    try:
        data = os.read(master, READ_SIZE)
    except (BlockingIOError, OSError):
        return False
    if not data:
        return False
    try:
        write_all(out_fd, data)
    except OSError:
        pass  # our output is gone (closed pipe): keep draining so the container never blocks
    return True
