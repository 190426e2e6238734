"""A service's `develop:` section (the schema has checked its shape) -> model.Develop: rule paths
made absolute, `ignore`/`include` as tuples, the exec hook's command split. What the schema cannot
say is checked here, each at the rule's file:line: a sync action needs an absolute `target`;
`exec` belongs to `sync+exec`, which needs it. Whether a path exists is decided when watching
starts (a missing path must not stop the stack from coming up)."""

from __future__ import annotations

from typing import Any

from composer.config import model as m
from composer.config.merge import kv_to_dict
from composer.config.shortsyntax import absolute

SYNCS = ("sync", "sync+restart", "sync+exec")


def develop(norm: Any, path: tuple, value: Any) -> m.Develop | None:
    """norm: the Normalizer (its err, bool_, argv and marks)."""
    if value is None:
        return None
    rules = []
    for i, raw in enumerate(value.get("watch") or ()):
        rules.append(_rule(norm, path + ("watch", i), raw))
    return m.Develop(watch=tuple(rules))


def _strs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (str(value),) if isinstance(value, str) else tuple(str(v) for v in value)


def _rule(norm: Any, p: tuple, raw: dict) -> m.WatchRule:
    action = str(raw["action"])
    target = raw.get("target")
    if action in SYNCS:
        if not target:
            raise norm.err(p, f"action {action} needs a target (the path inside the container to sync to)")
        if not str(target).startswith("/"):
            raise norm.err(p + ("target",), f"target must be an absolute path in the container, not {target!r}")
    hook = raw.get("exec")
    if action == "sync+exec" and hook is None:
        raise norm.err(p, "action sync+exec needs exec: {command: [...]}")
    if hook is not None and action != "sync+exec":
        raise norm.err(p + ("exec",), f"exec is only run by action sync+exec, not {action}")
    mark = _mark(norm.marks, p)
    return m.WatchRule(
        action=action, path=absolute(str(raw["path"]), norm.wd), target=str(target) if target else None,
        ignore=_strs(raw.get("ignore")), include=_strs(raw.get("include")),
        initial_sync=bool(norm.bool_(p + ("initial_sync",), raw.get("initial_sync"))),
        exec=None if hook is None else _hook(norm, p + ("exec",), hook),
        where=f"{mark.file}:{mark.line}" if mark else f"develop.watch[{p[-1]}]")


def _hook(norm: Any, p: tuple, hook: dict) -> m.WatchExec:
    command = norm.argv(p + ("command",), hook.get("command"))
    if not command:
        raise norm.err(p + ("command",), "exec needs a command")
    env = kv_to_dict(hook.get("environment") or {})
    return m.WatchExec(command=command, user=hook.get("user") and str(hook["user"]),
                       privileged=bool(norm.bool_(p + ("privileged",), hook.get("privileged"))),
                       working_dir=hook.get("working_dir") and str(hook["working_dir"]),
                       environment=tuple(sorted((str(k), "" if v is None else str(v)) for k, v in env.items())))


def _mark(marks: Any, p: tuple) -> Any:
    while p:
        found = marks.get(p)
        if found:
            return found
        p = p[:-1]
    return None
