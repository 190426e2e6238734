"""Helpers around projects: `composer ls` (projects on this host, from container labels), `top`
(a container's processes, read from /proc: no subprocess per container) and which services a
`restart` takes along (restart_set, pure)."""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from composer.runtime import Runtime
from composer.service.links import L_PROJECT

L_FILES = "composer.config-files"


@dataclass(frozen=True)
class ProjectSummary:
    """One line of `ls`: a project, its status counts and its files."""

    name: str
    status: str  # "running(2), exited(1)" as docker compose ls
    config_files: str


def list_projects(runtime: Runtime | None = None, *, all: bool = True) -> list[ProjectSummary]:
    runtime = runtime or Runtime()
    counts: dict[str, dict[str, int]] = {}
    files: dict[str, str] = {}
    for c in runtime.list(all=True):
        name = c.label(L_PROJECT)
        if not name:
            continue
        counts.setdefault(name, {})
        counts[name][c.status] = counts[name].get(c.status, 0) + 1
        files.setdefault(name, c.label(L_FILES) or "")
    out = []
    for name in sorted(counts):
        by = counts[name]
        if not all and not by.get("running"):
            continue
        status = ", ".join(f"{s}({n})" for s, n in sorted(by.items(), key=lambda kv: (kv[0] != "running", kv[0])))
        out.append(ProjectSummary(name, status, files[name]))
    return out


def restart_set(model: Any, services: Sequence[str], *, no_deps: bool = False) -> tuple[str, ...]:
    """What `restart SERVICE...` restarts, as docker compose v2: the services named, and every
    service that declares `depends_on: {x: {restart: true}}` on one of them, transitively (its
    dependency goes down under it). No services named means all of them: nothing to add."""
    if not services or model is None or no_deps:
        return tuple(services)
    chosen, todo = set(services), list(services)
    while todo:
        target = todo.pop()
        for name, s in model.services.items():
            dep = s.depends_on.get(target)
            if dep is not None and dep.restart and name not in chosen:
                chosen.add(name)
                todo.append(name)
    return tuple(sorted(chosen))


def _ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def top_rows(pid: int | None) -> list[tuple[str, ...]]:
    """(UID PID PPID C STIME TTY TIME CMD) of every process in the PID namespace of `pid`."""
    if not pid:
        return []
    ns = _ns(pid)
    if ns is None:
        return []
    hz = os.sysconf("SC_CLK_TCK")
    boot = _boot_time()
    now = time.time()
    rows = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or _ns(int(entry)) != ns:
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
            uid = os.stat(f"/proc/{entry}").st_uid
        except OSError:
            continue
        comm_end = stat.rfind(")")
        fields = stat[comm_end + 2:].split()
        ppid, utime, stime, start = int(fields[1]), int(fields[11]), int(fields[12]), int(fields[19])
        started = boot + start / hz
        cpu = int(100 * (utime + stime) / hz / max(now - started, 1e-3))
        secs = (utime + stime) // hz
        rows.append((_user(uid), entry, str(ppid), str(cpu), time.strftime("%H:%M", time.localtime(started)), "?",
                     f"{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}",
                     cmd or "[" + stat[stat.find("(") + 1:comm_end] + "]"))
    return sorted(rows, key=lambda r: int(r[1]))
