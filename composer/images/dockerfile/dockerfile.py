"""Dockerfile syntax -> instructions. Pure text work (no substitution yet: that needs the build's
environment, step by step), following docker's parser:

- parser directives (`# escape=`` `, `# syntax=...`) only at the very top;
- comment lines (first non-blank character `#`) are dropped, also inside continuations;
- a line ending in the escape character (optionally followed by blanks) continues on the next line;
- the instruction word is case-insensitive; leading `--flag=value` options are split off for the
  instructions that take them;
- exec form is a JSON string array; anything else (including bad JSON) is shell form;
- heredocs (`RUN <<EOF`, `COPY <<EOF /dest`) collect the following lines up to the delimiter."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from composer.errors import ImageError

INSTRUCTIONS = frozenset({
    "FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
})
_FLAGGED = frozenset({"FROM", "RUN", "ADD", "COPY", "HEALTHCHECK"})
_HEREDOC_CAPABLE = frozenset({"RUN", "COPY", "ADD"})
_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"(?:^|(?<=\s))<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_INSTR = re.compile(r"^\s*(\S+)(?:\s+(.*))?$", re.S)


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str  # with its trailing newline
    expand: bool  # unquoted delimiter: variables are substituted (COPY/ADD)


@dataclass(frozen=True)
class Instruction:
    cmd: str  # upper case: RUN, COPY, ...
    args: str  # the text after the instruction word and its flags
    flags: tuple[tuple[str, str], ...] = ()
    json: tuple[str, ...] | None = None  # exec form, when args is a JSON string array
    line: int = 0
    original: str = ""  # the instruction as written (continuations joined)
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str, default: str | None = None) -> str | None:
        values = [v for k, v in self.flags if k == name]
        if len(values) > 1:
            raise ImageError(f"line {self.line}: {self.cmd} --{name} given more than once")
        return values[0] if values else default

    def check_flags(self, allowed: tuple[str, ...]) -> None:
        for key, _ in self.flags:
            if key not in allowed:
                raise ImageError(f"line {self.line}: unknown flag for {self.cmd}: --{key}")


@dataclass(frozen=True)
class Dockerfile:
    instructions: tuple[Instruction, ...]
    escape: str = "\\"


def parse(text: str) -> Dockerfile:
    lines = text.lstrip("\ufeff").splitlines()
    escape, first = _directives(lines)
    out: list[Instruction] = []
    i = first
    while i < len(lines):
        start = i
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = []
        while True:
            body = line.rstrip(" \t")
            if not body.endswith(escape):
                parts.append(line)
                break
            parts.append(body[:-1])
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1  # comments and blank lines inside a continuation are dropped, as docker does
            if i >= len(lines):
                break
            line = lines[i]
            i += 1
        joined = "".join(parts)
        instr, i = _instruction(joined, start + 1, lines, i)
        out.append(instr)
    return Dockerfile(tuple(out), escape)


def _directives(lines: list[str]) -> tuple[str, int]:
    escape = "\\"
    seen: set[str] = set()
    for n, line in enumerate(lines):
        m = _DIRECTIVE.match(line)
        if not m:
            return escape, n
        key, value = m.group(1).lower(), m.group(2)
        if key in seen:
            raise ImageError(f"line {n + 1}: only one {key} parser directive can be used")
        seen.add(key)
        if key == "escape":
            if value not in ("\\", "`"):
                raise ImageError(f"line {n + 1}: invalid escape token {value!r} does not match ` or \\")
            escape = value
    return escape, len(lines)


def _instruction(joined: str, lineno: int, lines: list[str], i: int) -> tuple[Instruction, int]:
    m = _INSTR.match(joined)
    assert m is not None
    word, rest = m.group(1), (m.group(2) or "").strip()
    cmd = word.upper()
    if cmd not in INSTRUCTIONS:
        raise ImageError(f"line {lineno}: unknown instruction: {word}")
    flags: list[tuple[str, str]] = []
    if cmd in _FLAGGED:
        while rest.startswith("--"):
            token, _, rest = rest.partition(" ")
            rest = rest.lstrip()
            name, eq, value = token[2:].partition("=")
            if not name:
                raise ImageError(f"line {lineno}: {cmd}: bad flag {token!r}")
            flags.append((name, value if eq else "true"))
    heredocs: list[Heredoc] = []
    if cmd in _HEREDOC_CAPABLE:
        for hm in _HEREDOC.finditer(rest):
            strip_tabs, quoted, name = hm.group(1) == "-", bool(hm.group(2)), hm.group(3)
            body = []
            while True:
                if i >= len(lines):
                    raise ImageError(f"line {lineno}: unterminated heredoc <<{name}")
                text = lines[i]
                i += 1
                if strip_tabs:
                    text = text.lstrip("\t")
                if text == name:
                    break
                body.append(text + "\n")
            heredocs.append(Heredoc(name, "".join(body), expand=not quoted))
    exec_form = None
    if rest.startswith("[") and not heredocs:
        try:
            value = json.loads(rest)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            exec_form = tuple(value)
    original = f"{cmd} {joined[m.start(2):].strip()}" if m.group(2) else cmd
    return Instruction(cmd, rest, tuple(flags), exec_form, lineno, original, tuple(heredocs)), i
