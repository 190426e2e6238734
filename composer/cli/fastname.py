"""The project's name without the config loader, for the read-only verbs (`ps` must start fast):
compose's rules (-p, COMPOSE_PROJECT_NAME, top-level `name:`, the directory's name) in the cases
where a plain look at the files is certain; None (= do the full load) whenever it is not: stdin,
COMPOSE_FILE, env files, interpolation in `name:`. tests/unit/test_cli_fastname.py holds it equal
to composer.config's answer."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from composer.stackfiles import find_stack_files as discover  # noqa: F401 (used by other CLI modules)

_NAME_LINE = re.compile(r"^([\"']?)name\1[ \t]*:[ \t]*(.*?)[ \t]*(?:#.*)?$", re.MULTILINE)
_FLOW_START = re.compile(r"\A(?:\s*#[^\n]*\n|\s*\n)*\s*[{\[]")  # a JSON / flow-style document
_VALID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def fast_project_name(files: Sequence[str], project_directory: str | None, env_files: Sequence[str],
                      environ: Mapping[str, str], cwd: str | None = None) -> str | None:
    if env_files or "-" in files or environ.get("COMPOSE_FILE"):
        return None
    if environ.get("COMPOSE_PROJECT_NAME"):
        name = environ["COMPOSE_PROJECT_NAME"]
        return name if _VALID.match(name) else None
    cwd = os.path.abspath(cwd or os.getcwd())
    proj_dir = os.path.abspath(os.path.join(cwd, project_directory)) if project_directory else None
    paths = [os.path.join(cwd, f) for f in files] if files else discover(proj_dir or cwd)
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
        if _FLOW_START.match(text) or "\n---" in text:
            return None
        for m in _NAME_LINE.finditer(text):
            name = m.group(2).strip("'\"")
    if name is not None:
        return name if _VALID.match(name) else None
    base = re.sub(r"[^a-z0-9_-]", "", os.path.basename(working_dir.rstrip("/")).lower()).lstrip("_-")
    return base or None


def _mentions_compose_vars(path: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "COMPOSE_" in f.read()
    except OSError:
        return False
