"""What an attached `up` (no -d) decides once the stack is up, following docker compose v2's rules:
whose logs it follows (--attach / --no-attach / the services named), when a container's exit ends
the session (--abort-on-container-exit / -failure; a one-shot others wait for with
service_completed_successfully is meant to end and never aborts), what an abort or Ctrl-C stops,
and the exit code (--exit-code-from). Pure: the CLI follows the logs and asks the plan."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from composer.project.readiness import one_shots


@dataclass(frozen=True)
class AttachOptions:
    services: tuple[str, ...] = ()  # the services `up` was asked for (empty: all)
    attach: tuple[str, ...] = ()
    no_attach: tuple[str, ...] = ()
    abort_on_container_exit: bool = False
    abort_on_container_failure: bool = False
    exit_code_from: str | None = None
    attach_dependencies: bool = False  # follow the dependencies of the services named too


@dataclass(frozen=True)
class AttachPlan:
    followed: frozenset[str]  # services whose logs are followed
    stop: tuple[str, ...]  # services an abort or Ctrl-C stops: those this up brought up
    one_shots: frozenset[str]
    opts: AttachOptions

    def follows(self, info: Any) -> bool:
        return info.label("composer.service", "") in self.followed

    def aborts(self, service: str, code: int | None) -> bool:
        """Does this exit end the session?"""
        if service in self.one_shots and code == 0:
            return False  # a one-shot that others wait for is meant to end: never an abort
        return self.opts.abort_on_container_exit or (self.opts.abort_on_container_failure
                                                     and code not in (0, None))

    def exit_code(self, aborted: tuple[int | None] | None, codes: Iterable[int | None],
                  exit_code_from: int | None = None) -> int:
        """aborted: (code,) of the exit that ended the session, None when none did; codes: every
        followed container's exit code; exit_code_from: that service's container's code."""
        if self.opts.exit_code_from:
            return int(exit_code_from or 0)
        if aborted is not None:
            return int(aborted[0] or 0)
        if self.opts.abort_on_container_failure:
            return max((int(c or 0) for c in codes), default=0)
        return 0


def plan(model: Any, infos: Sequence[Any], opts: AttachOptions) -> AttachPlan:
    """infos: the containers `up` returned."""
    started = {i.label("composer.service", "") for i in infos}
    if opts.attach:
        chosen = set(opts.attach)
    elif opts.services and not opts.attach_dependencies:
        chosen = set(opts.services)  # compose attaches to the named services, not their dependencies
    else:
        chosen = started
    if not opts.attach:  # `attach: false` in the file: not followed unless --attach names it
        services = getattr(model, "services", {}) or {}
        chosen = {n for n in chosen if getattr(services.get(n), "attach", True) is not False}
    if opts.exit_code_from:
        opts = replace(opts, abort_on_container_exit=True)
    return AttachPlan(frozenset(chosen - set(opts.no_attach)), tuple(sorted(started)),
                      frozenset(one_shots(model)), opts)
