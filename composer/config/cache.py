"""The model cache: a loaded project kept for the next command that loads the same thing, so that
`down`, `ps` or `up` right after an `up` skip the loader (yaml, merging, interpolation, the schema:
~20 ms of imports and work, a tenth of a 3-service `down`).

An entry is found by what the load was asked (the LoadOptions, the whole environment: the model
holds it, and the interpreter and loader code it ran on) and kept only while what the load saw is
unchanged: config.fileio records every file it read (its bytes) and every path it probed
(discovery upward, `.env`, include and extends files, `required: false` env files), and a hit
checks each again. A failed load, a stack read from stdin, or a cache dir that cannot be written
or is not owned by us: no entry, a plain load.

Entries are pickles (the model is frozen dataclasses and FrozenMaps), written atomically under
the caller's dir (the CLI: `$COMPOSER_STATE_DIR/cache/models`, a tmpfs), at most MAX_ENTRIES."""

from __future__ import annotations

import os
import pickle
import sys
import zlib

from composer.config import fileio
from composer.config.model import Project
from composer.config.sources import LoadOptions

MAX_ENTRIES = 32
_FORMAT = 1
_CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))
_CODE = (_CONFIG_DIR, os.path.join(os.path.dirname(_CONFIG_DIR), "stackfiles.py"),
         os.path.join(os.path.dirname(os.path.dirname(_CONFIG_DIR)), "schemas", "compose-spec.json"))


def load_project(opts: LoadOptions) -> Project:
    """Read, merge, interpolate, validate and normalise a project (config.loader), or the same
    project from opts.cache_dir when nothing it was made from has changed. Raises ConfigError."""
    key = _key(opts) if opts.cache_dir and opts.stdin is None and "-" not in opts.files else None
    path = os.path.join(str(opts.cache_dir), f"{zlib.crc32(key):08x}{zlib.adler32(key):08x}") if key else None
    if path is not None:
        hit = _read(path, key)
        if hit is not None:
            return hit
    from composer.config import loader  # yaml, the merge and the schema: only when there is no entry

    if path is None:
        return loader.load_project(opts)
    with fileio.recording() as facts:
        project = loader.load_project(opts)
    _write(path, key, facts, project)
    return project


def _key(opts: LoadOptions) -> bytes | None:
    """Everything the load was asked, as bytes: stored in the entry and compared in full on a hit
    (the file name is only a checksum of it)."""
    try:
        code = [(p, st.st_mtime_ns, st.st_size) for p, st in _stats()]
    except OSError:
        return None
    return repr((_FORMAT, sys.version, code, opts.files, opts.project_name, opts.project_directory,
                 opts.env_files, opts.profiles, opts.interpolate, opts.normalize, opts.resolve_paths,
                 opts.services, os.path.abspath(opts.cwd or os.getcwd()), os.environ.get("HOME"),
                 sorted(opts.environ.items()))).encode()


def _stats():
    """The loader's code (the package's modules, stackfiles, the schema): an edit there is a new key."""
    with os.scandir(_CODE[0]) as it:
        entries = sorted(e.path for e in it if e.name.endswith(".py"))
    for p in (*entries, *_CODE[1:]):
        yield p, os.stat(p)


def _read(path: str, key: bytes) -> Project | None:
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_uid != os.geteuid():
                return None  # only what we wrote ourselves is unpickled
            stored, facts, project = pickle.load(fh)
    except Exception:  # none, damaged, or from another version: load again (and overwrite it)
        return None
    if stored != key or not isinstance(project, Project):
        return None
    return project if fileio.unchanged(facts) else None


def _write(path: str, key: bytes, facts: list, project: Project) -> None:
    cache_dir = os.path.dirname(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        data = pickle.dumps((key, facts, project), protocol=pickle.HIGHEST_PROTOCOL)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        _prune(cache_dir)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _prune(cache_dir: str) -> None:
    """Keep the MAX_ENTRIES entries used last (a hit does not touch its file: written last, then)."""
    with os.scandir(cache_dir) as it:
        entries = [(e.stat().st_mtime_ns, e.path) for e in it if e.is_file()]
    for _, p in sorted(entries)[:-MAX_ENTRIES]:
        try:
            os.unlink(p)
        except OSError:
            pass
