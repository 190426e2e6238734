"""`image import`: a rootfs tar (plain or compressed, from a file or a pipe) becomes a one-layer image,
as `docker import` does, with docker's `--change` instructions applied to the config."""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterable

from composer.errors import ImageError, UsageError
from composer.images.model import ImageConfig
from composer.images.reference import parse_reference

if TYPE_CHECKING:
    from composer.images.model import Image
    from composer.images.store import ImageStore

CHANGE_INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
                       "VOLUME", "WORKDIR")


def import_rootfs(store: "ImageStore", src: Path | str | BinaryIO, ref: str | None, *,
                  changes: ImageConfig | None = None, comment: str = "", created: str = "") -> "Image":
    """created: RFC 3339 time for the config (default now); a fixed one makes the image id reproducible."""
    from composer.images.store import host_architecture, now_rfc3339

    if ref:
        parse_reference(ref, allow_digest=False)  # refuse a bad name before reading anything
    if isinstance(src, (str, os.PathLike)) and not os.path.isfile(src):
        raise ImageError(f"cannot import {src}: no such file")
    name = os.fspath(src) if isinstance(src, (str, os.PathLike)) else "-"
    try:
        staged = store.stage_layer(src)
    except ImageError as err:
        raise ImageError(f"cannot import {name}: {err.message}", hint=err.hint) from err
    try:
        created = created or now_rfc3339()
        config = {
            "architecture": host_architecture(),
            "os": "linux",
            "created": created,
            "config": (changes or ImageConfig()).to_oci(),
            "rootfs": {"type": "layers", "diff_ids": [staged.diff_id]},
            "history": [{"created": created, "created_by": "composer image import",
                         "comment": comment or f"Imported from {name}"}],
        }
        blob = json.dumps(config, separators=(",", ":")).encode()
    except BaseException:
        staged.discard()
        raise
    return store.add_image(blob, [staged], refs=(ref,) if ref else ())


def apply_changes(config: ImageConfig, changes: Iterable[str]) -> ImageConfig:
    """docker import --change: Dockerfile instructions that only touch the config."""
    for change in changes:
        config = _apply_one(config, change.strip())
    return config


def _apply_one(config: ImageConfig, change: str) -> ImageConfig:
    word, _, rest = change.partition(" ")
    op, rest = word.upper(), rest.strip()
    if op not in CHANGE_INSTRUCTIONS or op == "ONBUILD":
        raise UsageError(f"invalid --change {change!r}: {word} is not one of "
                         f"{', '.join(i for i in CHANGE_INSTRUCTIONS if i != 'ONBUILD')}")
    if not rest:
        raise UsageError(f"invalid --change {change!r}: {op} needs an argument")
    replace = dataclasses.replace
    if op in ("CMD", "ENTRYPOINT"):
        argv = _command(rest, config.shell, change)
        return replace(config, cmd=argv) if op == "CMD" else replace(config, entrypoint=argv, cmd=None)
    if op == "ENV":
        env = dict(config.env)
        env.update(_pairs(rest, change, legacy=True))
        return replace(config, env=tuple(env.items()))
    if op == "LABEL":
        labels = dict(config.labels)
        labels.update(_pairs(rest, change, legacy=False))
        return replace(config, labels=tuple(sorted(labels.items())))
    if op == "WORKDIR":
        return replace(config, working_dir=posixpath.join(config.working_dir or "/", rest))
    if op == "USER":
        return replace(config, user=rest)
    if op == "STOPSIGNAL":
        return replace(config, stop_signal=rest)
    if op == "EXPOSE":
        ports = list(config.exposed_ports)
        for port in rest.split():
            port = port if "/" in port else f"{port}/tcp"
            number = port.split("/")[0]
            if not number.replace("-", "").isdigit():
                raise UsageError(f"invalid --change {change!r}: bad port {port!r}")
            if port not in ports:
                ports.append(port)
        return replace(config, exposed_ports=tuple(ports))
    volumes = list(config.volumes)  # VOLUME
    for volume in _json_list(rest) if rest.startswith("[") else rest.split():
        if volume not in volumes:
            volumes.append(volume)
    return replace(config, volumes=tuple(volumes))


def _command(rest: str, shell: tuple[str, ...] | None, change: str) -> tuple[str, ...]:
    if rest.startswith("["):
        try:
            return _json_list(rest)
        except UsageError:
            pass  # docker falls back to the shell form when the JSON is not a string array
    return (*(shell or ("/bin/sh", "-c")), rest)


def _json_list(text: str) -> tuple[str, ...]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"invalid JSON string array: {text}")
    return tuple(value)


def _pairs(rest: str, change: str, *, legacy: bool) -> list[tuple[str, str]]:
    try:
        words = shlex.split(rest)
    except ValueError as err:
        raise UsageError(f"invalid --change {change!r}: {err}") from None
    if legacy and words and "=" not in words[0]:
        # the old `ENV KEY value with spaces` form
        return [(words[0], rest[len(rest.split(None, 1)[0]):].strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid --change {change!r}: expected KEY=VALUE, got {word!r}")
        pairs.append((key, value))
    return pairs
