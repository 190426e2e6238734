"""Reading a container's log: the docker json-file lines the monitor writes (runtime.monitor.logpump) to
container.log and its rotated copies (.1 the newest ... .N-1 the oldest), as LogRecords; with
`follow`, the file is followed across rotations until the container has stopped for good.

What Runtime.logs runs; imported on first use, not by every CLI that only starts a container."""

from __future__ import annotations

import json
import os
import time

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Iterator

from composer.runtime.container import state as st
from composer.runtime.container.containers import LogRecord


def records(path: str, state_dir: str, max_file: int, *, follow: bool = False, since: float | None = None,
            tail: int | None = None) -> Iterator[LogRecord]:
    """The records of log `path` (max_file: the spec's log.max_file), the container's state in `state_dir`."""
    lines: list[bytes] = []
    for n in range(max(1, max_file) - 1, 0, -1):  # rotated files, oldest first
        try:
            with open(f"{path}.{n}", "rb") as old:
                lines += old.readlines()
        except FileNotFoundError:
            pass
    f = _open(path, state_dir if follow and not lines else None)
    if f is None:
        yield from _records(lines[-tail:] if tail else ([] if tail == 0 else lines), since)
        return
    try:
        lines += f.readlines()
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        yield from _records(lines, since)
        while follow:
            chunk = f.readline()
            if chunk and chunk.endswith(b"\n"):
                yield from _records([chunk], since)
                continue
            if chunk:
                f.seek(-len(chunk), os.SEEK_CUR)
            elif _rotated(f, path):  # the monitor moved it to .1 (or truncated it): follow the new one
                yield from _records(f.readlines(), since)
                f.close()
                try:
                    f = open(path, "rb")
                except FileNotFoundError:
                    return
                continue
            if _over(state_dir):
                rest = f.read()
                yield from _records(rest.splitlines(keepends=True), since)
                return
            time.sleep(0.05)
    finally:
        f.close()


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


def _records(lines: list[bytes], since: float | None) -> Iterator[LogRecord]:
    for raw in lines:
        try:
            d = json.loads(raw)
        except ValueError:
            continue
        if since is not None and _parse_time(d["time"]) < since:
            continue
        yield LogRecord(d["time"], d["stream"], d["log"])


def _parse_time(text: str) -> float:
    import calendar

    base, _, frac = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))
