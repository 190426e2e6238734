"""The texts of a container's `ps` line as docker prints them (status, ports, command, ages) and
the plain table: imports time and units only (no re, shlex or dataclasses: the lean `ps`,
cli/leanps.py, renders with these; ui.tables builds rows and rich tables on them). Objects are
duck-typed (runtime ContainerInfo, or leanps' rows read from the same files)."""

from __future__ import annotations

import time

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, Iterable, Sequence

from composer.units import format_duration

PS_HEADERS = ("NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS")


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
    cmd = " ".join(map(quote, argv))
    if trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    return f'"{cmd}"'



# shlex.quote's safe characters (its regex [^\w@%+=:,./-] with re.ASCII), without importing re
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


def quote(s: str) -> str:
    """shlex.quote(s) (tests/unit/test_ui.py holds them equal)."""
    if not s:
        return "''"
    if all(c in _SAFE for c in s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


def plain_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded like docker's tabwriter (three spaces between columns)."""
    table = [tuple(headers), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    return "".join("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in table)
