"""COPY and ADD: sources (build context, another stage or image, heredocs) -> a plan of layer entries
with docker's directory semantics, a content hash of that plan (the cache key's input), and the layer
tar written from it.

docker's rules kept here: a directory source copies its contents; several sources (or a glob) need a
directory destination ending in `/`; a destination that ends in `/` or is an existing directory
receives sources by their base name; missing parents are made 0755 (owned by --chown's user when
given); existing parents keep their metadata (written into the layer so overlay shows them as they
were); context files become 0:0 unless --chown; ADD extracts local tar archives; remote URLs are
refused."""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass, field
from typing import BinaryIO

from composer.errors import ImageError
from composer.images.dockerfile.context import BuildContext
from composer.images.dockerfile.layertar import DirMeta, add_bytes, add_dir, add_path
from composer.images.dockerfile.layerview import LayerView

_TAR_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


@dataclass
class Entry:
    name: str  # layer-relative path
    kind: str  # dir | path (a host file-system entry) | bytes | tar
    st: os.stat_result | None = None
    path: str = ""  # host path (path, tar)
    data: bytes = b""
    uid: int | None = None
    gid: int | None = None
    mode: int | None = None
    meta: DirMeta | None = None
    opener: object = None  # context files: BuildContext-checked fd opener


@dataclass
class CopyPlan:
    entries: list[Entry] = field(default_factory=list)
    _names: set[str] = field(default_factory=set)

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)
        self._names.add(entry.name)

    def has(self, name: str) -> bool:
        return name in self._names

    def digest(self) -> str:
        """Content hash: names, types, modes, owners, link targets and file contents (not mtimes)."""
        h = hashlib.sha256()
        for e in self.entries:
            h.update(f"{e.kind}\0{e.name}\0{e.uid}\0{e.gid}\0{e.mode}\0".encode("utf-8", "surrogateescape"))
            if e.meta is not None:
                h.update(f"{e.meta.mode}:{e.meta.uid}:{e.meta.gid}\0".encode())
            if e.kind == "bytes":
                h.update(hashlib.sha256(e.data).digest())
            elif e.st is not None:
                st = e.st
                h.update(f"{stat.S_IFMT(st.st_mode)}:{stat.S_IMODE(st.st_mode)}:{st.st_uid}:{st.st_gid}\0".encode())
                if stat.S_ISLNK(st.st_mode):
                    h.update(os.readlink(e.path).encode("utf-8", "surrogateescape"))
                elif stat.S_ISREG(st.st_mode):
                    with (e.opener() if e.opener else open(e.path, "rb")) as f:
                        h.update(_file_sha(f))
            h.update(b"\n")
        return h.hexdigest()

    def write(self, out: BinaryIO) -> None:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            hardlinks: dict[tuple[int, int], str] = {}
            for e in self.entries:
                if e.kind == "dir":
                    add_dir(tar, e.name, e.meta or DirMeta())
                elif e.kind == "bytes":
                    add_bytes(tar, e.name, e.data, mode=e.mode if e.mode is not None else 0o644,
                              uid=e.uid or 0, gid=e.gid or 0)
                elif e.kind == "tar":
                    _copy_archive(tar, e)
                else:
                    assert e.st is not None
                    add_path(tar, e.name, e.path, e.st, hardlinks, fd_opener=e.opener,  # type: ignore[arg-type]
                             uid=e.uid, gid=e.gid, mode=e.mode)


def _file_sha(f: BinaryIO) -> bytes:
    h = hashlib.sha256()
    while chunk := f.read(1 << 20):
        h.update(chunk)
    return h.digest()


@dataclass(frozen=True)
class CopyRequest:
    what: str  # COPY | ADD
    sources: tuple[str, ...]  # substituted
    dest: str  # substituted, absolute
    chown: tuple[int, int] | None = None
    chmod: int | None = None
    heredocs: tuple[tuple[str, bytes], ...] = ()  # (name, content) used as sources


def plan_copy(req: CopyRequest, target: LayerView, *, context: BuildContext | None = None,
              source_view: LayerView | None = None) -> CopyPlan:
    """What the COPY/ADD writes. Exactly one of context / source_view is the source of files."""
    plan = CopyPlan()
    heredoc_names = dict(req.heredocs)
    matched: list[tuple[str, object]] = []  # (source name, Source | (rel, host, st) | bytes)
    for src in req.sources:
        if req.what == "ADD" and ("://" in src or src.startswith("git@")):
            raise ImageError(f"ADD {src}: remote sources are not supported",
                             hint="download it in a RUN step, or put it in the build context")
        if src in heredoc_names:
            matched.append((src, heredoc_names[src]))
        elif source_view is not None:
            matched.extend((m, m) for m in _view_match(source_view, src, req.what))
        else:
            assert context is not None
            matched.extend((s.rel, s) for s in context.match(src, req.what))
    many = len(matched) > 1
    dest = req.dest
    if many and not dest.endswith("/"):
        raise ImageError(f"{req.what} with more than one source file, the destination must be a directory "
                         f"and end with a /")
    dest_rel = target.resolve(dest.strip("/"), follow_last=True) if dest.strip("/") else ""
    hit = target.lookup(dest_rel) if dest_rel else None
    dest_is_dir = dest.endswith("/") or many or (hit is not None and stat.S_ISDIR(hit[1].st_mode))
    uid, gid = req.chown if req.chown else (None, None)
    for name, src in matched:
        if isinstance(src, bytes):
            to = posixpath.join(dest_rel, name) if dest_is_dir else dest_rel
            _parents(plan, target, to, req.chown)
            plan.add(Entry(to, "bytes", data=src, uid=uid or 0, gid=gid or 0, mode=req.chmod))
            continue
        if source_view is not None:
            _plan_from_view(plan, target, source_view, src, dest_rel, dest_is_dir, req)  # type: ignore[arg-type]
            continue
        assert context is not None
        _plan_from_context(plan, target, context, src, dest_rel, dest_is_dir, req)
    return plan


def _plan_from_context(plan, target, context, src, dest_rel, dest_is_dir, req) -> None:
    owner_uid, owner_gid = req.chown if req.chown else (0, 0)
    if stat.S_ISDIR(src.st.st_mode):
        base = dest_rel
        _parents(plan, target, posixpath.join(base, "x") if base else "x", req.chown)
        for rel, st in context.walk(src.rel):
            sub = rel[len(src.rel):].lstrip("/") if src.rel else rel
            name = posixpath.join(base, sub) if sub else base
            if not name:
                continue
            _add_fs(plan, name, context.abs(rel), st, owner_uid, owner_gid, req.chmod,
                    opener=_opener(context, rel))
        return
    if req.what == "ADD" and stat.S_ISREG(src.st.st_mode) and _is_archive(context, src.rel):
        _parents(plan, target, posixpath.join(dest_rel, "x") if dest_rel else "x", req.chown)
        plan.add(Entry(dest_rel, "tar", st=src.st, path=src.path, opener=_opener(context, src.rel)))
        return
    to = posixpath.join(dest_rel, posixpath.basename(src.rel)) if dest_is_dir else dest_rel
    if not to:
        raise ImageError(f"{req.what}: cannot copy a file onto /")
    _parents(plan, target, to, req.chown)
    _add_fs(plan, to, src.path, src.st, owner_uid, owner_gid, req.chmod, opener=_opener(context, src.rel))


def _plan_from_view(plan, target, view, rel, dest_rel, dest_is_dir, req) -> None:
    hit = view.lookup(rel)
    assert hit is not None
    uid, gid = req.chown if req.chown else (None, None)
    if stat.S_ISDIR(hit[1].st_mode):
        _parents(plan, target, posixpath.join(dest_rel, "x") if dest_rel else "x", req.chown)
        for sub_rel, path, st in view.walk(rel):
            sub = sub_rel[len(rel):].lstrip("/") if rel else sub_rel
            name = posixpath.join(dest_rel, sub) if sub else dest_rel
            if name:
                _add_fs(plan, name, path, st, uid, gid, req.chmod)
        return
    to = posixpath.join(dest_rel, posixpath.basename(rel)) if dest_is_dir else dest_rel
    _parents(plan, target, to, req.chown)
    _add_fs(plan, to, hit[0], hit[1], uid, gid, req.chmod)


def _add_fs(plan: CopyPlan, name: str, path: str, st: os.stat_result, uid, gid, chmod, opener=None) -> None:
    if stat.S_ISDIR(st.st_mode):
        meta = DirMeta(chmod if chmod is not None else stat.S_IMODE(st.st_mode),
                       st.st_uid if uid is None else uid, st.st_gid if gid is None else gid, int(st.st_mtime))
        if not plan.has(name):
            plan.add(Entry(name, "dir", meta=meta))
        return
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise ImageError(f"cannot copy {name}: only files, directories and symlinks can be copied")
    mode = chmod if chmod is not None and not stat.S_ISLNK(st.st_mode) else None
    plan.add(Entry(name, "path", st=st, path=path, uid=uid, gid=gid, mode=mode, opener=opener))


def _parents(plan: CopyPlan, target: LayerView, rel: str, chown: tuple[int, int] | None) -> None:
    """Dir entries for every ancestor of rel: existing ones as the image has them, new ones 0755."""
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        name = "/".join(parts[:i])
        if plan.has(name):
            continue
        hit = target.lookup(name)
        if hit is not None and stat.S_ISDIR(hit[1].st_mode):
            st = hit[1]
            meta = DirMeta(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime))
        elif hit is not None:
            raise ImageError(f"cannot copy to /{rel}: /{name} is not a directory in the image")
        else:
            meta = DirMeta(0o755, *(chown or (0, 0)))
        plan.add(Entry(name, "dir", meta=meta))


def _view_match(view: LayerView, pattern: str, what: str) -> list[str]:
    import fnmatch

    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageError(f"{what} failed: forbidden path: {pattern}")
    found = [""]
    for part in parts:
        nxt = []
        for base in found:
            base = view.resolve(base) if base else ""
            if set("*?[") & set(part):
                nxt.extend(f"{base}/{n}" if base else n for n in view.listdir(base) if fnmatch.fnmatchcase(n, part))
            else:
                nxt.append(f"{base}/{part}" if base else part)
        found = nxt
    out = []
    for rel in found:
        real = view.resolve(rel)
        if view.lookup(real) is not None:
            out.append(real)
    if not out:
        raise ImageError(f"{what} failed: {pattern}: not found in the source image or stage")
    return out


def _opener(context: BuildContext, rel: str):
    return lambda: open(context.open(rel), "rb", buffering=0)


def _is_archive(context: BuildContext, rel: str) -> bool:
    with open(context.open(rel), "rb") as f:
        head = f.read(512)
    if head.startswith(_TAR_MAGIC):
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


def _copy_archive(tar: tarfile.TarFile, e: Entry) -> None:
    """ADD of a local archive: its members below e.name. Hostile names are refused here (and again
    by the layer extraction)."""
    with (e.opener() if e.opener else open(e.path, "rb")) as raw:  # type: ignore[operator]
        try:
            src = tarfile.open(fileobj=raw, mode="r|*")
        except tarfile.TarError:
            raise ImageError(f"ADD: {e.path} is not a readable archive") from None
        with src:
            for m in src:
                parts = [p for p in m.name.split("/") if p not in ("", ".")]
                if m.name.startswith("/") or ".." in parts:
                    raise ImageError(f"ADD: archive member {m.name!r} leaves the destination")
                if not parts:
                    continue
                m.name = posixpath.join(e.name, *parts) if e.name else "/".join(parts)
                if m.islnk():
                    lparts = [p for p in m.linkname.split("/") if p not in ("", ".")]
                    if ".." in lparts or m.linkname.startswith("/"):
                        raise ImageError(f"ADD: archive hard link {m.name!r} leaves the destination")
                    m.linkname = posixpath.join(e.name, *lparts) if e.name else "/".join(lparts)
                elif not (m.isreg() or m.isdir() or m.issym() or m.isfifo()):
                    raise ImageError(f"ADD: archive member {m.name!r} is a device node")
                tar.addfile(m, src.extractfile(m) if m.isreg() else None)
