"""The per-step build cache: `$COMPOSER_DATA_DIR/build-cache/index.json` maps a step key to the build
state after that step (its layers, config and history). The key chains the parent's key, the
instruction as substituted, and the content hash of the step's inputs (COPY/ADD files, build args
seen by a RUN), so any change upstream changes every key below it.

Entries are written only after the whole build has stored its images, so an entry never names a
layer that was not committed; a hit is used only while all its layer dirs and blobs still exist (an image
rm/prune may have removed them)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

MAX_ENTRIES = 5000  # oldest dropped first: the index is read on every build


def step_key(parent: str, instruction: str, inputs: str = "") -> str:
    h = hashlib.sha256()
    for part in (parent, instruction, inputs):
        h.update(part.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return h.hexdigest()


class BuildCache:
    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir) / "build-cache"
        self.path = self.dir / "index.json"
        self._entries: dict[str, Any] | None = None
        self._new: dict[str, Any] = {}

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            try:
                with open(self.path, "rb") as f:
                    data = json.load(f)
                self._entries = data.get("entries", {}) if data.get("version") == 1 else {}
            except (OSError, ValueError):
                self._entries = {}  # a lost cache only costs time
        return self._entries

    def get(self, key: str) -> dict[str, Any] | None:
        return self._new.get(key) or self._load().get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._new[key] = value

    def discard(self) -> None:
        self._new.clear()

    def commit(self) -> None:
        """Merge this build's entries into the index (under a lock: builds may run side by side)."""
        if not self._new:
            return
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._entries = None
            entries = self._load()
            for key, value in self._new.items():
                entries.pop(key, None)
                entries[key] = value  # re-inserted: dicts keep order, so the oldest come first
            while len(entries) > MAX_ENTRIES:
                del entries[next(iter(entries))]
            tmp = self.dir / f".tmp-{os.getpid()}-index"
            try:
                with open(tmp, "w") as f:
                    json.dump({"version": 1, "entries": entries}, f, separators=(",", ":"))
                os.rename(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                raise
            self._new.clear()
        finally:
            os.close(fd)
