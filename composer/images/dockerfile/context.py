"""The build context: a host directory the user hands us, treated as untrusted input.

- `.dockerignore` (docker's semantics through pathspec: every pattern anchored at the context root,
  `!` exceptions, `**`) hides files from COPY/ADD as if they were not there;
- sources are context-relative; `..` is refused; globs are matched per path component (Go's
  filepath.Match: `*` never crosses `/`, and does match leading dots);
- symlinks: a source's own path is resolved inside the context (a link leading out of it is refused);
  inside a copied directory links are copied as links, never followed; files are opened O_NOFOLLOW."""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from composer.errors import ImageError

_GLOB = set("*?[")
_MAX_LINKS = 40


class _Missing(ImageError):
    """A path that is not there (a glob may have guessed it); other errors are refusals."""


@dataclass(frozen=True)
class Source:
    """One matched source: its context-relative path (after resolving its own symlinks) and stat."""

    rel: str  # "" is the context root
    path: str  # absolute host path
    st: os.stat_result


class BuildContext:
    def __init__(self, root: str | Path, ignore_lines: list[str] | None = None) -> None:
        self.root = os.path.realpath(root)
        if not os.path.isdir(self.root):
            raise ImageError(f"build context {root} is not a directory")
        if ignore_lines is None:
            ignore_lines = read_ignore(self.root)
        self.spec = IgnoreSpec(ignore_lines)
        self.ignored, self.prune_dir = self.spec.ignored, self.spec.prune_dir

    # ---- sources

    def match(self, pattern: str, what: str = "COPY") -> list[Source]:
        """The sources a COPY/ADD pattern names; raises when none."""
        parts = _split(pattern, what)
        found: list[str] = []
        self._expand("", parts, found)
        out = []
        globbed = bool(_GLOB & set(pattern))
        for rel in found:
            try:
                real = self.resolve(rel, what)
            except _Missing:
                if globbed:
                    continue
                raise
            if self.ignored(real) or self.ignored(rel):
                continue
            out.append(Source(real, self.abs(real), os.lstat(self.abs(real))))
        if not out:
            raise ImageError(f"{what} failed: file not found in build context or excluded by "
                             f".dockerignore: {pattern}")
        return out

    def abs(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def _expand(self, base: str, parts: list[str], found: list[str]) -> None:
        if not parts:
            found.append(base)
            return
        head, rest = parts[0], parts[1:]
        if not (_GLOB & set(head)):
            self._expand(f"{base}/{head}" if base else head, rest, found)
            return
        try:
            real = self.resolve(base, "COPY") if base else ""
            names = sorted(os.listdir(self.abs(real)))
        except (OSError, ImageError):
            return
        for name in names:
            if fnmatch.fnmatchcase(name, head):
                self._expand(f"{base}/{name}" if base else name, rest, found)

    def resolve(self, rel: str, what: str) -> str:
        """rel with every symlink along it followed, staying inside the context; the result exists."""
        todo = [p for p in rel.split("/") if p not in ("", ".")]
        done: list[str] = []
        links = 0
        while todo:
            part = todo.pop(0)
            if part == "..":
                if not done:
                    raise ImageError(f"{what} failed: {rel} points outside the build context")
                done.pop()
                continue
            path = os.path.join(self.root, *done, part)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                raise _Missing(f"{what} failed: file not found in build context: {rel}") from None
            if stat.S_ISLNK(st.st_mode):
                links += 1
                target = os.readlink(path)
                if target.startswith("/") or links > _MAX_LINKS:
                    raise ImageError(f"{what} failed: {rel} is a symlink leading outside the build context")
                todo = [p for p in target.split("/") if p not in ("", ".")] + todo
                continue
            if todo and not stat.S_ISDIR(st.st_mode):
                raise _Missing(f"{what} failed: {rel}: not a directory")
            done.append(part)
        return "/".join(done)

    def walk(self, rel: str):
        """(rel path, stat) of rel and everything below it that .dockerignore lets through, parents
        first, sorted; symlinks are reported, never followed."""
        st = os.lstat(self.abs(rel))
        yield rel, st
        if not stat.S_ISDIR(st.st_mode):
            return
        for name in sorted(os.listdir(self.abs(rel))):
            child = f"{rel}/{name}" if rel else name
            cst = os.lstat(self.abs(child))
            if stat.S_ISDIR(cst.st_mode):
                if self.prune_dir(child):
                    continue
                if self.ignored(child):  # excluded, but an exception may bring children back
                    for sub, sst in self.walk(child):
                        if sub != child and not self.ignored(sub) and not stat.S_ISDIR(sst.st_mode):
                            yield sub, sst
                    continue
                yield from self.walk(child)
            elif not self.ignored(child):
                yield child, cst

    def open(self, rel: str) -> int:
        """A read-only fd for a regular file found by walk(); refuses to follow a link swapped in."""
        try:
            return os.open(self.abs(rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as err:
            raise ImageError(f"cannot read {rel} from the build context: {err.strerror}") from None


def _split(pattern: str, what: str) -> list[str]:
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageError(f"{what} failed: forbidden path outside the build context: {pattern}")
    return parts


class IgnoreSpec:
    """.dockerignore lines as docker reads them, for paths relative to their root (the build
    context; `composer watch` also uses it for a rule's `ignore`, relative to the rule's path)."""

    def __init__(self, lines: list[str]) -> None:
        self._spec, self.has_exceptions = _compile(lines)
        self.empty = self._spec is None

    def ignored(self, rel: str) -> bool:
        return bool(rel) and self._spec is not None and self._spec.match_file(rel)

    def prune_dir(self, rel: str) -> bool:
        """Whether a directory and all of it can be skipped (no `!` exception could re-include a child)."""
        return self.ignored(rel) and not self.has_exceptions

    def pattern_for(self, rel: str) -> str | None:
        """The last pattern that decides rel (for "why was this ignored?"), None when none does."""
        if self._spec is None:
            return None
        found = None
        for pattern in self._spec.patterns:
            if pattern.include is not None and pattern.match_file(rel) is not None:
                found = str(pattern.pattern).lstrip("/") if pattern.include else None
        return found


def read_ignore(root: str, dockerfile: str | None = None) -> list[str]:
    """The lines of `<Dockerfile>.dockerignore` beside the Dockerfile when there is one (BuildKit's
    rule), else of the context's `.dockerignore`."""
    names = [f"{dockerfile}.dockerignore"] if dockerfile else []
    for name in (*names, ".dockerignore"):
        try:
            with open(os.path.join(root, name), encoding="utf-8") as f:
                return f.read().splitlines()
        except (FileNotFoundError, NotADirectoryError):
            continue
    return []


def _compile(lines: list[str]):  # -> (PathSpec | None, has_exceptions)
    patterns = []
    exceptions = False
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:].strip()
            exceptions = True
        # docker cleans the pattern (filepath.Clean) and matches it from the context root
        body = "/".join(p for p in line.split("/") if p not in ("", "."))
        if not body:
            continue
        patterns.append(("!" if negate else "") + "/" + body)
    if not patterns:
        return None, False
    import pathspec

    try:  # pathspec >= 0.12.1 names docker-compatible gitignore matching "gitignore"
        return pathspec.PathSpec.from_lines("gitignore", patterns), exceptions
    except (KeyError, LookupError):
        return pathspec.PathSpec.from_lines("gitwildmatch", patterns), exceptions
