"""The watched services' `develop.watch` rules, compiled: each rule's resolved path (a rule path
that is a symlink is followed), its ignore set, and a name for messages. Also the files whose edit
reloads the stack: the stack files, every `env_file`, `.env` and the `--env-file`s."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from composer.config.model import Project, Service, WatchRule
from composer.watch.ignore import IgnoreSet

SYNCS = ("sync", "sync+restart", "sync+exec")


@dataclass(frozen=True)
class Rule:
    service: str
    number: int  # 1-based, in the service's list
    spec: WatchRule
    path: str  # resolved
    shown: str  # the path as the user reads it (./app/src)
    ignore: IgnoreSet = field(compare=False, hash=False, repr=False)

    @property
    def action(self) -> str:
        return self.spec.action

    @property
    def syncs(self) -> bool:
        return self.action in SYNCS

    @property
    def name(self) -> str:
        return f"{self.service} rule {self.number} ({self.action} {self.shown}, {self.spec.where})"

    def covers(self, path: str) -> bool:
        return path == self.path or path.startswith(self.path + "/")

    def target_of(self, path: str) -> str:
        """Where a host path under the rule lands in the container."""
        assert self.spec.target is not None
        if path == self.path:
            return self.spec.target
        return os.path.join(self.spec.target, os.path.relpath(path, self.path))


def shown(path: str, working_dir: str) -> str:
    rel = os.path.relpath(path, working_dir)
    return "." if rel == "." else (f"./{rel}" if not rel.startswith("..") else path)


def compile_rules(model: Project, services: Sequence[str]) -> list[Rule]:
    out = []
    for name in services:
        s = model.services[name]
        for i, spec in enumerate(s.develop.watch if s.develop else (), 1):
            out.append(_rule(model, s, i, spec))
    return out


def _rule(model: Project, s: Service, number: int, spec: WatchRule) -> Rule:
    path = os.path.realpath(spec.path)
    context = dockerfile = None
    if s.build is not None and os.path.isdir(s.build.context):
        context, dockerfile = s.build.context, s.build.dockerfile or "Dockerfile"
    ignore = IgnoreSet(path, context=context, dockerfile=dockerfile, ignore=spec.ignore, include=spec.include)
    return Rule(s.name, number, spec, path, shown(spec.path, model.working_dir), ignore)


def stack_files(model: Project, env_files: Sequence[str] = ()) -> set[str]:
    """The files whose edit reloads the stack (absolute, resolved)."""
    files = {f for f in model.files if f != "-"}
    files |= {f for s in (*model.services.values(), *model.disabled_services.values()) for f in s.env_file}
    files |= {v for v in model.env_sources.values() if v.startswith("/")}
    files.add(os.path.join(model.working_dir, ".env"))
    files |= {os.path.abspath(f) for f in env_files}
    return {os.path.realpath(f) for f in files}


def bind_covering(s: Service, rule: Rule) -> str | None:
    """The bind mount source that already shows the rule's path in the container, if any."""
    for v in s.volumes:
        if v.type == "bind" and v.source:
            src = os.path.realpath(v.source)
            if rule.path == src or rule.path.startswith(src + "/"):
                return v.source
    return None
