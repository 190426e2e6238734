"""Files written from the host straight into a container's filesystem: no tar, cp or rm needed in
the image, no process started in the container.

A running container is reached through its PID 1's root (`/proc/<pid>/root`): the writes go
through its overlay mount, so copy-up, volumes mounted over the target and in-container inotify
watchers (node --watch, uvicorn --reload) all see them as a local write. Paths are resolved as the
container would (its symlinks followed inside its root, never out of it: composer.paths), and the
last component is never followed (O_NOFOLLOW). An existing regular file is rewritten in place, so
it keeps its inode as an editor's save does; a new file is written beside its target and renamed
over it, so it appears whole. New files and directories take the owner of the directory they land
in. A stopped container gets the deletions: in its upper directory, with a whiteout when an image
layer below has the path."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass

from composer.errors import ContainerError
from composer.paths import follow_links


@dataclass
class Counts:
    files: int = 0
    dirs: int = 0
    links: int = 0
    deleted: int = 0

    def add(self, other: "Counts") -> None:
        self.files += other.files
        self.dirs += other.dirs
        self.links += other.links
        self.deleted += other.deleted

    @property
    def total(self) -> int:
        return self.files + self.dirs + self.links + self.deleted


class ContainerFiles:
    """One container's filesystem as the host writes it. root: `/proc/<pid>/root` while it runs,
    else its upper directory (deletions only) with the image layers below it."""

    def __init__(self, root: str, *, running: bool, layers: tuple[str, ...] = ()) -> None:
        self.root, self.running, self.layers = root, running, layers
        self._tmp = 0

    @classmethod
    def of(cls, runtime, info) -> "ContainerFiles":
        if info.running and info.pid:
            return cls(f"/proc/{info.pid}/root", running=True)
        return cls(os.path.join(runtime.paths(info.id).data, "upper"), running=False, layers=tuple(info.spec.layers))

    # ------------------------------------------------------------ paths

    def _readlink(self, rel: str) -> str | None:
        try:
            return os.readlink(os.path.join(self.root, rel))
        except OSError:
            return None

    def host_path(self, target: str) -> str:
        """target (absolute, in the container) as a host path: its parents resolved inside the
        container's root, its last component as is."""
        parent, name = os.path.split(target.rstrip("/") or "/")
        if self.running:
            parts = follow_links(parent, self._readlink, too_many=lambda: ContainerError(
                f"too many levels of symbolic links in {target}"))
        else:
            parts = [p for p in parent.split("/") if p not in ("", ".")]
        return os.path.join(self.root, *parts, name)

    # ------------------------------------------------------------ writes

    def apply(self, source: str, target: str) -> Counts:
        """Make `target` in the container what `source` on the host is now (missing: deleted)."""
        dest = self.host_path(target)
        try:
            st = os.lstat(source)
        except FileNotFoundError:
            return self.delete(dest)
        if not self.running:
            return Counts()  # a stopped container gets the deletions only
        if stat.S_ISDIR(st.st_mode):
            return self._dir(dest, st)
        self._parents(dest)
        if stat.S_ISLNK(st.st_mode):
            self._replace_with(dest, lambda tmp: os.symlink(os.readlink(source), tmp))
            return Counts(links=1)
        if stat.S_ISREG(st.st_mode):
            self._file(source, dest, st)
            return Counts(files=1)
        return Counts()  # sockets, fifos, devices: not synced

    def delete(self, dest: str) -> Counts:
        if self.running:
            try:
                st = os.lstat(dest)
            except FileNotFoundError:
                return Counts()
            _remove(dest, st)
            return Counts(deleted=1)
        rel = os.path.relpath(dest, self.root)
        found = False
        try:
            _remove(dest, os.lstat(dest))
            found = True
        except FileNotFoundError:
            pass
        if any(os.path.lexists(os.path.join(layer, rel)) for layer in self.layers):
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.mknod(dest, stat.S_IFCHR | 0o000, os.makedev(0, 0))  # overlay's whiteout
            found = True
        return Counts(deleted=int(found))

    def _parents(self, dest: str) -> None:
        parent = os.path.dirname(dest)
        if os.path.isdir(parent):
            return
        self._parents(parent)
        try:
            st = os.lstat(parent)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(parent)  # a file where the host now has a directory
        except FileNotFoundError:
            pass
        os.mkdir(parent, 0o755)
        self._own_like_parent(parent)

    def _dir(self, dest: str, st: os.stat_result) -> Counts:
        self._parents(dest)
        try:
            cur = os.lstat(dest)
        except FileNotFoundError:
            cur = None
        if cur is not None and stat.S_ISDIR(cur.st_mode):
            if stat.S_IMODE(cur.st_mode) != stat.S_IMODE(st.st_mode):
                os.chmod(dest, stat.S_IMODE(st.st_mode))
            return Counts()
        if cur is not None:
            _remove(dest, cur)
        os.mkdir(dest, stat.S_IMODE(st.st_mode))
        os.chmod(dest, stat.S_IMODE(st.st_mode))  # past the umask
        self._own_like_parent(dest)
        return Counts(dirs=1)

    def _file(self, source: str, dest: str, st: os.stat_result) -> None:
        mode = stat.S_IMODE(st.st_mode)
        src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            try:
                fd = os.open(dest, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError as err:
                if err.errno not in (errno.ENOENT, errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EACCES):
                    raise
                fd = -1
            if fd >= 0 and not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                fd = -1
            if fd >= 0:  # in place: the inode stays, watchers inside keep theirs
                try:
                    size = _copy(src, fd)
                    os.ftruncate(fd, size)
                    if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
                        os.fchmod(fd, mode)
                finally:
                    os.close(fd)
                return

            def write(tmp: str) -> None:
                out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    _copy(src, out)
                    os.fchmod(out, mode)
                finally:
                    os.close(out)

            self._replace_with(dest, write)
        finally:
            os.close(src)

    def _replace_with(self, dest: str, make) -> None:
        """make(tmp) creates the new entry beside dest; it is renamed over dest (a directory
        there is removed first: rename cannot replace one with a file)."""
        self._tmp += 1
        tmp = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.cmp-{os.getpid()}-{self._tmp}")
        make(tmp)
        try:
            self._own_like_parent(tmp)
            try:
                os.rename(tmp, dest)
            except IsADirectoryError:
                shutil.rmtree(dest)
                os.rename(tmp, dest)
            except OSError as err:
                if err.errno != errno.ENOTEMPTY and err.errno != errno.EEXIST:
                    raise
                shutil.rmtree(dest)
                os.rename(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    @staticmethod
    def _own_like_parent(path: str) -> None:
        p = os.lstat(os.path.dirname(path))
        try:
            os.lchown(path, p.st_uid, p.st_gid)
        except OSError:
            pass


def _remove(path: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy(src: int, out: int) -> int:
    """Copy all of src (from its start) to out (from its start); the bytes copied."""
    offset = 0
    os.lseek(out, 0, os.SEEK_SET)
    while True:
        n = os.sendfile(out, src, offset, 1 << 20)
        if n == 0:
            return offset
        offset += n
