"""Rendering for the listing verbs: status/port/command texts as docker prints them, `ps` rows and
tables (plain, or rich on a terminal). The progress display of up/down is ui.progress.

rich is imported lazily: `composer ps` into a pipe must not pay for it. Objects rendered here are
duck-typed (runtime ContainerInfo), so this module imports nothing below it but units."""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every `ps`)
if TYPE_CHECKING:
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
    if not getattr(info, "supervised", True):  # its monitor died: no restarts, probes or log rotation
        notes.append("unsupervised")
    if getattr(info, "restart_count", 0):  # the restart policy at work: docker hides it, users ask
        notes.append(f"restarts: {info.restart_count}")
    if getattr(info, "monitor_error", None):  # nothing supervises it any more: say where to look
        notes.append(info.monitor_error)
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
        died = f" ({info.monitor_error})" if getattr(info, "monitor_error", None) else ""
        return f"Exited ({code}){oom}{died} {ago(info.finished_at, now)}".rstrip()
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
    """One line of `ps` (a docstring: without one, dataclasses imports inspect, ~6 ms, to write it)."""

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
        use_rich = isatty(out)
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


def isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
