"""The combined log stream: `db-1  | line` with one stable colour per service, prefixes padded to
the longest name, containers joining (recreate, scale) and exiting (`db-1 exited with code 0`).

One follower thread per container reads runtime.logs(follow=True) and queues records; only the
calling thread writes, so lines never interleave mid-line. Colours are plain ANSI codes: no rich
on this path."""

from __future__ import annotations

import calendar
import heapq
import queue
import re
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence, TextIO

from composer.errors import UsageError

# docker compose's rainbow: normal colours first, then the bright ones
PALETTE = ("36", "33", "32", "35", "34", "96", "93", "92", "95", "94")


def colour_map(services: Iterable[str]) -> dict[str, str]:
    """Service -> ANSI colour, by sorted name: the same stack gets the same colours on every run."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(services)))}


def colour_for(service: str, known: dict[str, str]) -> str:
    """A service not in the map (added since) gets a colour derived from its name: still stable."""
    return known.get(service) or PALETTE[zlib.crc32(service.encode()) % len(PALETTE)]


def display_name(container_name: str, project: str) -> str:
    """`example-db-1` -> `db-1`, as compose v2 prefixes lines; a container_name stays as it is."""
    prefix = project + "-"
    return container_name[len(prefix):] if project and container_name.startswith(prefix) else container_name


def parse_since(text: str, now: float | None = None, *, flag: str = "--since") -> float:
    """--since (and --until): RFC 3339 ('2024-05-01T10:00:00Z'), a date, a Unix timestamp, or
    relative ('10m', '1h30m': that long ago)."""
    now = time.time() if now is None else now
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", text):
        from composer.units import parse_duration

        return now - parse_duration(text)
    try:
        # fromisoformat (3.11) takes 'Z' and offsets but at most microseconds: cut nanoseconds
        iso = re.sub(r"(\.\d{6})\d+", r"\1", text)
        dt = datetime.fromisoformat(iso)
    except ValueError:
        raise UsageError(f"invalid {flag} value {text!r} (use RFC 3339 like 2024-05-01T10:00:00Z, "
                         "a Unix timestamp, or a duration like 10m)") from None
    if dt.tzinfo is None:
        return time.mktime(dt.timetuple()) + dt.microsecond / 1e6  # local time, as docker
    return dt.timestamp()


def parse_tail(text: str) -> int | None:
    """--tail: a number of lines, or 'all' (None); a negative number means all, as docker."""
    if text == "all":
        return None
    try:
        tail = int(text)
    except ValueError:
        raise UsageError(f"invalid --tail {text!r}: a number or 'all'") from None
    return None if tail < 0 else tail


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    tail: int | None = None  # None: all
    since: float | None = None  # epoch seconds
    until: float | None = None  # epoch seconds: only records written before it
    timestamps: bool = False
    colour: bool = True
    prefix: bool = True


@dataclass(frozen=True)
class Source:
    """One container to read: its id, the name shown in the prefix, its service (for the colour)."""

    id: str
    name: str
    service: str
    running: bool = True  # only containers seen running get an exit announcement


class LogPrinter:
    """Formats records and exit notices; used from one thread at a time."""

    def __init__(self, out: TextIO | None = None, opts: LogOptions = LogOptions(),
                 colours: dict[str, str] | None = None, names: Iterable[str] = ()) -> None:
        self.out = sys.stdout if out is None else out
        self.opts = opts
        self.colours = dict(colours or {})
        self.width = 0
        self._prefixes: dict[tuple, str] = {}
        self.widen(names)

    def widen(self, names: Iterable[str]) -> None:
        # compose pads to the longest name plus one: `db-1  | line`
        for n in names:
            self.width = max(self.width, len(n) + 1)

    def _paint(self, service: str, text: str) -> str:
        if not self.opts.colour:
            return text
        return f"\x1b[{colour_for(service, self.colours)}m{text}\x1b[0m"

    def format_line(self, source: Source, time_text: str, line: str) -> str:
        body = line if line.endswith("\n") else line + "\n"
        if self.opts.timestamps:
            body = f"{time_text} {body}"
        if not self.opts.prefix:
            return body
        key = (source.name, source.service, self.width)
        prefix = self._prefixes.get(key)
        if prefix is None:  # one per source and width: formatting it per line was a third of `logs`
            prefix = self._prefixes[key] = self._paint(source.service, f"{source.name:<{self.width}} |") + " "
        return prefix + body

    def line(self, source: Source, time_text: str, line: str) -> None:
        self.out.write(self.format_line(source, time_text, line))

    def exited(self, source: Source, code: int | None) -> None:
        self.out.write(self._paint(source.service, f"{source.name} exited with code {code}") + "\n")
        self.out.flush()

    def notice(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


def print_logs(runtime: Any, sources: Sequence[Source], printer: LogPrinter) -> None:
    """Non-following: every container's records merged by time (each already in order)."""
    opts = printer.opts
    printer.widen(s.name for s in sources)
    until = until_key(opts.until)

    write, fmt = printer.out.write, printer.format_line
    if len(sources) == 1:  # nothing to merge
        src = sources[0]
        for rec in runtime.logs(src.id, follow=False, since=opts.since, tail=opts.tail):
            if until is not None and _sort_key(rec.time) >= until:
                break  # a log is in time order
            write(fmt(src, rec.time, rec.line))
        printer.out.flush()
        return

    def stream(i: int, src: Source):
        for rec in runtime.logs(src.id, follow=False, since=opts.since, tail=opts.tail):
            t = rec.time
            # (time, source order, record): plain tuples merge at C speed; the order breaks ties
            key = t if len(t) == 30 and t[19] == "." else _sort_key(t)
            if until is not None and key >= until:
                break
            yield key, i, rec

    ordered = sorted(sources, key=lambda s: s.name)
    for _, i, rec in heapq.merge(*(stream(i, s) for i, s in enumerate(ordered))):
        write(fmt(ordered[i], rec.time, rec.line))
    printer.out.flush()


def until_key(until: float | None) -> str | None:
    """--until (epoch seconds) in the sortable text form _sort_key gives the records' times."""
    if until is None:
        return None
    secs = int(until)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{int((until - secs) * 1e9):09d}Z"


_RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


def _sort_key(text: str) -> str:
    """The monitors write UTC with 9 fraction digits: such times sort as text (strptime per record
    was half of `logs`); any other form is normalised to it."""
    if len(text) == 30 and _RFC3339_UTC.match(text):
        return text
    base, _, frac = text.rstrip("Z").partition(".")
    try:
        secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + "." + (frac + "0" * 9)[:9] + "Z"


class LogMux:
    """Follow many containers at once.

    run() returns when every followed container has exited and `discover` finds nothing new, or when
    `on_exit` returns True (abort-on-container-exit). KeyboardInterrupt propagates to the caller."""

    POLL = 0.5  # seconds between looks for new containers (recreate, scale)

    def __init__(self, runtime: Any, printer: LogPrinter, *,
                 on_exit: Callable[[Source, int | None], bool] | None = None,
                 discover: Callable[[], Sequence[Source]] | None = None,
                 busy: Callable[[], bool] | None = None) -> None:
        self.runtime = runtime
        self.printer = printer
        self.on_exit = on_exit
        self.discover = discover
        # True while another command changes the project (a recreate): its new containers are
        # about to appear, so the last stream ending is not the end
        self.busy = busy
        self._queue: queue.Queue[tuple[str, Source, Any]] = queue.Queue()
        self._seen: set[str] = set()
        self._live: set[str] = set()
        self.exit_codes: dict[str, int | None] = {}  # source name -> last exit code

    def add(self, source: Source, *, from_start: bool = False) -> None:
        if source.id in self._seen:
            return
        self._seen.add(source.id)
        self._live.add(source.id)
        self.printer.widen([source.name])
        opts = self.printer.opts
        t = threading.Thread(target=self._follow, args=(source, None if from_start else opts.tail),
                             name=f"logs-{source.name}", daemon=True)
        t.start()

    def _follow(self, source: Source, tail: int | None) -> None:
        try:
            until = until_key(self.printer.opts.until)
            for rec in self.runtime.logs(source.id, follow=True, since=self.printer.opts.since, tail=tail):
                if until is not None and _sort_key(rec.time) >= until:
                    break  # --until: the stream ends there
                self._queue.put(("line", source, rec))
        except Exception as err:  # a removed container ends its stream; others go on
            if type(err).__name__ != "NotFoundError":
                self._queue.put(("error", source, err))
        # read the outcome now: a recreate or `down` may remove the container right after it ends
        try:
            info = self.runtime.get(source.id)
            outcome = None if info.status == "created" else (info.exit_code,)
        except Exception:  # noqa: BLE001 - gone already: nothing certain to announce
            outcome = None
        self._queue.put(("end", source, outcome))

    def run(self) -> None:
        next_poll = time.monotonic() + self.POLL
        while True:
            if not self._live:
                if not self._poll() and not self._linger():
                    return
                next_poll = time.monotonic() + self.POLL
                continue
            try:
                kind, src, payload = self._queue.get(timeout=max(0.0, next_poll - time.monotonic()))
            except queue.Empty:
                self.printer.out.flush()
                self._poll()
                next_poll = time.monotonic() + self.POLL
                continue
            if kind == "line":
                self.printer.line(src, payload.time, payload.line)
                if self._queue.empty():
                    self.printer.out.flush()
            elif kind == "error":
                self.printer.notice(f"{src.name}: cannot read logs: {payload}")
            elif kind == "end":
                self._live.discard(src.id)
                if self._ended(src, payload):
                    self.printer.out.flush()
                    return

    def _poll(self) -> bool:
        """Pick up containers that appeared since; True when there was something new."""
        if self.discover is None:
            return False
        found = False
        for s in self.discover():
            if s.id not in self._seen and s.running:
                self.add(s, from_start=True)  # a newcomer (recreate, scale): all it has said
                found = True
        return found

    def _linger(self) -> bool:
        """All streams ended: wait while the project is being changed, for its new containers."""
        while self.busy is not None and self.busy():
            time.sleep(self.POLL / 5)
            if self._poll():
                return True
        return self._poll()

    def _ended(self, src: Source, outcome: tuple[int | None] | None) -> bool:
        if outcome is None:
            return False  # never ran, or removed before we could read its exit
        code = outcome[0]
        if src.running:
            self.exit_codes[src.name] = code
            self.printer.exited(src, code)
            if self.on_exit is not None:
                return bool(self.on_exit(src, code))
        return False
