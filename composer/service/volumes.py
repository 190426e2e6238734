"""Volumes: directories under `$COMPOSER_DATA_DIR/volumes/<name>/_data` with a small JSON record
(`volume.json`: name, labels, anonymous, created, seeded), as docker's local driver keeps them.

Named volume data is only ever deleted by `remove` (down -v, rm -v): no other path here deletes.
Seeding copies the image's content at the mount target into an empty volume on first use, as
docker does; the image is a stack of extracted layer dirs, so we read them top-down the way
overlayfs would, honouring whiteouts (char dev 0:0) and opaque dirs (trusted.overlay.opaque=y)."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from dataclasses import dataclass, field

from composer.errors import ConflictError, DamagedRecordError, NotFoundError
from composer.runtime import records

OPAQUE_XATTR = "trusted.overlay.opaque"
_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


@dataclass(frozen=True)
class VolumeInfo:
    """A named (or anonymous) volume as stored: its data dir and labels."""

    name: str
    path: str  # the _data dir (what gets bind-mounted)
    labels: tuple[tuple[str, str], ...] = ()
    anonymous: bool = False
    created: float = 0.0
    seeded: bool = False

    def label(self, key: str, default: str | None = None) -> str | None:
        return dict(self.labels).get(key, default)


@dataclass
class VolumeStore:
    """The named volumes under `$DATA/volumes`: create, list, remove, seed from an image."""

    data_dir: str = field(default_factory=lambda: os.environ.get("COMPOSER_DATA_DIR") or "/var/lib/composer")

    @property
    def root(self) -> str:
        return os.path.join(self.data_dir, "volumes")

    @staticmethod
    def check_name(name: str) -> None:
        if not _NAME_RE.match(name) or len(name) > 255:  # a directory's name
            raise ConflictError(f"invalid volume name {name[:80]!r}: use at most 255 characters [a-zA-Z0-9_.-], "
                                "starting with a letter or digit")

    def _dir(self, name: str) -> str:
        self.check_name(name)
        return os.path.join(self.root, name)

    def data_path(self, name: str) -> str:
        return os.path.join(self._dir(name), "_data")

    def _record(self, name: str) -> str:
        return os.path.join(self._dir(name), "volume.json")

    # ------------------------------------------------------------ queries

    def get(self, name: str) -> VolumeInfo:
        try:
            d = records.read_dict(self._record(name))
        except FileNotFoundError:
            if os.path.isdir(self.data_path(name)):  # record lost in a crash: the data is what counts
                return VolumeInfo(name, self.data_path(name))
            raise NotFoundError(f"volume {name} not found") from None
        except DamagedRecordError as err:
            records.damaged(err, "the volume's data is what counts; its labels are lost")
            return VolumeInfo(name, self.data_path(name))
        return VolumeInfo(name, self.data_path(name), tuple((k, v) for k, v in d.get("labels", [])),
                          bool(d.get("anonymous")), float(d.get("created", 0)), bool(d.get("seeded")))

    def exists(self, name: str) -> bool:
        return os.path.isdir(self.data_path(name))

    def list(self, labels: dict[str, str] | None = None) -> list[VolumeInfo]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if not _NAME_RE.match(name) or not os.path.isdir(os.path.join(self.root, name, "_data")):
                continue
            info = self.get(name)
            if labels and any(info.label(k) != v for k, v in labels.items()):
                continue
            out.append(info)
        return out

    def owner_of(self, path: str) -> VolumeInfo | None:
        """The volume whose _data dir is `path` (a mount source), else None."""
        parent, base = os.path.split(os.path.normpath(path))
        if base != "_data" or os.path.dirname(parent) != os.path.normpath(self.root):
            return None
        try:
            return self.get(os.path.basename(parent))
        except NotFoundError:
            return None

    # ------------------------------------------------------------ changes

    def ensure(self, name: str, labels: tuple[tuple[str, str], ...] = (), *, anonymous: bool = False) -> VolumeInfo:
        """Create if missing (idempotent; never touches existing data)."""
        data = self.data_path(name)
        if os.path.isdir(data):
            return self.get(name)
        os.makedirs(data, exist_ok=True)
        os.chmod(os.path.dirname(data), 0o701)
        self._write(name, {"name": name, "labels": [list(kv) for kv in labels], "anonymous": anonymous,
                           "created": time.time(), "seeded": False})
        return self.get(name)

    def _write(self, name: str, record: dict) -> None:
        path = self._record(name)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(record, f, sort_keys=True)
        os.replace(tmp, path)

    def new_anonymous(self, labels: tuple[tuple[str, str], ...] = ()) -> VolumeInfo:
        return self.ensure(os.urandom(32).hex(), labels, anonymous=True)

    def remove(self, name: str) -> None:
        """Delete the volume and its data. Idempotent."""
        import shutil  # here: its import (bz2, lzma) costs every up and down ~2 ms

        shutil.rmtree(self._dir(name), ignore_errors=True)

    def seed(self, name: str, layers: tuple[str, ...], target: str) -> bool:
        """On first use: copy the image's content at `target` into the volume if it is empty.
        Returns True when something was copied. `layers` are bottom-most first."""
        info = self.get(name)
        if info.seeded:
            return False
        copied = False
        if not any(os.scandir(info.path)):
            copied = copy_image_path(layers, target, info.path)
        record = {"name": name, "labels": [list(kv) for kv in info.labels], "anonymous": info.anonymous,
                  "created": info.created or time.time(), "seeded": True}
        self._write(name, record)
        return copied


# ---------------------------------------------------------------- reading layers as overlay does


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _below(dirs: list[str], name: str) -> list[str]:
    """Given the layer dirs (top-most first) that make up one merged directory, the layer dirs
    that make up its child `name`, or [] if the child is not a directory in the merged view."""
    out: list[str] = []
    for d in dirs:
        p = os.path.join(d, name)
        st = _lstat(p)
        if st is None:
            continue
        if _is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
            break  # hides everything below (a file over a dir: the file wins, so only if first)
        out.append(p)
        if _is_opaque(p):
            break
    return out


def merged_dirs(layers: tuple[str, ...], target: str) -> list[str]:
    """The layer dirs (top-most first) that make up directory `target` of the image."""
    dirs = list(reversed(layers))
    for part in [p for p in target.split("/") if p and p != "."]:
        if part == "..":
            return []
        dirs = _below(dirs, part)
        if not dirs:
            return []
    return dirs


def copy_image_path(layers: tuple[str, ...], target: str, dest: str) -> bool:
    """Copy the merged image directory `target` into `dest` (which exists). False if the image
    has no directory there."""
    dirs = merged_dirs(layers, target)
    if not dirs:
        return False
    _copy_meta(dirs[0], dest)
    _copy_merged(dirs, dest)
    return True


def _copy_merged(dirs: list[str], dest: str) -> None:
    seen: set[str] = set()
    for d in dirs:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for entry in entries:
            if entry.name in seen:
                continue
            seen.add(entry.name)
            st = entry.stat(follow_symlinks=False)
            if _is_whiteout(st):
                continue
            out = os.path.join(dest, entry.name)
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(out)
                _copy_merged(_below(dirs[dirs.index(d):], entry.name), out)
                _copy_meta(entry.path, out)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(entry.path), out)
                os.lchown(out, st.st_uid, st.st_gid)
            elif stat.S_ISREG(st.st_mode):
                import shutil

                shutil.copyfile(entry.path, out, follow_symlinks=False)
                _copy_meta(entry.path, out)
            # fifos, sockets, devices: docker copies them too, but images rarely carry any in
            # volume paths and a device node in a volume is not something to recreate silently.


def _copy_meta(src: str, dst: str) -> None:
    st = os.lstat(src)
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

