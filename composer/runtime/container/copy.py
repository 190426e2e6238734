"""`cp` and `export`: files between a container and the host as `docker cp` copies them, and a
container's file system as one tar, as `docker export` writes it (runtime.container.rootview gets
into the container; a tar stream crosses between the two sides).

docker cp's rules, applied on the receiving side (the host for CONTAINER:SRC DEST, the container
for SRC CONTAINER:DEST), where DEST is looked at:
- SRC a file: DEST missing -> the file is written as DEST (DEST ending in / -> error); DEST a file ->
  overwritten; DEST a directory -> DEST/basename(SRC).
- SRC a directory: DEST missing -> made, with SRC's content; DEST a file -> error; DEST a directory
  -> DEST/basename(SRC), or SRC's content into DEST when SRC ends in `/.`.
- `-` as DEST writes the tar of SRC to stdout; `-` as SRC reads a tar from stdin into the DEST dir.
Ownership: files copied into a container belong to root, out of it to the caller (-a/--archive keeps
the owners in the archive); modes are kept. -L/--follow-link follows SRC when it is a symlink."""

from __future__ import annotations

import os
import tarfile

from composer.errors import ConflictError, ContainerError, NotFoundError
from composer.runtime.container.rootview import ChildError, run_inside

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

    from composer.runtime.container.containers import ContainerInfo, Runtime

_TOP = "cmp-cp-src"  # the source's name inside the stream; the receiving side renames it
_CHUNK = 1 << 16
_KINDS = {"notfound": NotFoundError, "conflict": ConflictError}


def copy_out(rt: Runtime, info: ContainerInfo, src: str, dest: str, *, archive: bool = False,
             follow: bool = False, stdout: BinaryIO | None = None) -> None:
    """CONTAINER:src -> host dest ("-": a tar of src to stdout)."""
    r, w = os.pipe()
    raw = dest == "-"
    name = os.path.basename(_clean(src)) or "."

    def work() -> None:
        os.close(r)
        with os.fdopen(w, "wb") as out:
            write_tar(out, src, follow, name if raw else _TOP)

    def here() -> None:
        with os.fdopen(r, "rb") as stream:
            if raw:
                _copy(stream, stdout)
            else:
                owner = None if archive else (os.getuid(), os.getgid())
                try:
                    receive(stream, dest, name, contents=_contents(src), owner=owner)
                except ChildError as e:
                    raise _KINDS.get(e.kind, ContainerError)(str(e)) from None
            while stream.read(_CHUNK):  # drain: the child must not block on a full pipe
                pass

    run_inside(rt, info, work, here, child_fds=(w,))


def copy_in(rt: Runtime, info: ContainerInfo, src: str, dest: str, *, archive: bool = False,
            follow: bool = False, stdin: BinaryIO | None = None) -> None:
    """host src ("-": a tar on stdin) -> CONTAINER:dest."""
    if src != "-" and not os.path.lexists(src):
        raise NotFoundError(f"no such file or directory: {src}")
    r, w = os.pipe()
    name = os.path.basename(_clean(os.path.abspath(src) if src != "-" else src)) or "."

    def work() -> None:
        os.close(w)
        with os.fdopen(r, "rb") as stream:
            if src == "-":
                untar_into(stream, dest, owner=None if archive else (0, 0))
            else:
                receive(stream, dest, name, contents=_contents(src), owner=None if archive else (0, 0))

    def here() -> None:
        with os.fdopen(w, "wb") as out:
            if src == "-":
                _copy(stdin, out)
            else:
                write_tar(out, src, follow, _TOP)

    run_inside(rt, info, work, here, child_fds=(r,))


def export(rt: Runtime, info: ContainerInfo, out: BinaryIO) -> None:
    """The container's root file system (its image layers and changes, no volumes or mounts) as a tar."""
    r, w = os.pipe()

    def work() -> None:
        os.close(r)
        with os.fdopen(w, "wb") as f, tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for entry in sorted(os.listdir("/")):
                tar.add(entry, recursive=True)

    def here() -> None:
        with os.fdopen(r, "rb") as stream:
            _copy(stream, out)

    run_inside(rt, info, work, here, mounts=False, child_fds=(w,))


# ------------------------------------------------------------------ the two sides

def write_tar(out: BinaryIO, src: str, follow: bool, top: str) -> None:
    """src (a file or a tree) as a tar stream whose first member is named `top`."""
    path = _clean(src)
    try:
        if follow:
            path = os.path.realpath(path)
        os.lstat(path)
    except FileNotFoundError:
        raise ChildError("notfound", f"no such file or directory: {src}") from None
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(path, arcname=top, recursive=True)


def receive(stream: BinaryIO, dest: str, name: str, *, contents: bool, owner: tuple[int, int] | None) -> None:
    """Extract a stream written by write_tar at dest by docker cp's rules (module docstring)."""
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        first = tar.next()
        if first is None:
            raise ChildError("error", "empty copy stream")
        target = _target(dest, name, first.isdir(), contents)
        base, name = os.path.split(target.rstrip("/") or "/")
        member = first
        while member is not None:
            rel = member.name[len(_TOP):].lstrip("/")
            if member.name != _TOP and not member.name.startswith(_TOP + "/"):
                raise ChildError("error", f"unexpected name in the copy stream: {member.name}")
            member.name = os.path.join(name, rel) if rel else name
            if member.islnk():
                link = member.linkname[len(_TOP):].lstrip("/")
                member.linkname = os.path.join(name, link) if link else name
            if member is first and member.isdir() and os.path.isdir(target):
                member = tar.next()  # keep the existing directory (and its mode) as cp does
                continue
            _extract(tar, member, base, owner)
            member = tar.next()


def untar_into(stream: BinaryIO, dest: str, owner: tuple[int, int] | None) -> None:
    """`cp - CONTAINER:DEST`: a tar from stdin extracted into the directory DEST."""
    if not os.path.isdir(dest):
        raise ChildError("notfound", f"destination directory {dest} must exist")
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            _extract(tar, member, dest, owner)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, base: str, owner: tuple[int, int] | None) -> None:
    if owner is not None:
        member.uid, member.gid = owner
        member.uname = member.gname = ""
    if not member.isdir() and os.path.isdir(os.path.join(base, member.name)) and \
            not os.path.islink(os.path.join(base, member.name)):
        raise ChildError("conflict", f"cannot overwrite directory {os.path.join(base, member.name)} "
                                     "with a non-directory")
    # 'tar' filter: no absolute names, nothing written outside base, no setuid bits from a stream
    if hasattr(tarfile, "tar_filter"):
        tar.extract(member, base, set_attrs=True, numeric_owner=True, filter="tar")
    else:  # Python < 3.11.4 (Debian 12 ships 3.11.2): the same rules, by hand
        tar.extract(_tar_filter(member, base), base, set_attrs=True, numeric_owner=True)


def _tar_filter(member: tarfile.TarInfo, base: str) -> tarfile.TarInfo:
    """tarfile.tar_filter of Python >= 3.11.4: leading slashes dropped, nothing outside base (names
    nor links), setuid/setgid/sticky and group/other write bits cleared."""
    import stat

    root = os.path.realpath(base)

    def inside(path: str) -> bool:
        return os.path.commonpath([root, os.path.realpath(path)]) == root

    name = member.name.lstrip("/" + os.sep)
    if not inside(os.path.join(root, name)):
        raise ChildError("unsafe", f"{member.name!r} would be written outside {base}")
    if member.issym() or member.islnk():
        if os.path.isabs(member.linkname):
            raise ChildError("unsafe", f"{member.name!r} links to the absolute path {member.linkname!r}")
        target = (os.path.join(root, os.path.dirname(name), member.linkname) if member.issym()
                  else os.path.join(root, member.linkname))
        if not inside(target):
            raise ChildError("unsafe", f"{member.name!r} links outside {base}")
    mode = member.mode
    if mode is not None:
        mode &= ~(stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH)
    member.name = name  # our own TarInfo, read from the stream: changed in place
    if mode is not None:
        member.mode = mode
    return member


def _target(dest: str, name: str, src_is_dir: bool, contents: bool) -> str:
    """Where the source goes, by docker cp's rules; raises ChildError on a refused combination."""
    if os.path.isdir(dest):
        if src_is_dir and contents:
            return dest
        return os.path.join(dest, name)
    if os.path.lexists(dest):
        if src_is_dir:
            raise ChildError("conflict", f"cannot copy a directory to a file: {dest}")
        return dest
    if dest.endswith("/") and not src_is_dir:
        raise ChildError("notfound", f"destination directory {dest} does not exist")
    parent = os.path.dirname(dest.rstrip("/")) or "/"
    if not os.path.isdir(parent):
        raise ChildError("notfound", f"no such directory: {parent}")
    return dest


def _clean(path: str) -> str:
    """SRC without a trailing `/.` (which only says "the content of")."""
    if path.endswith("/."):
        path = path[:-2] or "/"
    return path.rstrip("/") or "/"


def _contents(src: str) -> bool:
    return src.endswith("/.") or src == "."


# ------------------------------------------------------------------ plumbing

def _copy(src: BinaryIO, dst: BinaryIO | None) -> None:
    if dst is None:
        import sys

        dst = sys.stdout.buffer
    while chunk := src.read(_CHUNK):
        dst.write(chunk)
    dst.flush()
