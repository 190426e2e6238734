"""Every read and probe of the host's files the loader makes goes through here, so that a load can
say afterwards exactly what it depended on: `recording()` collects the facts it saw (a file's
bytes, whether a path is a file), and `unchanged()` checks them again (stack and env files are
small; comparing bytes needs no hash module, whose import alone costs 3 ms). The model cache
(config.cache) keeps a project only as long as those facts still hold.

Text is read as open(path, encoding="utf-8") reads it (universal newlines, the same errors)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

Fact = tuple[str, str, object]  # ("read", path, bytes or None) | ("isfile" | "exists", path, bool)

_facts: ContextVar[list[Fact] | None] = ContextVar("composer_config_facts", default=None)


@contextmanager
def recording() -> Iterator[list[Fact]]:
    """The facts every read and probe below (in this thread or task) saw, in order."""
    facts: list[Fact] = []
    token = _facts.set(facts)
    try:
        yield facts
    finally:
        _facts.reset(token)


def _note(kind: str, path: str, seen: object) -> None:
    facts = _facts.get()
    if facts is not None:
        facts.append((kind, path, seen))


def read_text(path: str, limit: int | None = None) -> str:
    """The file's text. limit: read at most limit+1 bytes (a caller refusing larger files sees a
    text longer than limit). OSError and UnicodeDecodeError as open() raises them."""
    try:
        with open(path, "rb") as fh:
            data = fh.read() if limit is None else fh.read(limit + 1)
    except OSError:
        _note("read", path, None)
        raise
    _note("read", path, data)
    truncated = limit is not None and len(data) > limit
    text = data.decode("utf-8", errors="replace" if truncated else "strict")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def isfile(path: str) -> bool:
    found = os.path.isfile(path)
    _note("isfile", path, found)
    return found


def exists(path: str) -> bool:
    found = os.path.exists(path)
    _note("exists", path, found)
    return found


def unchanged(facts: Sequence[Fact]) -> bool:
    """Whether every fact still holds (each file read has the same content, each probe the same answer)."""
    for kind, path, seen in facts:
        if kind == "read":
            try:
                with open(path, "rb") as fh:
                    now: object = fh.read()
            except OSError:
                now = None
        elif kind == "isfile":
            now = os.path.isfile(path)
        else:
            now = os.path.exists(path)
        if now != seen:
            return False
    return True
