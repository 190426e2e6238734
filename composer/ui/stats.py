"""`stats` rendered as docker prints it: the columns (CONTAINER ID, NAME, CPU %, MEM USAGE / LIMIT,
MEM %, NET I/O, BLOCK I/O, PIDS) with docker's size spellings, `--format json` lines and Go
templates over the same keys docker's templates see (.Container, .Name, .ID, .CPUPerc, .MemUsage,
.MemPerc, .NetIO, .BlockIO, .PIDs), and the live table (rich, redrawn in place) until Ctrl-C.
Readings are duck-typed (runtime.container.stats.Sample); CPU % comes with each row."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Sequence, TextIO

HEADERS = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS")


def _custom(size: float, base: float, units: Sequence[str], precision: int) -> str:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return f"{size:.{precision}g}{units[i]}"


def binary_size(n: float) -> str:
    """docker's units.BytesSize: 412KiB, 64MiB, 1.953GiB."""
    return _custom(float(n), 1024.0, ("B", "KiB", "MiB", "GiB", "TiB", "PiB"), 4)


def human_size(n: float) -> str:
    """docker's units.HumanSizeWithPrecision(n, 3): 516B, 1.17kB, 23.4MB."""
    return _custom(float(n), 1000.0, ("B", "kB", "MB", "GB", "TB", "PB"), 3)


def row(sample: Any, cpu: float, no_trunc: bool = False) -> dict[str, str]:
    """The keys docker's stats templates and `--format json` use, as docker spells the values."""
    running = sample.running
    return {
        "BlockIO": f"{human_size(sample.block_read)} / {human_size(sample.block_write)}" if running else "0B / 0B",
        "CPUPerc": f"{cpu:.2f}%",
        "Container": sample.id if no_trunc else sample.id[:12],
        "ID": sample.id if no_trunc else sample.id[:12],
        "MemPerc": f"{sample.memory_percent:.2f}%",
        "MemUsage": f"{binary_size(sample.memory)} / {binary_size(sample.memory_limit)}",
        "Name": sample.name,
        "NetIO": f"{human_size(sample.net_rx)} / {human_size(sample.net_tx)}",
        "PIDs": str(sample.pids),
    }


def cells(r: dict[str, str]) -> tuple[str, ...]:
    return (r["ID"], r["Name"], r["CPUPerc"], r["MemUsage"], r["MemPerc"], r["NetIO"], r["BlockIO"], r["PIDs"])


def render(rows: Sequence[dict[str, str]], fmt: str | None) -> str:
    """One screenful: the table, or --format's json lines / Go template (ui.listformat)."""
    from composer.ui import listformat

    if listformat.custom(fmt):
        return listformat.render(rows, fmt, TITLES)
    from composer.ui.tables import plain_table

    return plain_table(HEADERS, [cells(r) for r in rows])


TITLES = {"BlockIO": "BLOCK I/O", "CPUPerc": "CPU %", "Container": "CONTAINER", "ID": "CONTAINER ID",
          "MemPerc": "MEM %", "MemUsage": "MEM USAGE / LIMIT", "Name": "NAME", "NetIO": "NET I/O", "PIDs": "PIDS"}


def live(read: Callable[[], Iterable[dict[str, str]]], fmt: str | None, out: TextIO, interval: float = 1.0) -> None:
    """Redraw the readings every interval until Ctrl-C (rich's Live on a terminal; into a pipe, a
    screen after another, as docker's plain output)."""
    import time

    from composer.ui.tables import isatty

    if not isatty(out):
        while True:
            out.write(render(list(read()), fmt))
            out.flush()
            time.sleep(interval)
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(file=out, highlight=False)
    with Live(Text(render(list(read()), fmt).rstrip("\n")), console=console, auto_refresh=False,
              transient=False) as view:
        while True:
            time.sleep(interval)
            view.update(Text(render(list(read()), fmt).rstrip("\n")), refresh=True)
