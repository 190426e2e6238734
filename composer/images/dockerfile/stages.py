"""Stages of a Dockerfile: global ARGs before the first FROM, `FROM base [AS name]` with the global
ARGs substituted, `--target`, and which stages the target needs (FROM <stage>, COPY --from=<stage>):
only those are built, in file order, as BuildKit does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from composer.errors import ImageError
from composer.images.dockerfile.dockerfile import Dockerfile, Instruction
from composer.images.dockerfile.words import Lexer, split_raw


@dataclass
class Stage:
    index: int
    name: str | None  # lower case, as docker compares them
    base: str  # image reference, stage name or "scratch" (substituted)
    base_stage: int | None  # index of the stage named by base
    instructions: list[Instruction] = field(default_factory=list)
    deps: set[int] = field(default_factory=set)


@dataclass
class StagePlan:
    stages: list[Stage]
    needed: list[Stage]
    target: Stage
    global_args: dict[str, str]


def builtin_args() -> dict[str, str]:
    from composer.images.store import host_architecture

    arch = host_architecture()
    return {"TARGETPLATFORM": f"linux/{arch}", "TARGETOS": "linux", "TARGETARCH": arch, "TARGETVARIANT": "",
            "BUILDPLATFORM": f"linux/{arch}", "BUILDOS": "linux", "BUILDARCH": arch, "BUILDVARIANT": ""}


def parse_arg(instr: Instruction, env: Mapping[str, str], lexer: Lexer) -> list[tuple[str, str | None]]:
    """ARG NAME[=default] [NAME2[=default] ...] -> [(name, substituted default or None)]."""
    words = split_raw(instr.args, lexer.escape)
    if not words:
        raise ImageError(f"line {instr.line}: ARG requires at least one argument")
    out: list[tuple[str, str | None]] = []
    for word in words:
        name, eq, value = word.partition("=")
        if not name or not all(c.isalnum() or c == "_" for c in name):
            raise ImageError(f"line {instr.line}: ARG: invalid name {name!r}")
        out.append((name, lexer.word(value, {**env, **dict((n, v) for n, v in out if v is not None)})
                    if eq else None))
    return out


def plan_stages(dockerfile: Dockerfile, build_args: Mapping[str, str], target: str | None,
                lexer: Lexer) -> StagePlan:
    global_args: dict[str, str] = {}
    builtins = builtin_args()
    stages: list[Stage] = []
    by_name: dict[str, int] = {}
    for instr in dockerfile.instructions:
        if instr.cmd == "FROM":
            stages.append(_stage(instr, len(stages), {**builtins, **global_args}, by_name, lexer))
            if stages[-1].name:
                by_name[stages[-1].name] = stages[-1].index
        elif not stages:
            if instr.cmd != "ARG":
                raise ImageError(f"line {instr.line}: {instr.cmd} before the first FROM "
                                 "(only ARG may come before FROM)")
            for name, default in parse_arg(instr, global_args, lexer):
                if name in build_args:
                    global_args[name] = build_args[name]
                elif default is not None:
                    global_args[name] = default
                elif name in builtins:
                    global_args[name] = builtins[name]
        else:
            stages[-1].instructions.append(instr)
            if instr.cmd in ("COPY", "ADD"):
                source = instr.flag("from")
                if source is not None:
                    dep = _stage_ref(lexer.word(source, global_args), by_name, len(stages) - 1)
                    if dep is not None:
                        stages[-1].deps.add(dep)
    if not stages:
        raise ImageError("the Dockerfile has no FROM instruction")
    chosen = stages[-1]
    if target:
        key = target.lower()
        if key not in by_name:
            raise ImageError(f"target stage {target!r} could not be found")
        chosen = stages[by_name[key]]
    needed_ids: set[int] = set()
    todo = [chosen.index]
    while todo:
        i = todo.pop()
        if i in needed_ids:
            continue
        needed_ids.add(i)
        todo.extend(stages[i].deps)
    needed = [s for s in stages if s.index in needed_ids]
    return StagePlan(stages, needed, chosen, {**builtins, **global_args})


def _stage(instr: Instruction, index: int, env: Mapping[str, str], by_name: Mapping[str, int],
           lexer: Lexer) -> Stage:
    instr.check_flags(("platform",))
    words = lexer.words(instr.args, env)
    if len(words) == 3 and words[1].lower() == "as":
        base, name = words[0], words[2].lower()
        if not name or not (name[0].isalpha()) or not all(c.isalnum() or c in "_.-" for c in name):
            raise ImageError(f"line {instr.line}: invalid stage name {words[2]!r}")
        if name in by_name:
            raise ImageError(f"line {instr.line}: duplicate stage name {words[2]!r}")
    elif len(words) == 1:
        base, name = words[0], None
    else:
        raise ImageError(f"line {instr.line}: FROM expects 'image' or 'image AS name', got {instr.args!r}")
    if not base:
        raise ImageError(f"line {instr.line}: FROM: the base image name is empty (an unset ARG?)")
    stage = Stage(index, name, base, by_name.get(base.lower()))
    if stage.base_stage is not None:
        stage.deps.add(stage.base_stage)
    return stage


def _stage_ref(value: str, by_name: Mapping[str, int], current: int) -> int | None:
    """COPY --from value -> stage index, or None when it names an image."""
    if value.lower() in by_name:
        return by_name[value.lower()]
    if value.isdigit():
        index = int(value)
        if index >= current:
            raise ImageError(f"COPY --from={value}: a stage can only copy from an earlier stage")
        return index
    return None
