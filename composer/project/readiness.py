"""Readiness: when a dependency counts as ready for its dependent (depends_on conditions
service_started / service_healthy / service_completed_successfully, `required`), and when a whole
stack counts as up (`up --wait`). Health and exit codes are read from the runtime's state
(ContainerInfo.health, .exit_code), which the container's monitor keeps: nothing here runs probes.

`judge_*` are pure (unit tested on fake infos); ReadinessMixin is the polling part of ProjectRunner."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from composer.errors import ComposerError, ContainerError
from composer.project.parallel import DependencyFailed
from composer.service.links import L_SERVICE

OK, WAIT, FAIL = "ok", "wait", "fail"
POLL = 0.05  # seconds: a dependent starts within ~this of its dependency turning healthy
STARTED, HEALTHY, COMPLETED = "service_started", "service_healthy", "service_completed_successfully"


class DependencyError(ContainerError):
    """A dependency did not become ready: the dependent was not started."""


def unrecorded(info: Any) -> bool:
    """PID 1 is gone but its monitor has not written the exit code yet (a moment's race)."""
    return info.status in ("exited", "dead") and info.exit_code is None and info.monitor_pid is not None


def judge_dependency(info: Any, condition: str) -> tuple[str, str]:
    """(OK|WAIT|FAIL, words) for one container of a dependency under a depends_on condition."""
    if condition == COMPLETED:
        if info.status in ("running", "paused", "restarting") or unrecorded(info):
            return WAIT, "to complete"
        if info.status == "created":
            return FAIL, "was never started"
        if info.exit_code == 0:
            return OK, "exited (0)"
        return FAIL, f"exited with code {info.exit_code}"
    if condition == HEALTHY:
        if info.spec.healthcheck is None:
            return FAIL, "has no healthcheck"
        if info.health == "healthy":
            return OK, "healthy"
        if info.health == "unhealthy":
            return FAIL, "is unhealthy"
        if info.status in ("exited", "dead", "created"):
            return FAIL, f"is not running ({info.status}, code {info.exit_code})"
        return WAIT, "to be healthy"
    # service_started: it has been started; exiting since is fine (compose)
    if info.status == "created":
        return FAIL, "was never started"
    return OK, "started"


SETTLE = 0.5  # seconds a container without healthcheck must have stayed up to count as running


def judge_ready(info: Any, one_shot: bool = False, now: float | None = None) -> tuple[str, str]:
    """`up --wait`: running (and healthy when it has a healthcheck); a one-shot (something waits
    for it to complete) may have exited with 0. Without a healthcheck it must have stayed up
    SETTLE seconds, so that a command failing at once is not reported as ready."""
    if unrecorded(info):
        return WAIT, "to record its exit"
    if info.status in ("exited", "dead"):
        if one_shot and info.exit_code == 0:
            return OK, "exited (0)"
        return FAIL, f"exited with code {info.exit_code}"
    if info.status == "created":
        return FAIL, "was not started"
    if info.spec.healthcheck is not None:
        if info.health == "healthy":
            return OK, "healthy"
        if info.health == "unhealthy":
            return FAIL, "is unhealthy"
        return WAIT, "to be healthy"
    if info.status == "restarting":
        return WAIT, "to stop restarting"
    now = time.time() if now is None else now
    if info.started_at is not None and now - info.started_at < SETTLE:
        return WAIT, "to stay up"
    return OK, "running"


def health_timeout(hc: Any) -> float:
    """How long a healthcheck may take to pass at most: the start period, then retries+1
    failed probes each up to interval+timeout, and a second of slack."""
    if hc is None:
        return 10.0
    return hc.start_period + (hc.retries + 1) * (hc.interval + hc.timeout) + 1.0


def one_shots(model: Any) -> set[str]:
    """Services some other service waits for with service_completed_successfully."""
    out: set[str] = set()
    for svc in (model.services.values() if model is not None else ()):
        out |= {d for d, dep in svc.depends_on.items() if dep.condition == COMPLETED}
    return out


class ReadinessMixin:
    """Waits done by ProjectRunner (emit/runtime/containers/model/_warn_once come from it)."""

    def _wait_dependencies(self, service: Any, selected: Iterable[str], failed: set[str],
                           timeout: float | None = None) -> None:
        """Block until every dependency of `service` meets its condition. A failed dependency
        raises (naming both) unless it is `required: false`, which only warns."""
        selected = set(selected)
        for dep, cond in sorted(service.depends_on.items()):
            problem = None
            if dep in failed:
                problem = f"dependency {dep} failed to start"
            elif dep not in self.model.services:
                problem = f"dependency {dep} is not an active service"
            elif dep in selected or cond.condition != STARTED:
                problem = self._await_condition(service.name, dep, cond.condition, timeout)
            if problem is None:
                continue
            text = f"service {service.name}: {problem}"
            if not cond.required:
                self._warn_once(service.name, text + " (required: false, starting anyway)")
                continue
            cls = DependencyFailed if dep in failed else DependencyError
            raise cls(f"service {service.name} not started: {problem}")

    def _await_condition(self, dependent: str, dep: str, condition: str, timeout: float | None) -> str | None:
        """None when ready, else why not. Emits Waiting/Healthy/Exited events on the dependency's
        containers, as compose does."""
        containers = self.containers([dep], all=True)
        if not containers:
            return f"dependency {dep} has no container"
        if condition == HEALTHY and timeout is None:
            timeout = max(health_timeout(c.spec.healthcheck) for c in containers)
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting: set[str] = set()
        while True:
            verdicts = [(c, *judge_dependency(c, condition)) for c in containers]
            for c, verdict, words in verdicts:
                if verdict == WAIT and c.id not in waiting:
                    waiting.add(c.id)
                    self.emit("container", c.name, "Waiting", dep, f"{words} (for {dependent})")
                elif verdict != WAIT and c.id in waiting:
                    waiting.discard(c.id)
                    action = {HEALTHY: "Healthy", COMPLETED: "Exited"}.get(condition, "Started")
                    self.emit("container", c.name, action if verdict == OK else "Error", dep, words)
            bad = next(((c, words) for c, v, words in verdicts if v == FAIL), None)
            if bad is not None:
                return f"dependency {dep} ({bad[0].name}) {bad[1]} (condition {condition})"
            if all(v == OK for _, v, _ in verdicts):
                return None
            if deadline is not None and time.monotonic() > deadline:
                c, _, words = next(x for x in verdicts if x[1] == WAIT)
                health = c.health or "no health status reported by the runtime"
                return (f"dependency {dep} ({c.name}) still waiting {words} after {timeout:.0f}s "
                        f"(condition {condition}; health: {health})")
            time.sleep(POLL)
            containers = [self._refetch(c) for c in containers]

    def _refetch(self, info: Any) -> Any:
        try:
            return self.runtime.get(info.id)
        except ComposerError:
            return info

    def wait_ready(self, services: Sequence[str] = (), timeout: float | None = None) -> list[Any]:
        """`up --wait`: until every container of `services` (all by default) is ready; raises
        ContainerError naming the first that cannot become ready or the ones still waiting."""
        shots = one_shots(self.model)
        todo = {c.id: c for c in self.containers(services, all=True)}
        if timeout is None:  # a check that never settles (no monitor reporting health) must not hang
            checks = [health_timeout(c.spec.healthcheck) for c in todo.values() if c.spec.healthcheck]
            timeout = max(checks) if checks else 60.0
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting: set[str] = set()
        while True:
            pending = []
            for cid, c in sorted(todo.items(), key=lambda kv: kv[1].name):
                verdict, words = judge_ready(c, c.label(L_SERVICE) in shots)
                svc = c.label(L_SERVICE)
                if verdict == FAIL:
                    self.emit("container", c.name, "Error", svc, words)
                    raise ContainerError(f"container {c.name} {words}")
                if verdict == WAIT:
                    pending.append((c, words))
                    if cid not in waiting:
                        waiting.add(cid)
                        self.emit("container", c.name, "Waiting", svc, words)
                else:
                    del todo[cid]
                    self.emit("container", c.name, "Healthy" if words == "healthy" else "Running", svc)
            if not pending:
                return self.containers(services, all=True)
            if deadline is not None and time.monotonic() > deadline:
                names = ", ".join(f"{c.name} ({words}; health: {c.health or 'none reported'})" for c, words in pending)
                err = ContainerError(f"not ready after {timeout:g}s: {names}")
                raise err
            time.sleep(POLL)
            todo = {cid: self._refetch(c) for cid, c in todo.items()}
