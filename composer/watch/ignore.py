"""Which changed paths a rule leaves alone, and why (the answer `--verbose` prints).

A rule ignores: editor temporary files (vim's swap files and its `4913` probe, `*~`, emacs' `#x#`
and `.#x` locks, JetBrains' `___jb_tmp___`/`___jb_old___`), anything under `.git/`, what the build
context's `<Dockerfile>.dockerignore` or `.dockerignore` excludes, what the rule's own `ignore`
excludes (.dockerignore syntax relative to the rule's path), and, when it has `include`, every file
that no include pattern matches. Patterns are matched by the build's own .dockerignore matcher
(images.dockerfile.context.IgnoreSpec, on pathspec); an include pattern without a `/` also matches
a file's name at any depth (`*.py`), as users write it."""

from __future__ import annotations

import os

import pathspec

from composer.images.dockerfile.context import IgnoreSpec, read_ignore

EDITOR_PATTERNS = ("*.swp", "*.swx", "*.swo", ".*.sw?", "4913", "*~", "#*#", ".#*", "*___jb_tmp___",
                   "*___jb_old___")


def _gitignore(lines) -> pathspec.PathSpec:
    try:  # pathspec >= 0.12.1 calls git's own matching "gitignore"
        return pathspec.PathSpec.from_lines("gitignore", lines)
    except (KeyError, LookupError):
        return pathspec.PathSpec.from_lines("gitwildmatch", lines)


# a leading "#" starts a comment in gitignore syntax: escaped
_EDITOR = _gitignore(["\\" + p if p.startswith("#") else p for p in EDITOR_PATTERNS])
_EDITOR_ONE = tuple((p, _gitignore(["\\" + p if p.startswith("#") else p])) for p in EDITOR_PATTERNS)


def editor_pattern(name: str) -> str | None:
    """The editor temp-file pattern a file name matches, if any."""
    if not _EDITOR.match_file(name):
        return None
    return next(p for p, spec in _EDITOR_ONE if spec.match_file(name))


class IgnoreSet:
    """The ignore set of one rule. root: the rule's (resolved) path; context: the service's build
    context directory (None without a local build); dockerfile: its Dockerfile name."""

    def __init__(self, root: str, *, context: str | None = None, dockerfile: str | None = None,
                 ignore: tuple[str, ...] = (), include: tuple[str, ...] = ()) -> None:
        self.root = root
        self.context = os.path.realpath(context) if context else None
        self._context_name = ".dockerignore"
        lines: list[str] = []
        if self.context and os.path.isdir(self.context):
            lines = read_ignore(self.context, os.path.basename(dockerfile) if dockerfile else None)
            own = f"{os.path.basename(dockerfile)}.dockerignore" if dockerfile else None
            if own and os.path.exists(os.path.join(self.context, own)):
                self._context_name = own
        self._context_spec = IgnoreSpec(lines)
        self._rule_spec = IgnoreSpec(list(ignore))
        self._include = IgnoreSpec(list(include)) if include else None
        names = [p for p in include if "/" not in p.strip("/")]
        self._include_names = _gitignore(names) if names else None

    def _rel(self, path: str) -> str:
        return "" if path == self.root else os.path.relpath(path, self.root)

    def _context_rel(self, path: str) -> str | None:
        if self.context is None or not (path == self.context or path.startswith(self.context + "/")):
            return None
        return os.path.relpath(path, self.context) if path != self.context else ""

    def why(self, path: str, is_dir: bool = False) -> str | None:
        """Why the rule ignores `path` (absolute, under root), or None when it takes it."""
        rel = self._rel(path)
        parts = rel.split("/") if rel else []
        if ".git" in parts:
            return "matches .git/"
        if parts and not is_dir:
            pattern = editor_pattern(parts[-1])
            if pattern:
                return f"matches editor temp files ({pattern})"
        crel = self._context_rel(path)
        if crel and self._context_spec.ignored(crel):
            return f"matches {self._context_spec.pattern_for(crel)} in {self._context_name}"
        if rel and self._rule_spec.ignored(rel):
            return f"matches the rule's ignore {self._rule_spec.pattern_for(rel)}"
        if rel and not is_dir and self._include is not None and not self._included(rel):
            return "matches none of the rule's include patterns"
        return None

    def _included(self, rel: str) -> bool:
        assert self._include is not None
        if self._include.ignored(rel):
            return True
        return self._include_names is not None and bool(self._include_names.match_file(os.path.basename(rel)))

    def prune(self, path: str) -> bool:
        """Whether a directory and all below it can be left unwatched (nothing in it could be taken)."""
        rel = self._rel(path)
        if not rel:
            return False
        if ".git" in rel.split("/"):
            return True
        crel = self._context_rel(path)
        if crel and self._context_spec.prune_dir(crel):
            return True
        return self._rule_spec.prune_dir(rel)
