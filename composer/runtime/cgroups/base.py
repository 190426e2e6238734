"""cgroups, v1 and v2 behind one interface.

`detect()` (cgroups/detect.py) reads /proc/self/mountinfo and /proc/self/cgroup once and returns
a driver for the host's cgroup version: `V1Driver` (cgroups/v1.py, one directory per hierarchy)
or `V2Driver` (cgroups/v2.py, one unified directory). Container cgroups are
`<base>/composer/<name>`, where <base> is the creating process's own cgroup (v1; v2: see
cgroups/v2.py for why it may be an ancestor). The directories a container got are kept in
`CgroupPaths`, which is JSON-able so that other commands (from another shell, another own cgroup)
can find them through state.json.

This module holds what both versions share: the models, small file helpers, removal, the abstract
driver and the entry points (default_driver, driver_for, find_leftovers). Detection and the /proc
parsing are cgroups/detect.py; docker's validation of `Resources` is cgroups/limits.py."""

from __future__ import annotations

import errno
import os
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable

from composer.errors import ComposerError, ContainerError, HostError
from composer.runtime.spec import Resources

COMPOSER_DIR = "composer"


# ---------------------------------------------------------------- models


@dataclass(frozen=True)
class CgroupPaths:
    """Where one container's cgroup lives. v1: one (controllers, dir) per hierarchy, controllers
    as the hierarchy names them ("memory", "cpu,cpuacct"); v2: a single ("", dir)."""

    version: int
    dirs: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "dirs": [[c, d] for c, d in self.dirs]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CgroupPaths":
        return cls(version=int(d["version"]), dirs=tuple((str(c), str(p)) for c, p in d["dirs"]))

    def dir_for(self, controller: str) -> str | None:
        """The directory of the hierarchy carrying `controller` (v2: the one dir)."""
        for ctrls, path in self.dirs:
            if self.version == 2 or controller in ctrls.split(","):
                return path
        return None


@dataclass(frozen=True)
class CgroupStats:
    """A container's resource usage, read from its cgroup."""

    memory_bytes: int | None
    memory_limit: int | None
    cpu_ns: int | None
    pids_current: int | None
    # what docker's stats take off memory usage (reclaimable page cache): v1 total_inactive_file,
    # v2 inactive_file; and the bytes read and written on block devices (v1 blkio, v2 io.stat)
    memory_inactive_file: int = 0
    block_read: int | None = None
    block_write: int | None = None


# ---------------------------------------------------------------- file helpers


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def write_file(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read_file(path: str) -> str | None:
    try:
        return _read(path).strip()
    except (FileNotFoundError, NotADirectoryError):
        return None


def read_int(path: str) -> int | None:
    text = read_file(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def read_keyed(path: str, key: str) -> int | None:
    """The value of 'key N' in a flat-keyed file (memory.oom_control, memory.events, cpu.stat)."""
    text = read_file(path)
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            try:
                return int(v)
            except ValueError:
                return None
    return None


def read_io_bytes(path: str) -> tuple[int, int] | None:
    """(read, written) bytes summed over devices: v1 blkio.throttle.io_service_bytes_recursive
    ("8:0 Read N" lines) or v2 io.stat ("8:0 rbytes=N wbytes=N ..." lines)."""
    text = read_file(path)
    if text is None:
        return None
    read = written = 0
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[1] in ("Read", "Write") and words[2].isdigit():
            if words[1] == "Read":
                read += int(words[2])
            else:
                written += int(words[2])
        for word in words[1:]:
            key, _, value = word.partition("=")
            if key == "rbytes" and value.isdigit():
                read += int(value)
            elif key == "wbytes" and value.isdigit():
                written += int(value)
    return read, written


def read_pids(dir_: str) -> list[int]:
    text = read_file(os.path.join(dir_, "cgroup.procs")) or ""
    return [int(x) for x in text.split()]


def mkdir_new(path: str) -> None:
    try:
        os.mkdir(path)
    except FileExistsError:
        raise ContainerError(f"cgroup {path} already exists (a container with this name is running?)") from None
    except OSError as e:
        raise host_error(path, e) from None


def mkdir_base(path: str) -> bool:
    """mkdir that tolerates an existing dir; True if this call made it."""
    try:
        os.mkdir(path)
        return True
    except FileExistsError:
        return False
    except OSError as e:
        raise host_error(path, e) from None


def host_error(path: str, e: OSError) -> ComposerError:
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return HostError(f"cannot create cgroup {path}: {e.strerror} (composer needs root and a writable cgroup fs)")
    if e.errno == errno.ENOENT:
        return HostError(f"cannot create cgroup {path}: the cgroup hierarchy is not mounted there")
    return ContainerError(f"cannot create cgroup {path}: {e.strerror}")


def kill_pids(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_until(pred, timeout: float) -> bool:
    """Poll pred() with a short back-off; most waits here end within a millisecond."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def remove_dir(path: str, timeout: float = 2.0) -> None:
    """rmdir one cgroup dir (never rm -r). EBUSY while members live: thaw, SIGKILL them (cgroup.kill
    on v2), retry until `timeout`. A missing dir is fine. Works for either version."""
    try:
        os.rmdir(path)
        return
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise ContainerError(f"cannot remove cgroup {path}: {e.strerror}") from None

    def gone() -> bool:
        _kill_dir(path)
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise ContainerError(f"cannot remove cgroup {path}: {e.strerror}") from None
            return False

    if not wait_until(gone, timeout):
        raise ContainerError(f"cannot remove cgroup {path}: processes still in it ({read_pids(path)})")


def _kill_dir(path: str) -> None:
    """SIGKILL everything in one cgroup dir, whatever its version (used when we know no driver)."""
    for sub in _subdirs(path):  # v2 leftover children (rare): empty them first
        remove_dir(sub)
    if os.path.exists(os.path.join(path, "cgroup.kill")):
        try:
            write_file(os.path.join(path, "cgroup.kill"), "1")
            return
        except OSError:
            pass
    if read_file(os.path.join(path, "freezer.state")) not in (None, "THAWED"):
        try:
            write_file(os.path.join(path, "freezer.state"), "THAWED")
        except OSError:
            pass
    if read_file(os.path.join(path, "cgroup.freeze")) == "1":
        try:
            write_file(os.path.join(path, "cgroup.freeze"), "0")
        except OSError:
            pass
    kill_pids(read_pids(path), signal.SIGKILL)


def _subdirs(path: str) -> list[str]:
    try:
        return [e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


# ---------------------------------------------------------------- the driver interface


# Called once, after this process has first moved a process into a container's cgroup: the CLI
# ends its start-up warm-up of the kernel's cgroup-move path there (composer/startup.py).
after_first_move: list[Callable[[], None]] = []


class CgroupDriver(ABC):
    """What the runtime calls. Subclasses: V1Driver, V2Driver. (abc costs nothing here: the
    interpreter imports it at start-up, even with -I -S.)"""

    version: int = 0
    manager = "cgroupfs"  # who makes the containers' cgroups: composer itself, or systemd (cgroups/systemd.py)

    @abstractmethod
    def base_dirs(self) -> list[str]:
        """The `composer` directories this driver creates container cgroups in."""

    @abstractmethod
    def create(self, name: str, resources: Resources, supervisor: int | None = None) -> CgroupPaths:
        """Make the container's cgroup with its limits and device policy, before PID 1 joins it.
        supervisor: the container's monitor (the systemd driver starts its scope with it; cgroupfs
        drivers leave it where it is)."""

    def attach(self, paths: CgroupPaths, pid: int) -> None:
        for _, d in paths.dirs:
            try:
                write_file(os.path.join(d, "cgroup.procs"), str(pid))
            except OSError as e:
                raise ContainerError(f"cannot move process {pid} into cgroup {d}: {e.strerror}") from None
        while after_first_move:
            after_first_move.pop()()

    def layout(self) -> dict[str, str]:
        """Where containers' cgroups go on this host and who manages them (`composer system info`)."""
        return {"cgroup_version": str(self.version), "manager": self.manager,
                "containers": ", ".join(os.path.join(d, "<id>") for d in self.base_dirs()),
                "delegation": "none: composer makes the cgroups below its own"}

    @abstractmethod
    def oom_kill_count(self, paths: CgroupPaths) -> int:
        ...

    @abstractmethod
    def memory_limit(self, paths: CgroupPaths) -> int | None:
        ...

    @abstractmethod
    def freeze(self, paths: CgroupPaths) -> None:
        ...

    @abstractmethod
    def thaw(self, paths: CgroupPaths) -> None:
        ...

    @abstractmethod
    def is_frozen(self, paths: CgroupPaths) -> bool:
        ...

    def pids(self, paths: CgroupPaths) -> list[int]:
        found: set[int] = set()
        for _, d in paths.dirs:
            found.update(read_pids(d))
        return sorted(found)

    @abstractmethod
    def kill_all(self, paths: CgroupPaths, sig: int = signal.SIGKILL) -> None:
        ...

    def remove(self, paths: CgroupPaths) -> None:
        errors = []
        for _, d in paths.dirs:
            try:
                remove_dir(d)
            except ContainerError as e:
                errors.append(str(e))
        if errors:
            raise ContainerError("; ".join(errors))

    @abstractmethod
    def stats(self, paths: CgroupPaths) -> CgroupStats:
        ...

    def find_leftovers(self, name_prefix: str = "") -> list[str]:
        """Container cgroup dirs under our composer dirs (all hierarchies), for gc after a crash."""
        out = []
        for base in self.base_dirs():
            out.extend(d for d in _subdirs(base) if os.path.basename(d).startswith(name_prefix))
        return sorted(out)

    def remove_dir(self, path: str) -> None:
        remove_dir(path)

    def _undo(self, made: list[str]) -> None:
        """Remove what a failed create() made, deepest first; best effort (it is empty)."""
        for d in reversed(made):
            try:
                os.rmdir(d)
            except OSError:
                pass


_DEFAULT: CgroupDriver | None = None


def default_driver() -> CgroupDriver:
    """detect() once per process: mountinfo does not change under a running composer."""
    global _DEFAULT
    if _DEFAULT is None:
        from composer.runtime.cgroups.detect import detect

        _DEFAULT = detect()
    return _DEFAULT


def driver_for(paths: CgroupPaths) -> CgroupDriver:
    """A driver for an existing container's cgroup, without reading mountinfo: every method that
    takes `paths` works on it (not create/find_leftovers). For monitors and other shells."""
    if paths.version == 2:
        from composer.runtime.cgroups.v2 import V2Driver

        return V2Driver("", "")
    from composer.runtime.cgroups.v1 import V1Driver

    return V1Driver([])


def find_leftovers(name_prefix: str = "") -> list[str]:
    return default_driver().find_leftovers(name_prefix)

