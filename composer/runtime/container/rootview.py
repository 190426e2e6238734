"""A look into a container's filesystem from the host side, for `cp` and `export`, running or not
(as `docker cp` and `docker export` do).

The work runs in a forked child that has entered the container's root, so every path is resolved
as the container sees it and a symlink inside can never lead out to the host:
- running (or paused), with its mounts (cp): chroot into /proc/<PID 1>/root, the container's own
  mount namespace as it is, volumes and binds included;
- running, root file system only (export): setns into its mount namespace, unshare a private
  copy, bind its root non-recursively (the overlay alone, none of /proc, /dev, volumes) and chroot;
- not running: a private mount namespace with the container's overlay (image layers + its upper
  dir) on its rootfs dir and, with mounts, its bind mounts (named volumes among them), then chroot.
  The container's lock is held meanwhile, so a `start` waits instead of mounting the same upper dir.

Data flows through a pipe (a tar stream); the child reports a failure as one line on a second pipe.
The child is forked from the CLI's only thread (setns needs a single-threaded caller)."""

from __future__ import annotations

import os

from composer.errors import ConflictError, ContainerError, NotFoundError
from composer.runtime import syscalls as sc
from composer.runtime.container import state as st

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from composer.runtime.container.containers import ContainerInfo, Runtime


class ChildError(Exception):
    """Raised inside the child; its kind picks the error class the parent raises."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_KINDS = {"notfound": NotFoundError, "conflict": ConflictError}


def run_inside(rt: Runtime, info: ContainerInfo, work: Callable[[], None], parent_side: Callable[[], None], *,
               mounts: bool = True, child_fds: tuple[int, ...] = ()) -> None:
    """Run work() in a child inside the container's root and parent_side() here meanwhile (the
    other end of their pipe); raise the child's failure, else parent_side's. child_fds: the pipe
    ends work() uses, closed here once forked. The fork comes first: no thread is forked with us."""
    from composer.runtime.fs.rootfs import overlay_options

    lock = None
    if info.status not in ("running", "paused"):
        lock = st.Lock(rt.paths(info.id).state)
        lock.__enter__()
        info = rt.get(info.id)  # it may have started while we waited for the lock
        if info.status in ("running", "paused", "restarting"):
            lock.__exit__(None, None, None)
            lock = None
    try:
        if info.status == "restarting" or (info.status in ("running", "paused") and not info.pid):
            raise ConflictError(f"container {info.name} is restarting: try again in a moment")
        view = None
        if lock is not None:
            p = rt.paths(info.id)
            base, opts = overlay_options(list(info.spec.layers), os.path.join(p.data, "upper"),
                                         os.path.join(p.data, "work"))
            view = (base, opts, os.path.join(p.data, "rootfs"))
        _fork(info, work, parent_side, view, mounts, child_fds)
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)


def _fork(info: ContainerInfo, work, parent_side, view, mounts: bool, child_fds: tuple[int, ...]) -> None:
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only os calls and work() until _exit
        code = 0
        try:
            os.close(err_r)
            _enter(info, view, mounts)
            work()
        except ChildError as e:
            os.write(err_w, f"{e.kind}\t{e}".encode()[:4000])
            code = 1
        except BaseException as e:  # noqa: BLE001 - a forked child must never unwind into the parent's code
            os.write(err_w, f"error\t{_describe(e)}".encode()[:4000])
            code = 1
        finally:
            os._exit(code)
    os.close(err_w)
    for fd in child_fds:
        os.close(fd)
    failure: BaseException | None = None
    try:
        parent_side()  # it closes its pipe end even when it fails, so the child is never stuck on it
    except BrokenPipeError:
        pass  # the child stopped reading: its own report says why
    except BaseException as e:  # noqa: BLE001 - raised below, after the child's own report
        failure = e
    with os.fdopen(err_r, "rb") as f:
        message = f.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if failure is not None and (not message or "Broken pipe" in message):
        raise failure  # the child only saw its reader go: the reader's error is the one to tell
    if message or os.waitstatus_to_exitcode(status) != 0:
        kind, _, text = message.partition("\t")
        raise _KINDS.get(kind, ContainerError)(text or f"copy helper failed ({os.waitstatus_to_exitcode(status)})")
    if failure is not None:
        raise failure


def _describe(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename is not None:
        return f"{e.strerror or e}: {e.filename}"
    return str(e) or type(e).__name__


def _enter(info: ContainerInfo, view, mounts: bool) -> None:
    if view is None and mounts:
        os.chroot(f"/proc/{info.pid}/root")
    elif view is None:
        fd = os.open(f"/proc/{info.pid}/ns/mnt", os.O_RDONLY)
        sc.setns(fd, sc.CLONE_NEWNS)  # root and cwd become the namespace's root: the container's
        os.close(fd)
        sc.unshare(sc.CLONE_NEWNS)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        sc.mount("/", "/proc", None, sc.MS_BIND)  # / alone, without what is mounted under it
        os.chroot("/proc")
    else:
        base, opts, rootfs = view
        sc.unshare(sc.CLONE_NEWNS)
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        os.chdir(base)  # the lower dirs are relative to it
        sc.mount("overlay", rootfs, "overlay", 0, opts)
        if mounts:
            _bind_mounts(info, rootfs)
        os.chroot(rootfs)
    os.chdir("/")


def _bind_mounts(info: ContainerInfo, rootfs: str) -> None:
    """The container's bind mounts (named volumes are binds of their data dir) whose target exists
    in its root; tmpfs mounts have no content once stopped, as with docker."""
    from composer.runtime.fs.rootfs import secure_join

    for m in info.spec.mounts:
        if m.type != "bind" or not os.path.exists(m.source):
            continue
        target = secure_join(rootfs, m.target)
        if os.path.isdir(m.source) != os.path.isdir(target) or not os.path.lexists(target):
            continue
        flags = sc.MS_BIND | sc.MS_REC
        sc.mount(m.source, target, None, flags)
        if m.read_only:
            sc.mount(None, target, None, flags | sc.MS_REMOUNT | sc.MS_RDONLY)
