"""The steps that make layers: RUN (in a container), COPY/ADD (from the context, a stage, an image or a
heredoc) and WORKDIR (when the directory is missing). Each computes its cache key first and only does
the work on a miss."""

from __future__ import annotations

import dataclasses
import os
import posixpath
import tempfile
from typing import TYPE_CHECKING

from composer.errors import ComposerError, ImageError
from composer.images.dockerfile.cache import step_key
from composer.images.dockerfile.configsteps import command
from composer.images.dockerfile.copyplan import CopyPlan, CopyRequest, Entry, plan_copy
from composer.images.dockerfile.dockerfile import Instruction
from composer.images.dockerfile.layertar import DirMeta
from composer.images.dockerfile.layerview import LayerView

if TYPE_CHECKING:
    from composer.images.dockerfile.builder import Builder, State, _StageRun


def _history(state: "State", text: str, empty: bool = False) -> list[dict]:
    entry = {"created": state.created, "created_by": text, "comment": "composer build"}
    if empty:
        entry["empty_layer"] = True
    return [*state.history, entry]


def _with_layer(b: "Builder", state: "State", tar, text: str, config=None) -> "State":
    """The state after a step that wrote the layer tar `tar` (None: the step changed nothing)."""
    new = dataclasses.replace(state, layers=list(state.layers), config=config or state.config, created=b.now())
    if tar is None:
        new.history = _history(new, text, empty=True)
        return new
    new.layers.append(b.add_layer(tar))
    new.history = _history(new, text)
    return new


def _plan_to_tar(b: "Builder", plan: CopyPlan):
    b.tmp.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".tmp-layer-", dir=b.tmp)
    try:
        with open(fd, "wb") as out:
            plan.write(out)
    except BaseException:
        os.unlink(name)
        raise
    from pathlib import Path

    return Path(name)


# ---------------------------------------------------------------- WORKDIR


def workdir(b: "Builder", state: "State", config, instr: Instruction, path: str) -> "State":
    view = LayerView(b.layer_dirs(state))
    rel = view.resolve(path.strip("/")) if path.strip("/") else ""
    key = step_key(state.key, f"WORKDIR {path}")
    if not rel or view.lookup(rel) is not None:  # exists: config only, as docker
        new = dataclasses.replace(state, config=config, key=key, history=_history(state, instr.original, True))
        return new
    hit = b.cached(key, state)
    if hit is not None:
        return hit
    plan = CopyPlan()
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        name = "/".join(parts[:i])
        found = view.lookup(name)
        if found is not None:
            st = found[1]
            meta = DirMeta(st.st_mode & 0o7777, st.st_uid, st.st_gid, int(st.st_mtime))
        else:
            meta = DirMeta()
        plan.add(Entry(name, "dir", meta=meta))
    return b.remember(key, _with_layer(b, state, _plan_to_tar(b, plan), instr.original, config))


# ---------------------------------------------------------------- RUN


def run(b: "Builder", sr: "_StageRun", instr: Instruction, label: str) -> "State":
    from composer.images.dockerfile.runner import RunRequest, run_step

    state = sr.state
    instr.check_flags(("network",))
    network = instr.flag("network") or b.opts.network
    if network == "default":
        network = b.opts.network
    if instr.heredocs:
        argv = _heredoc_argv(instr, state.config.shell)
    else:
        argv = command(instr, state.config.shell)
    env = dict(state.config.env)
    build_env = {k: v for k, v in sr.args.items() if k not in env}  # ENV wins over ARG
    full_env = tuple({**env, **build_env}.items())
    seen_args = " ".join(f"{k}={v}" for k, v in sorted(build_env.items()))
    key = step_key(state.key, "RUN " + "\0".join(argv), f"args:{seen_args} network:{network}")
    hit = b.cached(key, state)
    if hit is not None:
        return hit
    if b.runtime is None:
        from composer.runtime import Runtime

        b.runtime = Runtime(data_dir=os.path.dirname(b.store.root))
        b.runtime.prepare()
    if not state.layers:
        raise ImageError("RUN needs a base image with a shell (this stage is FROM scratch)")
    view = LayerView(b.layer_dirs(state))
    req = RunRequest(argv=argv, layers=tuple(b.layer_dirs(state)), env=full_env,
                     cwd=state.config.working_dir or "/", user=state.config.user, network=network, label=label)

    def output(stream: str, line: str) -> None:
        from composer.images.dockerfile.builder import BuildEvent

        b.progress(BuildEvent("output", line, stream))

    try:
        tar = run_step(b.runtime, req, b.tmp, lambda rel: view.lookup(rel) is not None, output)
    except ImageError:
        raise
    except ComposerError as err:  # cannot start: no such command, bad user, ...
        raise ImageError(f"{label}: {err.message}", hint=err.hint) from None
    return b.remember(key, _with_layer(b, state, tar, instr.original))


def _heredoc_argv(instr: Instruction, shell) -> tuple[str, ...]:
    """`RUN <<EOF` alone runs the heredoc as the script; otherwise the shell reads the heredocs."""
    import re

    first = instr.heredocs[0]
    if re.fullmatch(r"<<-?([\"']?)" + re.escape(first.name) + r"\1", instr.args.strip()):
        script = first.content
        if script.startswith("#!"):
            interpreter = script.splitlines()[0][2:].split()
            return (*interpreter, "-c", script.split("\n", 1)[1] if "\n" in script else "")
        return (*(shell or ("/bin/sh", "-c")), script)
    text = instr.args + "\n" + "".join(h.content + h.name + "\n" for h in instr.heredocs)
    return (*(shell or ("/bin/sh", "-c")), text)


# ---------------------------------------------------------------- COPY / ADD


def copy(b: "Builder", sr: "_StageRun", instr: Instruction, env: dict[str, str]) -> "State":
    state = sr.state
    instr.check_flags(("from", "chown", "chmod", "link"))
    lex = b.lexer
    if instr.json is not None:
        words = [lex.word(w, env) for w in instr.json]
    else:
        words = lex.words(instr.args, env)
    if len(words) < 2:
        raise ImageError(f"{instr.cmd} requires at least two arguments: source(s) and destination")
    sources, dest = words[:-1], words[-1]
    heredocs = []
    for h in instr.heredocs:
        content = lex.word(h.content, env) if h.expand else h.content
        heredocs.append((h.name, content.encode()))
    sources = [s.lstrip("<").lstrip("-") if s.lstrip("<").lstrip("-") in dict(heredocs) and s.startswith("<<")
               else s for s in sources]
    if not dest.startswith("/"):
        dest = posixpath.join(state.config.working_dir or "/", dest) + ("/" if dest.endswith("/") else "")
    target = LayerView(b.layer_dirs(state))
    chown = None
    if instr.flag("chown"):
        user, _, group = lex.word(instr.flag("chown") or "", env).partition(":")
        chown = target.user_ids(user, group or None)
    chmod = None
    if instr.flag("chmod"):
        try:
            chmod = int(instr.flag("chmod") or "", 8)
        except ValueError:
            raise ImageError(f"invalid --chmod value {instr.flag('chmod')!r}: octal modes only") from None
    req = CopyRequest(instr.cmd, tuple(sources), dest, chown, chmod, tuple(heredocs))
    source = instr.flag("from")
    if source is not None:
        plan = plan_copy(req, target, source_view=_source_view(b, lex.word(source, b.global_args)))
    else:
        plan = plan_copy(req, target, context=b.context)
    text = f"{instr.cmd} {' '.join(words)}" + (f" from={source}" if source else "")
    key = step_key(state.key, text + f" chown={chown} chmod={chmod}", plan.digest())
    hit = b.cached(key, state)
    if hit is not None:
        return hit
    return b.remember(key, _with_layer(b, state, _plan_to_tar(b, plan), instr.original))


def _source_view(b: "Builder", source: str) -> LayerView:
    for run in b.done.values():
        if (run.stage.name and run.stage.name == source.lower()) or str(run.stage.index) == source:
            return LayerView(b.layer_dirs(run.state))
    from composer.errors import NotFoundError

    try:
        image = b.store.resolve(source)
    except NotFoundError:
        raise ImageError(f"COPY --from={source}: no such stage, and no such image locally") from None
    state = b._image_state(image)
    return LayerView(b.layer_dirs(state))
