"""The one reader of the runtime's records (state.json, spec.json, monitor.json, networks/<name>.json,
ports.json, proxies.json, volume.json): a missing file is FileNotFoundError, as open() says; a file that
is not the JSON we wrote (truncated by a crash or a full disk, garbled, edited by hand) is a
DamagedRecordError naming it. Records are written to a temp name and renamed, so damage comes from
outside; every caller decides what to rebuild it from (the host, the other records) and calls
`damaged()`, which says so once per file and process.

Lean: the monitor reads state.json through this (os, _json and composer.errors only)."""

from __future__ import annotations

import _json
import os

from composer.errors import DamagedRecordError


class _Ctx:  # json.decoder's scanner without importing json (its re, its encoder)
    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int, parse_constant = float, int, float


_scan = _json.make_scanner(_Ctx())


def loads(text: str) -> object:
    """json.loads for the records' text: ValueError when it is not exactly one JSON value."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        raise ValueError("not JSON") from None
    if text[end:].strip():
        raise ValueError("extra data after the JSON value")
    return value


def read(path: str, kind: type = object) -> object:
    """The record at path. FileNotFoundError (and other OSErrors) as open(); DamagedRecordError when it
    is empty, not JSON, or not a `kind` (dict, list)."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.strip():
        raise DamagedRecordError(path, "empty")
    try:
        value = loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise DamagedRecordError(path, "not UTF-8 text") from None
    except ValueError as e:
        raise DamagedRecordError(path, f"not valid JSON: {e}") from None
    if not isinstance(value, kind):
        raise DamagedRecordError(path, f"a JSON {type(value).__name__}, not a {kind.__name__}")
    return value


def read_dict(path: str) -> dict:
    return read(path, dict)  # type: ignore[return-value]


# Who hears about damage: a library user may put a function here; without one, one line on
# stderr. Each file is reported once per process.
on_damage: list = []
_told: set[str] = set()


def damaged(err: DamagedRecordError, rebuilt: str) -> None:
    """Say once that err's file is damaged and what it was rebuilt from ("rebuilt from the host")."""
    if err.path in _told:
        return
    _told.add(err.path)
    message = f"{err.message}: {rebuilt}"
    for fn in on_damage:
        fn(message)
        return
    try:
        os.write(2, f"composer: warning: {message}\n".encode("utf-8", "replace"))
    except OSError:
        pass
