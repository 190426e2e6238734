"""The instructions that only change the image config (ENV, LABEL, USER, CMD, ENTRYPOINT, EXPOSE,
VOLUME, STOPSIGNAL, SHELL, HEALTHCHECK): pure functions from (config, instruction, environment) to a
new config, with docker's rules. Unit-tested without root."""

from __future__ import annotations

import dataclasses
import posixpath
import re
from typing import Mapping

from composer.errors import ImageError
from composer.images.dockerfile.dockerfile import Instruction
from composer.images.dockerfile.words import Lexer, parse_pairs
from composer.images.model import HealthConfig, ImageConfig

DEFAULT_SHELL = ("/bin/sh", "-c")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
CONFIG_ONLY = frozenset({"ENV", "LABEL", "USER", "CMD", "ENTRYPOINT", "EXPOSE", "VOLUME", "STOPSIGNAL", "SHELL",
                         "HEALTHCHECK", "MAINTAINER"})


def command(instr: Instruction, shell: tuple[str, ...] | None) -> tuple[str, ...]:
    """Exec form as given; shell form wrapped in the SHELL (default /bin/sh -c)."""
    if instr.json is not None:
        return instr.json
    return (*(shell or DEFAULT_SHELL), instr.args)


def apply(config: ImageConfig, instr: Instruction, env: Mapping[str, str], lexer: Lexer, *,
          cmd_inherited: bool) -> ImageConfig:
    """config after a config-only instruction. cmd_inherited: CMD still comes from the base image
    (ENTRYPOINT then resets it, as docker does)."""
    replace = dataclasses.replace
    op, where = instr.cmd, f"line {instr.line}"
    try:
        if op == "ENV":
            merged = dict(config.env)
            for key, value in parse_pairs(instr.args, env, lexer, instruction="ENV", legacy=True):
                merged[key] = value
            return replace(config, env=tuple(merged.items()))
        if op == "LABEL":
            labels = dict(config.labels)
            labels.update(parse_pairs(instr.args, env, lexer, instruction="LABEL", legacy=False))
            return replace(config, labels=tuple(sorted(labels.items())))
        if op == "MAINTAINER":
            return config
        if op == "USER":
            user = lexer.word(instr.args, env)
            if not user:
                raise ImageError("USER requires an argument")
            return replace(config, user=user)
        if op == "CMD":
            return replace(config, cmd=command(instr, config.shell))
        if op == "ENTRYPOINT":
            entry = command(instr, config.shell)
            return replace(config, entrypoint=entry, cmd=None if cmd_inherited else config.cmd)
        if op == "EXPOSE":
            ports = list(config.exposed_ports)
            for port in lexer.words(instr.args, env):
                number, _, proto = port.partition("/")
                proto = (proto or "tcp").lower()
                if not re.fullmatch(r"\d+(-\d+)?", number) or proto not in ("tcp", "udp", "sctp"):
                    raise ImageError(f"EXPOSE: invalid port {port!r}")
                if f"{number}/{proto}" not in ports:
                    ports.append(f"{number}/{proto}")
            return replace(config, exposed_ports=tuple(sorted(ports)))
        if op == "VOLUME":
            items = [lexer.word(v, env) for v in instr.json] if instr.json is not None else lexer.words(instr.args, env)
            if not items or any(not v for v in items):
                raise ImageError("VOLUME specified can not be an empty string")
            return replace(config, volumes=tuple(sorted(set(config.volumes) | set(items))))
        if op == "STOPSIGNAL":
            return replace(config, stop_signal=lexer.word(instr.args, env))
        if op == "SHELL":
            if instr.json is None or not instr.json:
                raise ImageError("SHELL requires the arguments to be in JSON form")
            return replace(config, shell=instr.json)
        if op == "HEALTHCHECK":
            return replace(config, healthcheck=healthcheck(instr, config.shell))
    except ImageError as err:
        raise ImageError(f"{where}: {err.message}", hint=err.hint) from None
    raise ImageError(f"{where}: {op} is not a config instruction")


def healthcheck(instr: Instruction, shell: tuple[str, ...] | None) -> HealthConfig:
    instr.check_flags(("interval", "timeout", "start-period", "start-interval", "retries"))
    word, _, rest = instr.args.partition(" ")
    kind = word.upper()
    if kind == "NONE":
        if rest.strip() or instr.flags:
            raise ImageError("HEALTHCHECK NONE takes no arguments")
        return HealthConfig(test=("NONE",))
    if kind != "CMD" or not rest.strip():
        raise ImageError("HEALTHCHECK expects NONE or CMD followed by a command")
    sub = dataclasses.replace(instr, args=rest.strip(), json=_json_or_none(rest.strip()))
    test = ("CMD", *sub.json) if sub.json is not None else ("CMD-SHELL", sub.args)
    retries = instr.flag("retries")
    if retries is not None and not retries.isdigit():
        raise ImageError(f"HEALTHCHECK --retries: invalid number {retries!r}")
    return HealthConfig(
        test=test,
        interval=duration(instr.flag("interval", "0s") or "0s"),
        timeout=duration(instr.flag("timeout", "0s") or "0s"),
        start_period=duration(instr.flag("start-period", "0s") or "0s"),
        start_interval=duration(instr.flag("start-interval", "0s") or "0s"),
        retries=int(retries or 0),
    )


def _json_or_none(text: str) -> tuple[str, ...] | None:
    import json

    if not text.startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return tuple(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def duration(text: str) -> float:
    """Go's time.ParseDuration subset docker accepts: 30s, 1m30s, 500ms, 1h."""
    if text in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ImageError(f"invalid duration {text!r}")
    return total


def workdir(current: str, arg: str) -> str:
    """WORKDIR: relative paths build on the previous WORKDIR."""
    path = posixpath.normpath(posixpath.join(current or "/", arg))
    return "/" + path.lstrip("/")
