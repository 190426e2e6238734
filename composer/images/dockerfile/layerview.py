"""A read-only merged view of a stack of extracted layer dirs, resolved the way overlayfs does
(top-most layer wins; a char 0:0 whiteout hides a name; an opaque dir hides the layers below it),
without mounting anything on the host. The builder uses it for COPY --from, for the metadata of
existing parent dirs, for WORKDIR and for user/group names in --chown."""

from __future__ import annotations

import os
import stat

from composer.errors import ImageError
from composer.paths import follow_links

OPAQUE_XATTR = "trusted.overlay.opaque"


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


class LayerView:
    def __init__(self, layers: list[str] | tuple[str, ...]) -> None:
        self.layers = list(layers)  # bottom-most first

    def lookup(self, rel: str) -> tuple[str, os.stat_result] | None:
        """(host path, lstat) of rel in the merged view, no symlink followed; None if absent."""
        parts = [p for p in rel.split("/") if p]
        if not parts:
            return (self.layers[-1], os.lstat(self.layers[-1])) if self.layers else None
        for layer in reversed(self.layers):
            path = layer
            for depth, part in enumerate(parts):
                path = f"{path}/{part}"
                try:
                    st = os.lstat(path)
                except (FileNotFoundError, NotADirectoryError):
                    break  # not in this layer: a lower one may have it, unless an opaque dir said no
                if is_whiteout(st):
                    return None
                if depth == len(parts) - 1:
                    return path, st
                if not stat.S_ISDIR(st.st_mode):
                    return None
                if _opaque(path):
                    return self._below_opaque(parts, depth, layer)
        return None

    def _below_opaque(self, parts: list[str], depth: int, layer: str) -> tuple[str, os.stat_result] | None:
        path = "/".join([layer, *parts])
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return None if is_whiteout(st) else (path, st)

    def resolve(self, rel: str, *, follow_last: bool = True) -> str:
        """rel with symlinks followed as inside the image (absolute targets restart at its root,
        `..` stops at the root): never leaves the image. The result may not exist."""

        def readlink(cand: str) -> str | None:
            hit = self.lookup(cand)
            return os.readlink(hit[0]) if hit and stat.S_ISLNK(hit[1].st_mode) else None

        return "/".join(follow_links(rel, readlink, follow_last=follow_last,
                                     too_many=lambda: ImageError(f"too many levels of symbolic links in {rel}")))

    def listdir(self, rel: str) -> list[str]:
        """Names in the merged directory rel (already resolved), sorted."""
        parts = [p for p in rel.split("/") if p]
        names: dict[str, bool] = {}  # name -> visible
        for layer in reversed(self.layers):
            path = "/".join([layer, *parts]) if parts else layer
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                break
            with os.scandir(path) as it:
                for entry in it:
                    if entry.name not in names:
                        names[entry.name] = not is_whiteout(entry.stat(follow_symlinks=False))
            if _opaque(path):
                break
        return sorted(n for n, visible in names.items() if visible)

    def walk(self, rel: str):
        """(rel, host path, lstat) of rel and everything below it, parents first; links not followed."""
        hit = self.lookup(rel)
        if hit is None:
            return
        yield rel, hit[0], hit[1]
        if stat.S_ISDIR(hit[1].st_mode):
            for name in self.listdir(rel):
                yield from self.walk(f"{rel}/{name}" if rel else name)

    def read_text(self, rel: str, limit: int = 1 << 20) -> str | None:
        hit = self.lookup(self.resolve(rel))
        if hit is None or not stat.S_ISREG(hit[1].st_mode):
            return None
        with open(hit[0], "rb") as f:
            return f.read(limit).decode("utf-8", "replace")

    def user_ids(self, user: str, group: str | None) -> tuple[int, int]:
        """--chown=user[:group] -> (uid, gid), names looked up in the image's /etc/passwd and /etc/group."""
        uid, gid = None, None
        if user.isdigit():
            uid = int(user)
        else:
            for line in (self.read_text("etc/passwd") or "").splitlines():
                f = line.split(":")
                if len(f) >= 4 and f[0] == user and f[2].isdigit() and f[3].isdigit():
                    uid, gid = int(f[2]), int(f[3])
                    break
            if uid is None:
                raise ImageError(f"unable to find user {user}: no matching entries in passwd file")
        if group is not None:
            if group.isdigit():
                gid = int(group)
            else:
                gid = None
                for line in (self.read_text("etc/group") or "").splitlines():
                    f = line.split(":")
                    if len(f) >= 3 and f[0] == group and f[2].isdigit():
                        gid = int(f[2])
                        break
                if gid is None:
                    raise ImageError(f"unable to find group {group}: no matching entries in group file")
        elif gid is None:
            gid = uid  # numeric user alone: docker uses the same number for the group
        return uid, gid
