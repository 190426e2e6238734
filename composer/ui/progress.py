"""The progress display of up/down and the other project verbs: rich live lines on a terminal,
plain lines otherwise, nothing with --progress quiet.

rich is imported lazily (only TtyProgress uses it). Events are duck-typed (project Event: kind,
name, action, detail, service), so this module imports nothing below it."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

from composer.ui.tables import isatty

def kind_text(kind: str) -> str:
    """The runner says "container"; compose shows "Container"."""
    return kind[:1].upper() + kind[1:]


def plain_line(event: Any) -> str:
    detail = getattr(event, "detail", "") or ""
    if event.action == "Warning" and not getattr(event, "service", None):
        return f"WARNING: {detail}"  # about the project, not one object
    line = f"{kind_text(event.kind)} {event.name}  {event.action}"
    return line + (f"  {detail}" if detail else "")


BUSY = {"Creating", "Starting", "Waiting", "Stopping", "Removing", "Recreating", "Killing", "Restarting",
        "Pulling", "Building"}
FAILED = {"Error"}


class PlainProgress:
    """`Container example-db-1  Started` lines, one per event: for pipes, CI logs, --progress plain."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            line = plain_line(event)
            self.stream.write(line + "\n")
            self.stream.flush()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class QuietProgress(PlainProgress):
    def __call__(self, event: Any) -> None:
        if event.action in FAILED:
            super().__call__(event)


@dataclass
class _Item:
    """One line of the up/down display: a container, network or volume and its last action."""

    kind: str
    name: str
    action: str
    detail: str
    started: float
    ended: float | None


class TtyProgress:
    """docker compose v2's live display: a header and one line per object with a spinner while it
    is busy, then `✔ Container example-db-1  Started  0.3s`. Events may come from any thread."""

    def __init__(self, stream: TextIO | None = None, *, colour: bool = True, title: str = "Running",
                 width: int | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.colour = colour
        self.title = title
        self.width = width
        self._items: dict[tuple[str, str], _Item] = {}
        self._warnings: list[str] = []
        self._lock = threading.Lock()
        self._live: Any = None

    def __call__(self, event: Any) -> None:
        now = time.monotonic()
        key = (kind_text(event.kind), event.name)
        with self._lock:
            if event.action == "Warning" and not getattr(event, "service", None):
                self._warnings.append(plain_line(event))
                return
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = _Item(kind_text(event.kind), event.name, event.action, "", now, None)
            elif item.ended is not None and event.action in BUSY:
                item.started = now  # a new phase (e.g. Stopping after Started): time it afresh
            item.action, item.detail = event.action, getattr(event, "detail", "") or ""
            item.ended = None if event.action in BUSY else now
        if self._live is not None:
            self._live.refresh()

    def __enter__(self) -> "TtyProgress":
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.stream, no_color=not self.colour, width=self.width, highlight=False)
        self._live = Live(get_renderable=self.renderable, console=console, refresh_per_second=10,
                          transient=False, redirect_stdout=False, redirect_stderr=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.__exit__(None, None, None)

    def renderable(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        with self._lock:
            items = list(self._items.values())
            warnings = list(self._warnings)
        done = sum(1 for i in items if i.ended is not None)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=1)
        grid.add_column()
        grid.add_column()
        grid.add_column(justify="right")
        name_w = max((len(i.kind) + 1 + len(i.name) for i in items), default=0)
        for i in items:
            if i.ended is None:
                mark: Any = Spinner("dots", style="blue")
                style = "blue"
            elif i.action in FAILED:
                mark, style = Text("✘", style="red"), "red"
            elif i.action == "Warning":
                mark, style = Text("!", style="yellow"), "yellow"
            else:
                mark, style = Text("✔", style="green"), "green"
            label = f"{i.kind} {i.name}".ljust(name_w + 1)
            action = i.action + (f" {i.detail}" if i.detail else "")
            elapsed = (i.ended or now) - i.started
            grid.add_row(mark, Text(label), Text(action, style=style), Text(f"{elapsed:.1f}s", style="blue"))
        header = Text(f"[+] {self.title} {done}/{len(items)}", style="bold")
        outer = Table.grid()
        for w in warnings:
            outer.add_row(Text(w, style="yellow"))
        outer.add_row(header)
        outer.add_row(grid)
        return outer

    def plain_lines(self) -> list[str]:
        """The final state as text (tests, and a fallback for consoles that cannot redraw)."""
        with self._lock:
            items = list(self._items.values())
        return [f"{i.kind} {i.name}  {i.action}" for i in items]


def make_progress(mode: str = "auto", ansi: str = "auto", stream: TextIO | None = None,
                  title: str = "Running") -> PlainProgress | QuietProgress | TtyProgress:
    """--progress auto|tty|plain|quiet and --ansi never|always|auto -> a progress renderer."""
    stream = sys.stderr if stream is None else stream
    if mode == "quiet":
        return QuietProgress(stream)
    tty = isatty(stream)
    if mode == "plain" or (mode == "auto" and (not tty or ansi == "never")):
        return PlainProgress(stream)
    return TtyProgress(stream, colour=ansi != "never", title=title)
