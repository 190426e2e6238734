"""Layer tars the builder makes: the diff a RUN left in its container's overlay upper dir (overlay's
whiteouts turned back into OCI ones), and the files a COPY/ADD/WORKDIR adds. Owners are numeric;
entries are sorted, so the same tree gives the same bytes (and the same diff_id)."""

from __future__ import annotations

import os
import stat
import tarfile
from dataclasses import dataclass
from typing import BinaryIO, Callable

from composer.errors import ImageError
from composer.images.dockerfile.layerview import OPAQUE_XATTR, is_whiteout

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
# Left in the upper dir by the runtime, not by the RUN: mount points it had to create.
_MOUNT_POINTS = ("etc/hosts", "etc/hostname", "etc/resolv.conf")
_MOUNT_DIRS = ("proc", "sys", "dev")
_UNSUPPORTED_XATTRS = ("trusted.overlay.redirect", "trusted.overlay.metacopy")
_CHUNK = 1 << 20


def _info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    return info


def _capability(path: str, info: tarfile.TarInfo) -> None:
    try:
        value = os.getxattr(path, "security.capability", follow_symlinks=False)
    except OSError:
        return
    info.pax_headers = {"SCHILY.xattr.security.capability": value.decode("utf-8", "surrogateescape")}


def add_path(tar: tarfile.TarFile, name: str, path: str, st: os.stat_result,
             hardlinks: dict[tuple[int, int], str] | None = None, *, fd_opener: Callable[[], BinaryIO] | None = None,
             uid: int | None = None, gid: int | None = None, mode: int | None = None) -> None:
    """One host file-system entry (dir, file, symlink, fifo) as `name`; owner/mode overridable."""
    info = _info(name, st)
    if uid is not None:
        info.uid, info.gid = uid, gid if gid is not None else uid
    if mode is not None:
        info.mode = mode
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
        tar.addfile(info)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    elif stat.S_ISREG(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if hardlinks is not None and st.st_nlink > 1 and key in hardlinks:
            info.type, info.linkname = tarfile.LNKTYPE, hardlinks[key]
            tar.addfile(info)
            return
        if hardlinks is not None and st.st_nlink > 1:
            hardlinks[key] = name
        _capability(path, info)
        f = fd_opener() if fd_opener else open(path, "rb", buffering=0)
        with f:
            fst = os.fstat(f.fileno())
            if not stat.S_ISREG(fst.st_mode):
                raise ImageError(f"{name} changed while it was being read")
            info.size = fst.st_size
            tar.addfile(info, _Exact(f, info.size))
    else:
        raise ImageError(f"cannot put {name} in a layer: device nodes and sockets are not allowed")


class _Exact:
    """Reads exactly `size` bytes (a file that grows or shrinks meanwhile cannot corrupt the tar)."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.left = f, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n) if n else b""
        if len(data) < n:
            data += bytes(n - len(data))
        self.left -= len(data)
        return data


def upper_to_tar(upper: str, out: BinaryIO, lower_has: Callable[[str], bool]) -> int:
    """Write the OCI layer tar of an overlay upper dir; returns the number of entries.
    lower_has(rel) tells whether the image below already had rel (mount points it lacked are skipped)."""
    count = 0
    hardlinks: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        stack = [""]
        while stack:
            rel = stack.pop()
            path = os.path.join(upper, rel) if rel else upper
            names = sorted(os.listdir(path), reverse=True)
            for name in names:
                child = f"{rel}/{name}" if rel else name
                cpath = os.path.join(upper, child)
                st = os.lstat(cpath)
                if _skip(child, st, lower_has):
                    continue
                for key in _UNSUPPORTED_XATTRS:
                    try:
                        os.getxattr(cpath, key, follow_symlinks=False)
                    except OSError:
                        continue
                    raise ImageError("the overlay upper dir uses redirect_dir/metacopy, which the builder cannot "
                                     "read back", hint="load the overlay module with redirect_dir=off metacopy=off")
                if is_whiteout(st):
                    parent = os.path.dirname(child)
                    wh = tarfile.TarInfo(f"{parent}/{WHITEOUT}{name}" if parent else WHITEOUT + name)
                    wh.mtime = int(st.st_mtime)
                    tar.addfile(wh)
                    count += 1
                    continue
                add_path(tar, child, cpath, st, hardlinks)
                count += 1
                if stat.S_ISDIR(st.st_mode):
                    if _is_opaque(cpath):
                        marker = tarfile.TarInfo(f"{child}/{OPAQUE}")
                        marker.mtime = int(st.st_mtime)
                        tar.addfile(marker)
                    stack.append(child)
    return count


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _skip(rel: str, st: os.stat_result, lower_has: Callable[[str], bool]) -> bool:
    if rel in _MOUNT_POINTS and stat.S_ISREG(st.st_mode) and st.st_size == 0:
        return True
    if rel in _MOUNT_DIRS and stat.S_ISDIR(st.st_mode) and not lower_has(rel):
        return True
    return False


@dataclass(frozen=True)
class DirMeta:
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    mtime: int = 0


def add_dir(tar: tarfile.TarFile, name: str, meta: DirMeta) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, meta.mode, meta.uid, meta.gid, meta.mtime
    tar.addfile(info)


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0,
              mtime: int = 0) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, gid, mtime
    tar.addfile(info, io.BytesIO(data))
