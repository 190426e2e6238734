"""Stop, kill, pause and remove, behind Runtime: the verbs that end what lifecycle started. Each
takes the container's lock, acts on verified pids only (pid + start time), and works after a kill -9
of the monitor or of the CLI that started the container."""

from __future__ import annotations

import os
import signal
import time

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)

from composer.errors import ComposerError, ConflictError, ContainerError
from composer.runtime.container import state as st
from composer.runtime.spec import attachments
from composer.runtime.syscalls import is_alive

if TYPE_CHECKING:
    from composer.runtime.container.containers import ContainerInfo, Runtime


# ---------------------------------------------------------------- stop, kill, pause


def _signal(s: dict, sig: int) -> bool:
    if not is_alive(s.get("pid"), s.get("pid_start")):
        return False
    try:
        os.kill(s["pid"], sig)
        return True
    except ProcessLookupError:
        return False


def kill_wait(pid: int, start: int | None, timeout: float) -> bool:
    """SIGKILL a verified pid and wait until it is gone."""
    from composer.runtime.container.containers import _wait_pid

    if is_alive(pid, start):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return True
        _wait_pid(pid, start, timeout)
    return not is_alive(pid, start)


def stop(rt: "Runtime", info: "ContainerInfo", timeout: float | None) -> "ContainerInfo":
    from composer.runtime.container.containers import _wait_pid

    p = rt.paths(info.id)
    grace = info.spec.stop_timeout if timeout is None else timeout
    with st.Lock(p.state):
        s = st.read(p.state)
        status = st.derive_status(s)
        if status in ("running", "paused", "restarting"):
            s = st.update(p.state, stop_requested=True)  # the restart policy must not undo this
        if status not in ("running", "paused"):
            return rt._info(info.spec, s)
        if s.get("paused"):
            _thaw(s)
        _signal(s, info.spec.stop_signal)
    _wait_pid(s["pid"], s.get("pid_start"), grace)
    with st.Lock(p.state):
        kill_wait(s["pid"], s.get("pid_start"), 10.0)
    _wait_recorded(p.state, s, 10.0)
    with st.Lock(p.state):
        s2 = st.read(p.state)
        if s2 and s2.get("pid") == s["pid"] and not s2.get("finished_at"):  # the monitor was gone
            _cleanup_cgroup(s2)
            st.update(p.state, finished_at=st.now(), paused=False)
    return rt._info(info.spec)


def _wait_recorded(state_dir: str, s: dict, timeout: float) -> None:
    """Until the monitor has recorded PID 1's exit (it may then linger, e.g. for --rm's ack)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and st.monitor_alive(s):
        now = st.read(state_dir)
        if not now or now.get("pid") != s["pid"] or now.get("finished_at"):
            return
        time.sleep(0.005)


def kill(rt: "Runtime", info: "ContainerInfo", sig: int, *, removing: bool = False) -> None:
    """removing: a removal follows (`down`), so this run's exit needs no record: a cmp-pump
    monitor then exits with PID 1 instead of starting Python to record it (facts.removal_mark)."""
    p = rt.paths(info.id)
    with st.Lock(p.state):
        s = st.read(p.state)
        if s.get("paused") and sig == signal.SIGKILL:
            _thaw(s)
        if st.derive_status(s) in ("running", "paused") and sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            st.update(p.state, stop_requested=True)  # as docker: a kill counts as a manual stop
            if removing:
                _mark_removal(p.state, s["pid"])
        if not _signal(s, sig):
            raise ConflictError(f"container {info.name} is not running")


def _mark_removal(state_dir: str, pid: int) -> None:
    from composer.runtime.monitor.facts import removal_mark

    try:
        os.close(os.open(removal_mark(state_dir, pid), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    except OSError:
        pass  # the monitor records the exit as usual: slower, not wrong


def _thaw(s: dict) -> None:
    from composer.runtime.cgroups import base as cgroups

    if s.get("cgroup"):
        paths = cgroups.CgroupPaths.from_dict(s["cgroup"])
        quiet(cgroups.driver_for(paths).thaw, paths)


def set_paused(rt: "Runtime", info: "ContainerInfo", paused: bool) -> None:
    from composer.runtime.cgroups import base as cgroups

    p = rt.paths(info.id)
    with st.Lock(p.state):
        s = st.read(p.state)
        status = st.derive_status(s)
        if status not in ("running", "paused"):
            raise ConflictError(f"container {info.name} is not running")
        if (status == "paused") == paused:
            raise ConflictError(f"container {info.name} is {'already' if paused else 'not'} paused")
        paths = cgroups.CgroupPaths.from_dict(s["cgroup"])
        drv = cgroups.driver_for(paths)
        drv.freeze(paths) if paused else drv.thaw(paths)
        st.update(p.state, paused=paused)


# ---------------------------------------------------------------- remove


def _cleanup_cgroup(s: dict) -> None:
    from composer.runtime.cgroups import base as cgroups

    if s.get("cgroup"):
        paths = cgroups.CgroupPaths.from_dict(s["cgroup"])
        cgroups.driver_for(paths).remove(paths)


def _cleanup_unrecorded_cgroups(id: str) -> None:
    """Cgroups named after the container but not in its state: a start killed between making the
    cgroup and recording it, or a state dir lost (reboot, rm -rf) while the cgroup stayed."""
    from composer.runtime.cgroups import base as cgroups

    drv = cgroups.default_driver()
    for leftover in drv.find_leftovers(id):
        drv.remove_dir(leftover)


def remove(rt: "Runtime", info: "ContainerInfo", force: bool, *, settle_links: bool = True) -> None:
    """Kill (verified pids only) if forced, then remove cgroup, network, upper, log, state.
    Idempotent, and works after kill -9 of the monitor or of the CLI that started it.
    settle_links=False: the host veths may outlive the return by a few ms (a detached child
    makes sure they go, see NetworkManager.disconnect_all)."""
    p = rt.paths(info.id)
    with st.Lock(p.state):
        s = st.read(p.state)
        if not s.get("pid") and force:  # the state dir was lost (rm -rf, a tmpfs gone): its monitor is still
            from composer.runtime.container.rebuild import from_host  # found from the host, and killed first

            s = {**s, **{k: v for k, v in from_host(p.state).items() if k in ("pid", "pid_start", "monitor_pid",
                                                                            "monitor_start", "cgroup")}}
        status = st.derive_status(s)
        if status in ("running", "paused") and not force:
            raise ConflictError(f"you cannot remove a running container {info.name}: stop it first or use force")
        if s.get("paused"):
            _thaw(s)
        errors = []
        if s.get("monitor_pid") and s["monitor_pid"] != os.getpid():  # not us: auto-remove runs in it
            kill_wait(s["monitor_pid"], s.get("monitor_start"), 5.0)
        pid_gone = not s.get("pid") or kill_wait(s["pid"], s.get("pid_start"), 5.0)
        try:
            _cleanup_cgroup(s)  # SIGKILLs whatever is still in the cgroup, then rmdir
            _cleanup_unrecorded_cgroups(info.id)
        except ComposerError as e:
            errors.append(str(e))
        if not pid_gone and is_alive(s["pid"], s.get("pid_start")):
            errors.append(f"process {s['pid']} did not die")
        if s.get("endpoints") or s.get("ports") or (attachments(info.spec) and _net_state_exists(rt)):
            try:
                if info.spec.ports or s.get("ports"):  # only a spec with ports ever publishes
                    rt.network.ports.unpublish(info.id)
                rt.network.disconnect_all(info.id, settle=settle_links)
            except ComposerError as e:
                errors.append(str(e))
        if errors:
            raise ContainerError(f"cannot remove container {info.name}: " + "; ".join(errors))
        from composer.runtime.container.inventory import remove_data

        try:
            remove_data(rt, info.id)  # renamed away first: never a container dir without its spec
        except ContainerError as e:
            raise ContainerError(f"cannot remove container {info.name}: {e}") from None
        for name in os.listdir(p.state) if os.path.isdir(p.state) else ():
            if name != st.LOCK_FILE:
                quiet(os.unlink, os.path.join(p.state, name))
    rmtree(p.state)


def _net_state_exists(rt: "Runtime") -> bool:
    return os.path.isdir(os.path.join(rt.state_dir, "networks"))


def quiet(fn, *args) -> None:
    try:
        fn(*args)
    except (OSError, ComposerError):
        pass


def rmtree(path: str) -> None:
    """shutil.rmtree(path, ignore_errors=True) without importing shutil (~2 ms of every `run --rm`):
    bottom-up on directory fds (fwalk closes each after its turn), symlinks removed, never followed."""
    import stat

    try:
        for _, dirs, files, fd in os.fwalk(path, topdown=False):
            for name in files:
                quiet(lambda: os.unlink(name, dir_fd=fd))
            for name in dirs:
                try:
                    link = stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
                    os.unlink(name, dir_fd=fd) if link else os.rmdir(name, dir_fd=fd)
                except OSError:
                    pass
    except OSError:
        pass
    quiet(os.rmdir, path)
