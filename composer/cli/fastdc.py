"""Start-up speed: the code that `dataclasses` generates is compiled once, not on every run.

Each CLI run defines 50-90 dataclasses while importing; for each one `dataclasses` writes the
source of __init__, __repr__, __eq__, __hash__, __setattr__... and compiles it with exec():
~280 compiles, 25-30 ms of a ~100 ms start (measured for `down` and `container run`). Compiling
the same text always gives the same code object, so the code objects are kept in a marshal file
beside the package's bytecode, keyed by the exact source text, and reused; nothing else about the
classes changes. Each entry is stored as its own marshal bytes and decoded only when used: the file
holds every command's classes (~750), and decoding them all would cost 4-19 ms. Only the name `exec` inside the dataclasses module is rebound (its global
shadows the builtin), so no private function of the stdlib is copied. A missing, foreign or
unreadable file, or an unwritable directory: plain dataclasses, nothing else."""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import marshal
import os
import sys

_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "__pycache__")
PATH = os.path.join(_DIR, f"dataclass-code.{sys.implementation.cache_tag}.marshal")  # install(part) names one per command
_MAX_ENTRIES = 4000  # stale entries pile up as the code changes: start afresh past this

_cache: dict[str, bytes] = {}  # source text -> marshal.dumps(code)
_new: dict[str, bytes] = {}


def _load(path: str) -> dict[str, bytes]:
    """The cache, if it is a plain file that only root or we could have written."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
                return {}
            data = marshal.load(f)
    except (OSError, EOFError, ValueError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def _exec(source, globals=None, locals=None, /):
    if type(source) is str:
        text, packed = source, _cache.get(source)
        source = None
        if type(packed) is bytes:
            try:
                source = marshal.loads(packed)
            except (EOFError, ValueError, TypeError):
                pass
        if source is None:
            source = compile(text, "<string>", "exec")
            _new[text] = _cache[text] = marshal.dumps(source)
    return builtins.exec(source, globals, locals)


def _save() -> None:
    if not _new:
        return
    data = _cache if len(_cache) <= _MAX_ENTRIES else _new
    tmp = f"{PATH}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            marshal.dump(data, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, PATH)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def install(part: str = "") -> None:
    """Idempotent. Call before the modules that define dataclasses are imported. part: a file of
    its own (e.g. per command: `container run` then loads the ~60 entries it uses, not all ~760
    of every command, ~1.5 ms); [a-z0-9-] only."""
    global PATH
    if part and part.replace("-", "").isalnum() and part.isascii() and len(part) <= 40:
        PATH = os.path.join(_DIR, f"dataclass-code.{part}.{sys.implementation.cache_tag}.marshal")
    if getattr(dataclasses, "exec", None) is _exec or not hasattr(dataclasses, "_create_fn"):
        return  # done already, or a dataclasses that does not compile per method (3.13+)
    if os.environ.get("COMPOSER_NO_CODE_CACHE"):
        return
    _cache.update(_load(PATH))
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    if os.access(_DIR, os.W_OK):
        atexit.register(_save)
