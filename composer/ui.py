"""Rendering for the project verbs: status/port/command texts as docker prints them, tables (plain
or rich), and the progress display of up/down (rich live lines on a terminal, plain lines otherwise).

rich is imported lazily: `composer ps` into a pipe must not pay for it. Objects rendered here are
duck-typed (runtime.ContainerInfo, project.Event), so this module imports nothing below it."""

from __future__ import annotations

import shlex
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Sequence, TextIO

from composer.units import format_duration

# ------------------------------------------------------------------ texts


def ago(t: float | None, now: float | None = None) -> str:
    if not t:
        return ""
    now = time.time() if now is None else now
    return f"{format_duration(max(0.0, now - t))} ago"


def status_text(info: Any, now: float | None = None) -> str:
    """'Up 3 seconds (healthy)', 'Exited (0) 2 minutes ago', 'Created', as `docker ps` says."""
    now = time.time() if now is None else now
    status = info.status
    notes = [n for n in (getattr(info, "health", None),) if n]
    if getattr(info, "restart_count", 0):  # the restart policy at work: docker hides it, users ask
        notes.append(f"restarts: {info.restart_count}")
    health = f" ({', '.join(notes)})" if notes else ""
    if status in ("running", "paused"):
        up = f"Up {format_duration(max(0.0, now - (info.started_at or now)))}"
        return up + (" (Paused)" if status == "paused" else health)
    if status == "restarting":
        code = 0 if info.exit_code is None else info.exit_code
        return f"Restarting ({code}) {ago(info.finished_at, now)}".rstrip()
    if status == "exited":
        code = "?" if info.exit_code is None else info.exit_code
        oom = " (OOM killed)" if getattr(info, "oom_killed", False) else ""
        return f"Exited ({code}){oom} {ago(info.finished_at, now)}".rstrip()
    return status.capitalize()


def ports_text(info: Any) -> str:
    """'127.0.0.1:8080->80/tcp, 0.0.0.0:8081->81/udp'; exposed-only ports as '80/tcp'."""
    published = getattr(info, "ports", ()) or ()
    out = [f"{p.host_ip or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}" for p in published]
    if not published and info.status in ("running", "paused"):
        out = [f"{p.container_port}/{p.protocol}" for p in (getattr(info.spec, "ports", ()) or ())]
    return ", ".join(out)


def command_text(argv: Sequence[str], trunc: bool = True) -> str:
    cmd = shlex.join(argv)
    if trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    return f'"{cmd}"'


@dataclass(frozen=True)
class PsRow:
    name: str
    image: str
    command: str
    service: str
    created: str
    status: str
    ports: str


PS_HEADERS = ("NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS")


def ps_row(info: Any, now: float | None = None, no_trunc: bool = False) -> PsRow:
    return PsRow(info.name, info.spec.image, command_text(info.spec.argv, not no_trunc),
                 info.label("composer.service", "") or "", ago(info.created_at, now), status_text(info, now),
                 ports_text(info))


def ps_json(info: Any, project: str, now: float | None = None) -> dict:
    """One container as `docker compose ps --format json` prints it (one object per line)."""
    now = time.time() if now is None else now
    pubs = [{"URL": p.host_ip or "0.0.0.0", "TargetPort": p.container_port, "PublishedPort": p.host_port,
             "Protocol": p.protocol} for p in (info.ports or ())]
    return {
        "Command": command_text(info.spec.argv, False), "CreatedAt": _iso(info.created_at), "ExitCode":
        info.exit_code or 0, "Health": info.health or "", "ID": info.id, "Image": info.spec.image,
        "Labels": ",".join(f"{k}={v}" for k, v in info.spec.labels), "Name": info.name, "Names": info.name,
        "Project": project, "Publishers": pubs, "RunningFor": ago(info.created_at, now),
        "Service": info.label("composer.service", "") or "", "State": info.status,
        "Status": status_text(info, now), "RestartCount": getattr(info, "restart_count", 0),
    }


def _iso(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(t)) if t else ""


# ------------------------------------------------------------------ tables


def plain_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded like docker's tabwriter (three spaces between columns)."""
    table = [tuple(headers), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    return "".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in table)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO | None = None,
                *, use_rich: bool | None = None, colour: bool = True, width: int | None = None) -> None:
    """A rich table on a terminal; plain aligned text into pipes and files (and much faster)."""
    out = sys.stdout if out is None else out
    if use_rich is None:
        use_rich = _isatty(out)
    if not use_rich:
        out.write(plain_table(headers, rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", padding=(0, 3, 0, 0))
    for h in headers:
        table.add_column(h, no_wrap=True, overflow="ignore")
    for r in rows:
        table.add_row(*r)
    # Never fold cells into several lines: like docker, a row wider than the terminal just wraps.
    natural = sum(max(len(str(c)) for c in col) + 3 for col in zip(headers, *rows))
    console = Console(file=out, color_system="auto" if colour else None, highlight=False, force_terminal=True,
                      width=width or max(natural, 80))
    console.print(table, crop=False)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# ------------------------------------------------------------------ progress

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
    tty = _isatty(stream)
    if mode == "plain" or (mode == "auto" and (not tty or ansi == "never")):
        return PlainProgress(stream)
    return TtyProgress(stream, colour=ansi != "never", title=title)
