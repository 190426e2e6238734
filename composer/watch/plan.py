"""A batch of changed paths -> what to do, per service, in the order the spec implies: rebuild,
then sync, then restart, then exec, each at most once per service. A rebuild makes the others
moot for its service (the new container starts from the rebuilt image). Paths no rule takes are
explained: no rule covers them, or which pattern of which rule ignored them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from composer.watch.rules import Rule


@dataclass
class ServicePlan:
    rebuild: bool = False
    syncs: dict[Rule, list[str]] = field(default_factory=dict)  # rule -> changed paths, in order
    restart: bool = False
    execs: list[Rule] = field(default_factory=list)


@dataclass
class Plan:
    reload: bool = False  # a stack file, env_file or .env changed
    services: dict[str, ServicePlan] = field(default_factory=dict)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, why nothing acts on it)

    @property
    def empty(self) -> bool:
        return not self.reload and not self.services

    def steps(self) -> list[tuple[str, str, ServicePlan]]:
        """(step, service, plan) in execution order: every rebuild, then syncs, restarts, execs."""
        out = []
        for step in ("rebuild", "sync", "restart", "exec"):
            for name, sp in self.services.items():
                if step == "rebuild" and sp.rebuild:
                    out.append((step, name, sp))
                elif not sp.rebuild and ((step == "sync" and sp.syncs) or (step == "restart" and sp.restart)
                                         or (step == "exec" and sp.execs)):
                    out.append((step, name, sp))
        return out


def plan(paths: Iterable[str], rules: Sequence[Rule], stack_files: set[str] = frozenset(),
         is_dir=lambda p: False) -> Plan:
    out = Plan()
    for path in paths:
        if path in stack_files:
            out.reload = True
            continue
        covering = [r for r in rules if r.covers(path)]
        if not covering:
            out.notes.append((path, "matches no watch rule"))
            continue
        reasons = []
        for r in covering:
            why = r.ignore.why(path, is_dir(path))
            if why:
                reasons.append(f"{why} ({r.name})")
                continue
            _take(out.services.setdefault(r.service, ServicePlan()), r, path)
        if reasons and not any(not r.ignore.why(path, is_dir(path)) for r in covering):
            out.notes.append((path, "; ".join(reasons)))
    return out


def _take(sp: ServicePlan, r: Rule, path: str) -> None:
    if r.action == "rebuild":
        sp.rebuild = True
        return
    if r.action == "restart":
        sp.restart = True
        return
    changed = sp.syncs.setdefault(r, [])
    if path not in changed:
        changed.append(path)
    if r.action == "sync+restart":
        sp.restart = True
    elif r.action == "sync+exec" and r not in sp.execs:
        sp.execs.append(r)
