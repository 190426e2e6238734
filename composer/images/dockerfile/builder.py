"""The Dockerfile builder: stages, steps, the cache, and storing the result.

Each step turns a build state (layers + config + history + cache key) into the next one. Layers
made by this build are staged in the image store (temp dirs, usable as overlay lower dirs by later
RUN steps) and committed only at the end: the target stage with its tags, other stages that made
layers as untagged images (so that their cache entries stay valid). A failing step leaves nothing:
no image, no cache entry, no staged layer."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from composer.errors import ImageError, NotFoundError
from composer.images.dockerfile import configsteps
from composer.images.dockerfile.cache import BuildCache, step_key
from composer.images.dockerfile.dockerfile import Dockerfile, Instruction, parse
from composer.images.dockerfile.stages import Stage, plan_stages
from composer.images.dockerfile.words import Lexer
from composer.images.model import Image, ImageConfig

_EMPTY_CONFIG = ImageConfig(env=())


@dataclass(frozen=True)
class BuildOptions:
    context: str
    dockerfile: str | None = None  # path, relative to the context unless absolute; default Dockerfile
    dockerfile_text: str | None = None  # dockerfile_inline: used instead of the file
    tags: tuple[str, ...] = ()
    build_args: tuple[tuple[str, str | None], ...] = ()  # None: declared without a value (ignored)
    target: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    no_cache: bool = False
    network: str = "bridge"  # network mode of RUN steps: bridge | none | host
    pull: bool = False  # pull each FROM image anew, even when the store has it (docker build --pull)


@dataclass(frozen=True)
class BuildEvent:
    kind: str  # step | cached | output | stored
    text: str
    stream: str = "stdout"


@dataclass(frozen=True)
class LayerRec:
    diff_id: str
    digest: str
    blob_size: int
    media_type: str
    size: int


@dataclass
class State:
    layers: list[LayerRec]
    config: ImageConfig
    history: list[dict[str, Any]]
    key: str
    created: str
    cmd_inherited: bool = True

    def to_cache(self) -> dict[str, Any]:
        return {"layers": [dataclasses.asdict(la) for la in self.layers], "config": self.config.to_oci(),
                "history": self.history, "created": self.created}

    @classmethod
    def from_cache(cls, key: str, data: dict[str, Any], cmd_inherited: bool) -> "State":
        return cls([LayerRec(**la) for la in data["layers"]], ImageConfig.from_oci(data["config"]),
                   list(data["history"]), key, data["created"], cmd_inherited)


@dataclass
class _StageRun:
    stage: Stage
    state: State
    args: dict[str, str] = field(default_factory=dict)


class Builder:
    def __init__(self, store, options: BuildOptions, *, runtime=None,
                 progress: Callable[[BuildEvent], None] | None = None) -> None:
        self.store = store
        self.opts = options
        self.runtime = runtime
        self.progress = progress or (lambda event: None)
        self.cache = BuildCache(Path(store.root).parent)
        self.staged: dict[str, Any] = {}  # diff_id -> StagedLayer, until committed
        self.dirs: dict[str, str] = {}  # diff_id -> layer dir (staged or in the store)
        self.tmp = Path(store.root).parent / "tmp"
        self.done: dict[int, _StageRun] = {}
        self.step_no = 0
        self.total = 0

    # ------------------------------------------------------------ the whole build

    def build(self) -> Image:
        from composer.images.dockerfile.context import BuildContext

        dockerfile = self._dockerfile()
        self.lexer = Lexer(dockerfile.escape)
        self.build_args = {k: v for k, v in self.opts.build_args if v is not None}
        plan = plan_stages(dockerfile, self.build_args, self.opts.target, self.lexer)
        self.global_args = plan.global_args
        self.context = BuildContext(self.opts.context)
        self.total = sum(1 + len(s.instructions) for s in plan.needed)
        try:
            for stage in plan.needed:
                self.done[stage.index] = self._run_stage(stage)
            image = self._commit(plan.needed, plan.target)
        except BaseException:
            self.cache.discard()
            for staged in self.staged.values():
                staged.discard()
            raise
        finally:
            with contextlib.suppress(OSError):
                self.tmp.rmdir()
        self.cache.commit()
        return image

    def _dockerfile(self) -> Dockerfile:
        if self.opts.dockerfile_text is not None:
            return parse(self.opts.dockerfile_text)
        name = self.opts.dockerfile or "Dockerfile"
        path = name if os.path.isabs(name) else os.path.join(self.opts.context, name)
        try:
            with open(path, encoding="utf-8") as f:
                return parse(f.read())
        except FileNotFoundError:
            raise ImageError(f"cannot read the Dockerfile: {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ImageError(f"cannot read the Dockerfile {path}: {err}") from None

    # ------------------------------------------------------------ one stage

    def _run_stage(self, stage: Stage) -> _StageRun:
        run = _StageRun(stage, self._from(stage))
        for instr in stage.instructions:
            self.step_no += 1
            label = f"step {self.step_no}/{self.total} {_short(instr)}"
            self.progress(BuildEvent("step", label))
            try:
                self._step(run, instr, label)
            except ImageError as err:
                if err.message.startswith("step "):
                    raise
                raise ImageError(f"{label}: {err.message}", hint=err.hint) from None
        return run

    def _from(self, stage: Stage) -> State:
        self.step_no += 1
        self.progress(BuildEvent("step", f"step {self.step_no}/{self.total} FROM {stage.base}"
                                          + (f" AS {stage.name}" if stage.name else "")))
        if stage.base_stage is not None:
            parent = self.done[stage.base_stage].state
            return dataclasses.replace(parent, layers=list(parent.layers), history=list(parent.history))
        if stage.base.lower() == "scratch":
            return State([], _EMPTY_CONFIG, [], "scratch", "1970-01-01T00:00:00Z")
        if self.opts.pull:
            from composer.images.pull import pull_image

            self.progress(BuildEvent("output", f"pulling {stage.base}"))
            pull_image(self.store, stage.base)
        try:
            image = self.store.resolve(stage.base)
        except NotFoundError:
            raise ImageError(f"step {self.step_no}/{self.total} FROM {stage.base}: image not found locally",
                             hint="'composer image pull' or 'composer image bootstrap' makes it") from None
        return self._image_state(image)

    def _image_state(self, image: Image) -> State:
        manifest = json.loads(self.store.blob_path(image.manifest).read_bytes())
        config_blob = json.loads(self.store.blob_path(image.id).read_bytes())
        recs = []
        for i, (diff_id, layer) in enumerate(zip(image.diff_ids, manifest["layers"])):
            # the index keeps only the image's total size: it is booked on its top layer
            size = image.size if i == len(image.diff_ids) - 1 else 0
            recs.append(LayerRec(diff_id, layer["digest"], int(layer["size"]), layer["mediaType"], size))
            self.dirs[diff_id] = str(self.store.layer_dir(diff_id))
        return State(recs, image.config, list(config_blob.get("history") or []), "image:" + image.id,
                     image.created)

    def _step(self, run: _StageRun, instr: Instruction, label: str) -> None:
        state = run.state
        env = {**run.args, **state.config.env_dict()}
        op = instr.cmd
        if op == "ARG":
            self._arg(run, instr, env)
            return
        if op == "ONBUILD":
            raise ImageError("ONBUILD is not supported by composer's builder")
        if op in configsteps.CONFIG_ONLY:
            config = configsteps.apply(state.config, instr, env, self.lexer, cmd_inherited=state.cmd_inherited)
            run.state = dataclasses.replace(
                state, config=config, key=step_key(state.key, _config_key(config, instr)),
                history=[*state.history, _history(state.created, instr.original, empty=True)],
                cmd_inherited=state.cmd_inherited and op != "CMD")
            return
        if op == "WORKDIR":
            path = configsteps.workdir(state.config.working_dir, self.lexer.word(instr.args, env))
            config = dataclasses.replace(state.config, working_dir=path)
            from composer.images.dockerfile import steps

            run.state = steps.workdir(self, state, config, instr, path)
            return
        from composer.images.dockerfile import steps

        if op == "RUN":
            run.state = steps.run(self, run, instr, label)
        elif op in ("COPY", "ADD"):
            run.state = steps.copy(self, run, instr, env)
        else:
            raise ImageError(f"{op} is not supported")

    def _arg(self, run: _StageRun, instr: Instruction, env: dict[str, str]) -> None:
        from composer.images.dockerfile.stages import parse_arg

        for name, default in parse_arg(instr, env, self.lexer):
            if name in self.build_args:
                run.args[name] = self.build_args[name]
            elif default is not None:
                run.args[name] = default
            elif name in self.global_args:
                run.args[name] = self.global_args[name]
            else:
                run.args.pop(name, None)

    # ------------------------------------------------------------ cache and layers

    def cached(self, key: str, state: State) -> State | None:
        """The state a cache entry recorded after this step, if everything the commit will need is
        still in the store: each layer's dir AND its blob (an image rm may have taken either, and a
        base image pulled again may bring the same layers under other blobs: those of the FROM
        image in hand are used)."""
        if self.opts.no_cache:
            return None
        hit = self.cache.get(key)
        if hit is None:
            return None
        new = State.from_cache(key, hit, state.cmd_inherited)
        mine = {rec.diff_id: rec for rec in state.layers}
        new.layers = [mine.get(rec.diff_id, rec) for rec in new.layers]
        for rec in new.layers:
            if rec.diff_id in self.staged:
                continue
            path = Path(self.dirs.get(rec.diff_id) or self.store.layer_dir(rec.diff_id))
            if not path.is_dir() or not self.store.blob_path(rec.digest).exists():
                return None  # its image was removed since: rebuild the step
            self.dirs[rec.diff_id] = str(path)
        self.progress(BuildEvent("cached", "CACHED"))
        return new

    def remember(self, key: str, state: State) -> State:
        state.key = key
        self.cache.put(key, state.to_cache())
        return state

    def add_layer(self, tar: Path) -> LayerRec:
        """Stage a layer tar (consumed) and return its record; identical layers are shared."""
        try:
            staged = self.store.stage_layer(tar)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tar.unlink()
        rec = LayerRec(staged.diff_id, staged.digest, staged.blob_size, staged.media_type, staged.size)
        existing = self.store.layer_dir(staged.diff_id)
        if staged.diff_id in self.staged:
            staged.discard()
        elif existing.is_dir() and self.store.blob_path(staged.digest).exists():
            staged.discard()  # in the store already, blob and dir
            self.dirs.setdefault(staged.diff_id, str(existing))
        elif existing.is_dir():  # the dir is there but not this blob: the commit places the blob
            self.staged[staged.diff_id] = staged
            self.dirs.setdefault(staged.diff_id, str(existing))
        else:
            self.staged[staged.diff_id] = staged
            self.dirs[staged.diff_id] = str(staged.dir)
        return rec

    def layer_dirs(self, state: State) -> list[str]:
        return [self.dirs[rec.diff_id] for rec in state.layers]

    def now(self) -> str:
        from composer.images.store import now_rfc3339

        return now_rfc3339()

    # ------------------------------------------------------------ storing

    def _commit(self, needed: list[Stage], target: Stage) -> Image:
        image = None
        for stage in needed:
            run = self.done[stage.index]
            if stage is target:
                continue
            if any(rec.diff_id in self.staged for rec in run.state.layers):
                self._store(run.state, ())  # keeps the stage's layers (and so its cache) alive
        state = self.done[target.index].state
        if self.opts.labels:
            labels = dict(state.config.labels)
            labels.update(self.opts.labels)
            state = dataclasses.replace(state, config=dataclasses.replace(state.config,
                                                                          labels=tuple(sorted(labels.items()))))
        image = self._store(state, self.opts.tags)
        self.progress(BuildEvent("stored", image.id))
        return image

    def _store(self, state: State, tags: tuple[str, ...]) -> Image:
        from composer.images.store import host_architecture
        from composer.images.store_layers import StagedLayer

        config = {
            "architecture": host_architecture(), "os": "linux", "created": state.created,
            "config": state.config.to_oci(),
            "rootfs": {"type": "layers", "diff_ids": [rec.diff_id for rec in state.layers]},
            "history": state.history,
        }
        blob = json.dumps(config, separators=(",", ":")).encode()
        layers = []
        for rec in state.layers:
            staged = self.staged.pop(rec.diff_id, None)
            if staged is None:  # already in the store: nothing to move (the temp names don't exist)
                tmp = self.store.layers_root / f".tmp-{os.getpid()}-none"
                staged = StagedLayer(tmp, rec.digest, rec.blob_size, rec.media_type, tmp, rec.diff_id, rec.size)
            layers.append(staged)
        try:
            image = self.store.add_image(blob, layers, refs=tags)
        except FileNotFoundError:
            raise ImageError("a base layer was removed from the image store during the build") from None
        for rec in state.layers:
            self.dirs[rec.diff_id] = str(self.store.layer_dir(rec.diff_id))
        return image


def _history(created: str, text: str, *, empty: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"created": created, "created_by": text, "comment": "composer build"}
    if empty:
        entry["empty_layer"] = True
    return entry


def _config_key(config: ImageConfig, instr: Instruction) -> str:
    return f"{instr.cmd} {json.dumps(config.to_oci(), sort_keys=True)}"


def _short(instr: Instruction) -> str:
    text = " ".join(instr.original.split())
    return text if len(text) <= 80 else text[:77] + "..."


def build(store, options: BuildOptions, *, runtime=None,
          progress: Callable[[BuildEvent], None] | None = None) -> Image:
    """Build the Dockerfile in options.context; returns the stored image (tagged with options.tags)."""
    return Builder(store, options, runtime=runtime, progress=progress).build()


def build_service_image(service_build: Any, ref: str, store: Any, runtime: Any = None, *, no_cache: bool = False,
                        progress: Callable[[BuildEvent], None] | None = None, pull: bool = False,
                        build_args: tuple[tuple[str, str], ...] = ()) -> Any:
    """Build a stack service's `build:` section (composer.config.model.Build, read by attribute: the
    images layer does not import the config layer) and tag it `ref` plus its `tags`. build_args
    (`build --build-arg`) override the section's args; pull (`build --pull`, or the section's
    `pull: true`) pulls the FROM images anew."""
    context = service_build.context
    if "://" in context or context.startswith("git@"):
        raise ImageError(f"build context {context}: remote contexts are not supported")
    args = tuple({**dict(service_build.args or {}), **dict(build_args)}.items())
    options = BuildOptions(
        context=context,
        dockerfile=service_build.dockerfile,
        dockerfile_text=service_build.dockerfile_inline,
        tags=(ref, *tuple(service_build.tags or ())),
        build_args=args,
        target=service_build.target,
        labels=tuple(dict(service_build.labels or {}).items()),
        no_cache=no_cache or bool(getattr(service_build, "no_cache", False)),
        network=service_build.network or "bridge",
        pull=pull or bool(getattr(service_build, "pull", False)),
    )
    return build(store, options, runtime=runtime, progress=progress)
