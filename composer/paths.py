"""Paths inside a root (an image, a container's rootfs) with symlinks followed as they would be if
that root were `/`: absolute targets restart at the root, `..` stops at it, at most 40 links (the
kernel's limit). One walk for the runtime's mount targets and the builder's merged layer view."""

from __future__ import annotations

MAX_LINKS = 40


# No typing import: PID 1's setup code (runtime.fs.rootfs) uses this in the lean launcher.
def follow_links(rel: str, readlink: "Callable[[str], str | None]", *, follow_last: bool = True,  # noqa: F821
                 too_many: "Callable[[], Exception]") -> list[str]:  # noqa: F821
    """The components of rel once every symlink along it is followed. readlink(path) gets a path
    of components joined by "/" (relative to the root) and returns the link's target, or None when
    that path is not a symlink (or does not exist). Never leaves the root."""
    todo = [p for p in rel.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        target = readlink("/".join([*done, part])) if (todo or follow_last) else None
        if target is None:
            done.append(part)
            continue
        links += 1
        if links > MAX_LINKS:
            raise too_many()
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p not in ("", ".")] + todo
    return done
