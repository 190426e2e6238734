"""Reading a container's log: the docker json-file lines the monitor writes (runtime.monitor.logpump) to
container.log and its rotated copies (.1 the newest ... .N-1 the oldest), as LogRecords; with
`follow`, the file is followed across rotations until the container has stopped for good.

What Runtime.logs runs; imported on first use, not by every CLI that only starts a container."""

from __future__ import annotations

import collections
import json
import os
import re
import time
from json.decoder import scanstring as _scanstring

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Iterator

from composer.runtime.container import state as st
from composer.runtime.container.containers import LogRecord


def records(path: str, state_dir: str, max_file: int, *, follow: bool = False, since: float | None = None,
            tail: int | None = None) -> Iterator[LogRecord]:
    """The records of log `path` (max_file: the spec's log.max_file), the container's state in `state_dir`.
    Partial records (docker's 16 KiB pieces of a longer line, or the unfinished line a monitor wrote at a
    hand-off) come back joined into one record per line, as `docker logs` shows them; the file is read
    as a stream, so memory holds one line per stream (and `tail` records), never the whole log."""
    join = _Joiner(since)
    f = _open(path, state_dir if follow and not _rotated_paths(path, max_file) else None)
    raw = _lines(path, max_file, f)
    if tail is not None:
        raw = iter(collections.deque(raw, maxlen=tail)) if tail > 0 else iter(())
    yield from join.feed(raw)
    if f is None or not follow:
        if f is not None:
            f.close()
        yield from join.flush()
        return
    try:
        while True:
            chunk = f.readline()
            if chunk and chunk.endswith(b"\n"):
                yield from join.feed((chunk,))
                continue
            if chunk:
                f.seek(-len(chunk), os.SEEK_CUR)
            elif _rotated(f, path):  # the monitor moved it to .1 (or truncated it): follow the new one
                yield from join.feed(f)
                f.close()
                try:
                    f = open(path, "rb")
                except FileNotFoundError:
                    break
                continue
            if _over(state_dir):
                yield from join.feed(f.read().splitlines(keepends=True))
                break
            time.sleep(0.05)
    finally:
        f.close()
    yield from join.flush()


def _rotated_paths(path: str, max_file: int) -> list[str]:
    """The rotated copies that exist, oldest first."""
    return [p for p in (f"{path}.{n}" for n in range(max(1, max_file) - 1, 0, -1)) if os.path.exists(p)]


def _lines(path: str, max_file: int, current) -> Iterator[bytes]:
    for p in _rotated_paths(path, max_file):
        try:
            with open(p, "rb") as old:
                yield from old
        except FileNotFoundError:  # rotated away meanwhile
            pass
    if current is not None:
        yield from current


_HEAD = b'{"log": "'
_TAIL = re.compile(rb'", "stream": "(std(?:out|err))", "time": "([^"]+)"}\s*$')


class _Joiner:
    """json-file lines -> LogRecords, a line's partial records joined (one pending line per stream)."""

    def __init__(self, since: float | None) -> None:
        self.since = since
        self.pending: dict[str, list] = {}  # stream -> [time, parts]

    def feed(self, lines) -> Iterator[LogRecord]:
        pending, since = self.pending, self.since
        for raw in lines:
            rec = _decode(raw)
            if rec is None:
                continue
            t, stream, text = rec
            if since is not None and _parse_time(t) < since:
                continue
            held = pending.get(stream)
            if not text.endswith("\n"):
                if held is None:
                    pending[stream] = [t, [text]]
                else:
                    held[1].append(text)
                continue
            if held is not None:
                del pending[stream]
                held[1].append(text)
                t, text = held[0], "".join(held[1])
            yield LogRecord(t, stream, text)

    def flush(self) -> Iterator[LogRecord]:
        """What never got its end of line (the container stopped mid-line)."""
        for stream, (t, parts) in sorted(self.pending.items(), key=lambda kv: kv[1][0]):
            yield LogRecord(t, stream, "".join(parts))
        self.pending.clear()


def _decode(raw: bytes) -> tuple[str, str, str] | None:
    """(time, stream, text) of one json-file line. The lines our monitors write have one layout, taken
    apart with the C string scanner (a third of json.loads' cost); anything else goes through json."""
    if raw.startswith(_HEAD):
        m = _TAIL.search(raw, len(_HEAD))
        if m is not None:
            try:
                text, end = _scanstring(raw[:m.start() + 1].decode("ascii"), len(_HEAD))
            except (ValueError, UnicodeDecodeError):
                pass
            else:
                if end == m.start() + 1:
                    return m.group(2).decode(), m.group(1).decode(), text
    try:
        d = json.loads(raw)
        return d["time"], d["stream"], d["log"]
    except (ValueError, KeyError, TypeError):
        return None


def _open(path: str, wait_in: str | None):
    """The log, or None. wait_in: a state dir whose container may not have opened its log yet (a
    follower that attached right after the start, before the monitor's first write): wait for it
    while the container runs or its monitor lives."""
    while True:
        try:
            return open(path, "rb")
        except FileNotFoundError:
            if wait_in is None:
                return None
        if _over(wait_in):
            wait_in = None  # one more look: it may have been written just before the exit
            continue
        time.sleep(0.02)


def _over(state_dir: str) -> bool:
    """Neither the container nor its monitor runs: nothing more will be written."""
    s = st.read(state_dir)
    return not st.monitor_alive(s) and st.derive_status(s) not in ("running", "paused")


def _rotated(f, path: str) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return True
    mine = os.fstat(f.fileno())
    return now.st_ino != mine.st_ino or now.st_size < f.tell()


def _parse_time(text: str) -> float:
    import calendar

    base, _, frac = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))
