"""Rendering for the listing verbs: `ps` rows and json, tables (plain, or rich on a terminal), on the
texts of ui.texts (status, ports, command as docker prints them). The progress display of up/down
is ui.progress.

rich is imported lazily: `composer ps` into a pipe must not pay for it. Objects rendered here are
duck-typed (runtime ContainerInfo), so this module imports nothing below it but units."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every `ps`)
if TYPE_CHECKING:
    from typing import Any, Sequence, TextIO

from composer.ui.texts import PS_HEADERS, ago, command_text, plain_table, ports_text, status_text

__all__ = ["PS_HEADERS", "PsRow", "ago", "command_text", "isatty", "plain_table", "ports_text", "print_table",
           "ps_json", "ps_row", "status_text"]

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
