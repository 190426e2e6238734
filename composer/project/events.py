"""`composer events`: the project's container events as a stream, derived by polling the
runtime's state files (there is no daemon to ask): each look is compared with the previous one
and every difference becomes an event (create, start, die, pause, unpause, health_status,
destroy), printed in docker compose's text or JSON shape. `diff` is pure (unit tested)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from composer.service.links import L_PROJECT, L_SERVICE


@dataclass(frozen=True)
class Facts:
    """What a look at one container tells."""

    name: str
    service: str
    image: str
    status: str
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    health: str | None
    created_at: float | None = None


@dataclass(frozen=True)
class ContainerEvent:
    time: float
    action: str  # create start die pause unpause destroy "health_status: healthy"
    id: str
    service: str
    attributes: tuple[tuple[str, str], ...] = field(default=())

    def to_json(self) -> dict:
        """As `docker compose events --json` prints one event."""
        return {"time": rfc3339(self.time), "type": "container", "action": self.action, "id": self.id,
                "service": self.service, "attributes": dict(self.attributes)}

    def to_text(self) -> str:
        attrs = ", ".join(f"{k}={v}" for k, v in self.attributes)
        return f"{rfc3339(self.time)} container {self.action} {self.id} ({attrs})"


def rfc3339(t: float) -> str:
    whole = int(t)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((t - whole) * 1e9):09d}Z"


def facts_of(info: Any) -> Facts:
    return Facts(info.name, info.label(L_SERVICE) or "", info.spec.image, info.status, info.started_at,
                 info.finished_at, info.exit_code, info.health, info.created_at)


def diff(before: dict[str, Facts], after: dict[str, Facts], now: float) -> list[ContainerEvent]:
    """The events that lead from one look to the next, in a stable order."""
    out: list[ContainerEvent] = []

    def ev(cid: str, f: Facts, action: str, **extra: str) -> None:
        attrs = (("image", f.image), ("name", f.name), *sorted(extra.items()))
        out.append(ContainerEvent(now, action, cid, f.service, attrs))

    for cid, f in sorted(after.items(), key=lambda kv: kv[1].name):
        old = before.get(cid)
        if old is None:
            ev(cid, f, "create")
            if f.started_at is not None:
                ev(cid, f, "start")
            if f.finished_at is not None and f.status in ("exited", "dead"):
                ev(cid, f, "die", exitCode=str(f.exit_code))
            continue
        # a restart between two looks: it died (finished_at moved) and started again; or the last look
        # came after PID 1 died but before its monitor recorded the exit (finished_at still unset)
        if f.finished_at != old.finished_at and f.finished_at is not None and \
                (old.status in ("running", "paused", "restarting") or f.started_at != old.started_at
                 or old.finished_at is None):
            ev(cid, f, "die", exitCode=str(f.exit_code))
        if f.started_at != old.started_at and f.started_at is not None:
            ev(cid, f, "start")
        if old.status != "paused" and f.status == "paused":
            ev(cid, f, "pause")
        elif old.status == "paused" and f.status == "running":
            ev(cid, f, "unpause")
        if f.health != old.health and f.health:
            ev(cid, f, f"health_status: {f.health}")
    for cid, f in sorted(before.items(), key=lambda kv: kv[1].name):
        if cid not in after:
            ev(cid, f, "destroy")
    return out


def history(facts: dict[str, Facts]) -> list[ContainerEvent]:
    """The past that the state files still tell, in time order: each container's create, its
    last start and, if it has exited since, its die. (Earlier starts, and containers already
    removed, left no trace: there is no daemon keeping an event log.)"""
    out: list[ContainerEvent] = []
    for cid, f in facts.items():
        attrs = (("image", f.image), ("name", f.name))
        if f.created_at is not None:
            out.append(ContainerEvent(f.created_at, "create", cid, f.service, attrs))
        if f.started_at is not None:
            out.append(ContainerEvent(f.started_at, "start", cid, f.service, attrs))
        if f.finished_at is not None and f.status in ("exited", "dead") and \
                (f.started_at is None or f.finished_at >= f.started_at):
            out.append(ContainerEvent(f.finished_at, "die", cid, f.service,
                                      (*attrs, ("exitCode", str(f.exit_code)))))
    order = {"create": 0, "start": 1, "die": 2}
    return sorted(out, key=lambda e: (e.time, order[e.action], e.attributes))


def look(runtime: Any, project: str, services: Sequence[str] = ()) -> dict[str, Facts]:
    out = {}
    for info in runtime.list(all=True, labels={L_PROJECT: project}):
        if services and info.label(L_SERVICE) not in services:
            continue
        out[info.id] = facts_of(info)
    return out


def follow(runtime: Any, project: str, services: Sequence[str] = (), *, poll: float = 0.2,
           stop: Callable[[], bool] | None = None, since: float | None = None,
           until: float | None = None, clock: Callable[[], float] = time.time) -> Iterator[ContainerEvent]:
    """Events from now on (what exists when it starts is the baseline, not reported), as
    `docker events`: since: first the recorded past from that time on; until: end there (at
    once, after the past, when it is not in the future)."""
    before = look(runtime, project, services)
    if since is not None:
        yield from (e for e in history(before) if e.time >= since and (until is None or e.time <= until))
    while (stop is None or not stop()) and (until is None or clock() < until):
        time.sleep(poll if until is None else max(0.0, min(poll, until - clock())))
        after = look(runtime, project, services)
        now = clock()
        if until is not None and now > until:
            return  # what changed after `until` is not reported
        yield from diff(before, after, now)
        before = after


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$")
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_time(text: str, now: float | None = None) -> float:
    """docker's --since/--until values: a Go duration (`10m`, `1h30m`: that long before now), a
    Unix timestamp (`1700000000`, `1700000000.5`) or an RFC 3339 date-time (`2024-01-02`,
    `2024-01-02T15:04:05Z`, an offset; local time without one). ValueError otherwise."""
    now = time.time() if now is None else now
    text = text.strip()
    m = _DURATION.match(text)
    if m:
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
        return now - seconds if m.group(1) != "-" else now + seconds
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is neither a timestamp (2024-01-02T15:04:05Z, 1700000000) "
                         "nor a duration (10m, 1h30m)") from None


__all__ = ["ContainerEvent", "Facts", "diff", "facts_of", "follow", "history", "look", "parse_time"]
