"""Which stack files a directory means: compose's names plus Fig's, searched upward, with the
matching override file; and the project name they give when a plain look at them is certain
(`fast_project_name`). Outside the config package and with nothing but `os` (not even `re`: its
import alone costs ~7 ms, a third of a lean `ps`, cli/leanps.py), so the read-only verbs (`ps`,
`logs`...) name their project without importing the loader."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing (and collections.abc) are not imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

CANDIDATES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml", "fig.yml", "fig.yaml")
OVERRIDES = ("compose.override.yaml", "compose.override.yml", "docker-compose.override.yaml",
             "docker-compose.override.yml", "fig.override.yml", "fig.override.yaml")


def find_stack_files(start: str, isfile: Callable[[str], bool] = os.path.isfile) -> list[str] | None:
    """The first directory upward from `start` holding a stack file: [file] or [file, override];
    None when there is none. Cheap to import (the CLI's fast name path uses it). isfile: the
    probe (the loader's records what it saw)."""
    d = start
    while True:
        for name in CANDIDATES:
            path = os.path.join(d, name)
            if isfile(path):
                stem, ext = os.path.splitext(name)
                for over in (f"{stem}.override{ext}", *OVERRIDES):
                    op = os.path.join(d, over)
                    if isfile(op):
                        return [path, op]
                return [path]
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


_LOWER_DIGITS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_NAME_CHARS = _LOWER_DIGITS | {"_", "-"}


PROJECT_NAME_MAX = 63  # it starts container, network and volume names and names the project's lock file
PROJECT_NAME_RULE = (f"use at most {PROJECT_NAME_MAX} lowercase letters, digits, dashes and underscores, "
                     "starting with a letter or digit")


def valid_project_name(name: str) -> bool:
    return len(name) <= PROJECT_NAME_MAX and _valid(name)


def _valid(name: str) -> bool:
    """A project name compose accepts: [a-z0-9][a-z0-9_-]*."""
    return bool(name) and name[0] in _LOWER_DIGITS and all(c in _NAME_CHARS for c in name)


def _name_values(text: str) -> list[str]:
    """The value of every `name:` line at the top level (column 0), as written: quotes kept, a
    trailing comment and blanks dropped; the regular expression
    ^(["']?)name\1[ \t]*:[ \t]*(.*?)[ \t]*(?:#.*)?$ (multiline) spelt out."""
    out = []
    for line in text.split("\n"):
        q = line[:1] if line[:1] in ("'", '"') else ""
        if not line.startswith(f"{q}name{q}"):
            continue
        rest = line[len(q) * 2 + 4:].lstrip(" \t")
        if rest[:1] != ":":
            continue
        value = rest[1:].lstrip(" \t")
        end = len(value)
        for i in range(len(value) + 1):  # the shortest prefix followed by blanks, then a comment or the end
            tail = value[i:].lstrip(" \t")
            if not tail or tail[0] == "#":
                end = i
                break
        out.append(value[:end])
    return out


def _flow_style(text: str) -> bool:
    """The document is JSON or flow style: its first line that is neither blank nor a comment
    starts with { or [ (after blanks)."""
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped[0] in "{["
    return False


def fast_project_name(files: Sequence[str], project_directory: str | None, env_files: Sequence[str],
                      environ: Mapping[str, str], cwd: str | None = None) -> str | None:
    """The project's name without the config loader, for the read-only verbs (`ps` must start fast):
    compose's rules (-p, COMPOSE_PROJECT_NAME, top-level `name:`, the directory's name) in the cases
    where a plain look at the files is certain; None (= do the full load) whenever it is not: stdin,
    COMPOSE_FILE, env files, interpolation in `name:`. tests/unit/test_stackfiles_name.py holds it equal
    to composer.config's answer."""
    if env_files or "-" in files or environ.get("COMPOSE_FILE"):
        return None
    if environ.get("COMPOSE_PROJECT_NAME"):
        name = environ["COMPOSE_PROJECT_NAME"]
        return name if valid_project_name(name) else None
    cwd = os.path.abspath(cwd or os.getcwd())
    proj_dir = os.path.abspath(os.path.join(cwd, project_directory)) if project_directory else None
    paths = [os.path.join(cwd, f) for f in files] if files else find_stack_files(proj_dir or cwd)
    if not paths:
        return None
    working_dir = proj_dir or os.path.dirname(os.path.abspath(paths[0]))
    for d in {cwd, working_dir}:
        if _mentions_compose_vars(os.path.join(d, ".env")):
            return None
    name = None
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            return None
        if _flow_style(text) or "\n---" in text:
            return None
        for value in _name_values(text):
            name = value.strip("'\"")
    if name is not None:
        return name if valid_project_name(name) else None
    base = "".join(c for c in os.path.basename(working_dir.rstrip("/")).lower() if c in _NAME_CHARS).lstrip("_-")
    return base if valid_project_name(base) else None  # else the full load says what is wrong


def _mentions_compose_vars(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "COMPOSE_" in f.read()
    except OSError:
        return False
