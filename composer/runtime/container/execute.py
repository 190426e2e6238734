"""`exec`: run another process inside a running container.

    caller --fork--> E: join the cgroup, setns(ipc uts net pid mnt) --fork--> X: user, caps, exec
                     E waits for X and exits with its code (setns(pid) only affects children)

The fork happens in the caller; E and X are single-threaded and run only os/ctypes calls, so this
is safe from the CLI (which has no threads when it execs). stdio is inherited: output goes
straight to the caller's terminal or pipes."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)

from composer.errors import ContainerError
from composer.runtime import syscalls as sc
from composer.runtime.monitor import tty
from composer.runtime.security import caps
from composer.runtime.monitor.child import (DEFAULT_PATH, SetupError, _find_exec, _reset_signals, _set_rlimits,
                                     load_seccomp, resolve_user)

if TYPE_CHECKING:
    from composer.runtime.container.containers import ContainerInfo

NAMESPACES = (("ipc", sc.CLONE_NEWIPC), ("uts", sc.CLONE_NEWUTS), ("net", sc.CLONE_NEWNET),
              ("pid", sc.CLONE_NEWPID), ("cgroup", sc.CLONE_NEWCGROUP), ("mnt", sc.CLONE_NEWNS))


def _enter(pid: int, state: dict) -> None:
    cg = state.get("cgroup")
    if cg:
        from composer.runtime.cgroups import base as cgroups

        paths = cgroups.CgroupPaths.from_dict(cg)
        cgroups.driver_for(paths).attach(paths, os.getpid())
    fds = []
    for name, flag in NAMESPACES:
        path = f"/proc/{pid}/ns/{name}"
        try:
            if os.readlink(path) == os.readlink(f"/proc/self/ns/{name}"):
                continue  # shared with the host (network_mode host)
            fds.append((os.open(path, os.O_RDONLY | os.O_CLOEXEC), flag))
        except OSError as e:
            raise SetupError(f"cannot enter the container: {e.strerror}", 126) from None
    for fd, flag in fds:
        sc.setns(fd, flag)
        os.close(fd)


def _seccomp_program(spec, state_dir: str | None) -> bytes | None:
    """The container's BPF program (None: unconfined), from the runtime's cache in state_dir as
    PID 1 got it (runtime.security.seccomp.program_for: a read, not a ~8 ms build); built here without one.
    Call it before setns: after, the state dir and the builder's code are out of sight."""
    try:
        if state_dir is not None:
            from composer.runtime.security import seccomp

            return seccomp.program_for(state_dir, spec.seccomp, spec.cap_add, spec.cap_drop, spec.privileged)
        from composer.runtime.security import seccomp_profile

        return seccomp_profile.for_container(spec.seccomp, spec.cap_add, spec.cap_drop, spec.privileged)
    except ValueError as e:
        raise SetupError(f"invalid seccomp profile: {e}", 125) from None


def _process(info: "ContainerInfo", argv: list[str], env: tuple, cwd: str | None, user: str | None,
             program: bytes | None) -> None:
    """In X, after setns: become the exec'd process. program: from _seccomp_program, before setns."""
    spec = info.spec
    uid, gid, groups, home = resolve_user(user if user is not None else spec.user)
    environ = dict(spec.env)
    environ.setdefault("PATH", DEFAULT_PATH)
    environ.setdefault("HOSTNAME", spec.hostname or spec.id[:12])
    environ.setdefault("HOME", home)
    environ.update(dict(env))
    keep = caps.resolve(spec.cap_add, spec.cap_drop, spec.privileged)
    # PID 1's confinement, in the same order as child.prepare: rlimits, seccomp, capabilities.
    _set_rlimits([{"name": u.name, "soft": u.soft, "hard": u.hard} for u in spec.ulimits])
    if program and not spec.no_new_privileges:
        load_seccomp(program)  # still holding CAP_SYS_ADMIN, which the drop below removes
    caps.drop_bounding(keep, caps.last_cap())
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    if uid == 0:
        caps.set_process_caps(keep)
    if spec.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        if program:
            load_seccomp(program)
    workdir = cwd or spec.cwd or "/"
    try:
        os.chdir(workdir)
    except OSError as e:
        raise SetupError(f"cannot change to working directory {workdir}: {e.strerror}", 126) from None
    path = _find_exec(argv[0], environ["PATH"])
    sc.close_range(3)
    _reset_signals()
    try:
        os.execve(path, argv, environ)
    except OSError as e:
        code = 126 if e.errno in (13, 8, 21) else 127
        raise SetupError(f'exec: "{argv[0]}": {e.strerror.lower()}', code) from None


def _report(err: BaseException) -> None:
    code = err.code if isinstance(err, SetupError) else 126
    try:
        os.write(2, f"composer: {err}\n".encode())
    finally:
        os._exit(code)


def _stdio(slave: int | None, interactive: bool) -> None:
    """In X: the pty slave as controlling terminal and 0/1/2 (exec -t), else the caller's stdio,
    without its stdin unless interactive (docker exec without -i)."""
    if slave is not None:
        tty.make_controlling(slave)
    elif not interactive:
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)


def _enter_and_run(info, state, argv, env, cwd, user, program: bytes | None, slave: int | None = None,
                   interactive: bool = True) -> None:
    """In E: never returns."""
    try:
        _enter(state["pid"], state)
        child = os.fork()
        if child == 0:
            try:
                _stdio(slave, interactive)
                _process(info, argv, env, cwd, user, program)
            except BaseException as e:  # noqa: BLE001
                _report(e)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # X gets Ctrl-C itself (same process group)
        if slave is not None:
            os.close(slave)  # X's copies only: the caller sees the pty's end when X's session ends
        _, status = os.waitpid(child, 0)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    except BaseException as e:  # noqa: BLE001
        _report(e)


def run(info: "ContainerInfo", state: dict, argv: list[str], *, env: tuple = (), cwd: str | None = None,
        user: str | None = None, detach: bool = False, tty_: bool = False, interactive: bool = True,
        state_dir: str | None = None) -> int:
    """Run argv in the container; returns its exit code (0 at once when detached). tty_: on a new
    pty from the container's devpts, relayed to our stdin/stdout (raw when stdin is a terminal).
    state_dir: the runtime's, whose seccomp cache PID 1's program came from."""
    if not argv:
        raise ContainerError("no command specified")
    if state.get("cgroup"):
        from composer.runtime.cgroups import base as cgroups  # noqa: F401  imported before fork, not in the child
    try:  # now: X, in the container's mount namespace, can neither read the cache nor import
        program = _seccomp_program(info.spec, state_dir)
    except SetupError as e:
        err = ContainerError(str(e))
        err.exit_code = e.code
        raise err from None
    master = slave = None
    if tty_ and not detach:
        try:
            master, slave = tty.open_in_container(state["pid"])
        except OSError as e:
            raise ContainerError(str(e.strerror or e)) from None
        tty.set_size(master, tty.get_size(0) or tty.get_size(1))
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        if master is not None:
            os.close(master)
        if detach:
            os.setsid()
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            if os.fork() != 0:
                os._exit(0)
        _enter_and_run(info, state, argv, env, cwd, user, program, slave, interactive)
    if master is not None:
        os.close(slave)
        try:
            with tty.raw_mode(0) if interactive and os.isatty(0) else contextlib.nullcontext():
                tty.relay(master, pid, interactive)
        finally:
            os.close(master)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except KeyboardInterrupt:
            continue  # the process inside got the Ctrl-C too; wait for it to finish
    if detach:
        return 0
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
