"""What runs inside the container before exec: PID 1 of the new pid namespace, forked by the monitor.

It waits on the sync pipe (the CLI attaches the network first), builds the root filesystem, sets
hostname, loopback, user, rlimits and capabilities, closes every inherited descriptor and execs.
Anything that fails is written to the close-on-exec error pipe as "CODE\\tmessage" for the monitor;
a successful exec closes the pipe with nothing written. With `init`, PID 1 stays a tiny reaping,
signal-forwarding init and the command runs as its child.

A forked child: os, ctypes, signal only, never threads, never the import of anything heavy. It is
imported by the lean launcher (launcher.py): hence the C halves of signal, socket and struct, whose
Python wrappers import enum and selectors."""

from __future__ import annotations

import _signal as signal
import _socket
import _struct as struct
import fcntl
import os
import resource

from composer.runtime import syscalls as sc
from composer.runtime.fs import cgroupns
from composer.runtime.fs import rootfs
from composer.runtime.fs.rootfs import SetupError
from composer.runtime.monitor import tty
from composer.runtime.security import caps
from composer.runtime.security import seccomp

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
RLIMITS = {
    "core": resource.RLIMIT_CORE, "cpu": resource.RLIMIT_CPU, "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE, "memlock": resource.RLIMIT_MEMLOCK,
    "msgqueue": resource.RLIMIT_MSGQUEUE, "nice": resource.RLIMIT_NICE, "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC, "rss": resource.RLIMIT_RSS, "rtprio": resource.RLIMIT_RTPRIO,
    "sigpending": resource.RLIMIT_SIGPENDING, "stack": resource.RLIMIT_STACK, "as": resource.RLIMIT_AS,
}


def loopback_up() -> None:
    """`ip link set lo up` by ioctl, so --network none needs no netlink library."""
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
    finally:
        s.close()


def _read_db(path: str) -> list[list[str]]:
    try:
        with open(path) as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def resolve_user(user: str, passwd: str = "/etc/passwd", group: str = "/etc/group") -> tuple[int, int, list[int], str]:
    """docker's rules for 'name|uid[:group|gid]' -> (uid, gid, supplementary gids, home)."""
    name, _, grp = (user or "0").partition(":")
    users = [e for e in _read_db(passwd) if len(e) >= 6]
    entry = next((e for e in users if e[0] == name), None)
    if entry is None and name.isdigit():
        entry = next((e for e in users if e[2] == name), None)
    if entry is None and not name.isdigit():
        raise SetupError(f"unable to find user {name}: no matching entries in passwd file", 126)
    uid = int(entry[2]) if entry else int(name)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry else "/"
    groups = [e for e in _read_db(group) if len(e) >= 3]
    if grp:
        g = next((e for e in groups if e[0] == grp), None)
        if g is None and not grp.isdigit():
            raise SetupError(f"unable to find group {grp}: no matching entries in group file", 126)
        gid = int(g[2]) if g else int(grp)
    uname = entry[0] if entry else None
    extra = sorted({int(e[2]) for e in groups if uname and len(e) > 3 and uname in e[3].split(",")} - {gid})
    return uid, gid, extra, home


def _find_exec(argv0: str, path: str) -> str:
    if "/" in argv0:
        return argv0
    for d in (path or DEFAULT_PATH).split(":"):
        cand = os.path.join(d or ".", argv0)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise SetupError(f'exec: "{argv0}": executable file not found in $PATH', 127)


def _set_rlimits(ulimits: list) -> None:
    for u in ulimits:
        res = RLIMITS.get(u["name"])
        if res is None:
            raise SetupError(f"unknown ulimit {u['name']!r}")
        _, cur_hard = resource.getrlimit(res)
        hard = u["hard"] if cur_hard == resource.RLIM_INFINITY else min(u["hard"], cur_hard)
        resource.setrlimit(res, (min(u["soft"], hard), hard))  # lower only: we lack CAP_SYS_RESOURCE


def load_seccomp(program: bytes) -> None:
    """Never start unconfined: a filter that cannot be loaded fails the start (exit 125)."""
    try:
        seccomp.install(program)
    except OSError as e:
        raise SetupError(f"cannot install the seccomp filter: {e.strerror}", 125) from None


def prepare(cfg: dict) -> tuple[str, list[str], dict[str, str]]:
    """Everything up to exec. Returns (path, argv, env)."""
    cgroupns.enter(cfg.get("cgroup"))  # after "go": PID 1 is in its cgroup, the namespace's root
    rootfs.setup(cfg)
    if cfg.get("netns", True):
        sc.sethostname(cfg["hostname"])
        if cfg.get("domainname"):
            sc.setdomainname(cfg["domainname"])
        loopback_up()
    for key, value in cfg.get("sysctls", ()):
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)
    uid, gid, groups, home = resolve_user(cfg.get("user", ""))
    env = dict(cfg.get("env", ()))
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOSTNAME", cfg["hostname"])
    env.setdefault("HOME", home)
    cwd = cfg.get("cwd") or "/"
    try:
        os.makedirs(cwd, exist_ok=True)  # docker creates a missing working dir
    except OSError:
        pass
    _set_rlimits(cfg.get("ulimits", ()))
    if cfg.get("oom_score_adj") is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(cfg["oom_score_adj"]))
    keep = cfg["caps"]
    program = bytes.fromhex(cfg["seccomp"]) if cfg.get("seccomp") else b""
    nnp = cfg.get("no_new_privileges")
    if program and not nnp:
        load_seccomp(program)  # without no_new_privs this needs CAP_SYS_ADMIN: before the drop (as runc)
    caps.drop_bounding(keep, cfg["last_cap"])
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)  # a non-root uid loses every capability here
    if uid == 0:
        caps.set_process_caps(keep)
    if nnp:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        if program:
            load_seccomp(program)  # as late as possible: fewer of our own calls pass the filter
    try:
        os.chdir(cwd)
    except OSError as e:
        raise SetupError(f"cannot change to working directory {cwd}: {e.strerror}", 126) from None
    argv = list(cfg["argv"])
    return _find_exec(argv[0], env["PATH"]), argv, env


def _noop(signum, frame) -> None:
    pass


def _reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; ignored signals survive exec: give the command defaults."""
    for s in range(1, signal.NSIG):
        try:
            signal.signal(s, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _exec(path: str, argv: list[str], env: dict[str, str], errfd: int) -> None:
    _reset_signals()
    try:
        os.execve(path, argv, env)
    except OSError as e:
        code = 126 if e.errno in (13, 8, 21) else 127  # EACCES, ENOEXEC, EISDIR: not executable
        what = "no such file or directory" if code == 127 else e.strerror.lower()
        _fail(errfd, SetupError(f'exec: "{argv[0]}": {what}', code))


def _fail(errfd: int, err: BaseException) -> None:
    code = err.code if isinstance(err, SetupError) else 125
    msg = str(err) if isinstance(err, SetupError) else f"container setup failed: {err}"
    try:
        os.write(errfd, f"{code}\t{msg}".encode()[:4000])
    finally:
        os._exit(code)


def run_init(path: str, argv: list[str], env: dict[str, str], errfd: int) -> None:
    """PID 1 as init: forward signals to the command, reap every zombie, exit with its status."""
    child = os.fork()
    if child == 0:
        _exec(path, argv, env, errfd)
    os.close(errfd)
    forward = [s for s in range(1, signal.NSIG)
               if s not in (signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP, 32, 33)]
    signal.pthread_sigmask(signal.SIG_BLOCK, forward + [signal.SIGCHLD])
    for s in forward + [signal.SIGCHLD]:
        # PID 1 only receives signals it has a handler for; sigwaitinfo takes them while blocked
        signal.signal(s, _noop)
    while True:
        info = signal.sigwaitinfo(forward + [signal.SIGCHLD])
        if info.si_signo != signal.SIGCHLD:
            try:
                os.kill(child, info.si_signo)
            except ProcessLookupError:
                pass
            continue
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                os._exit(0)
            if pid == 0:
                break
            if pid == child:
                os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def main(cfg: dict, sync_fd: int, err_fd: int) -> None:
    """Entry of PID 1. Never returns."""
    try:
        go = os.read(sync_fd, 1)
        os.close(sync_fd)
        if go != b"g":  # the starter gave up: leave quietly
            os._exit(125)
        path, argv, env = prepare(cfg)
        if cfg.get("console_fd") is not None:  # tty: the pty comes from the container's own devpts
            tty.console(cfg["console_fd"], cfg.get("console_size"))
        # Only 0, 1, 2 and the error pipe (close-on-exec) may reach the command.
        target = 3
        if err_fd != target:
            os.dup2(err_fd, target, inheritable=False)
            err_fd = target
        sc.close_range(4)
        if cfg.get("init"):
            run_init(path, argv, env, err_fd)
        _exec(path, argv, env, err_fd)
    except BaseException as e:  # noqa: BLE001 - PID 1 must report, never raise into the monitor's code
        _fail(err_fd, e)
