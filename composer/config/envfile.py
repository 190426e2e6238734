"""The `.env` / `env_file` grammar as compose reads it: `#` comments, an optional `export `, single
quotes (literal, may span lines), double quotes (escapes, may span lines), unquoted values with
inline ` #` comments, empty values, and `${VAR}` expansion in unquoted and double-quoted values."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from composer.config import fileio
from composer.config.interpolate import InterpolationError, expand
from composer.errors import ConfigError

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$$", "\n": ""}


def _read(path: str) -> str:
    try:
        return fileio.read_text(path)
    except FileNotFoundError:
        raise ConfigError(f"env file {path} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read env file {path}: {err}") from None


def read_env_file(path: str, lookup: Callable[[str], str | None] | None = None) -> dict[str, str | None]:
    """Parse a file; `lookup` resolves `${VAR}` (the shell environment, for .env). Keys without `=`
    take their value from lookup (None when unset)."""
    text = _read(path)
    return parse_env(text, path, lookup)


def parse_env(text: str, path: str = "<env>", lookup: Callable[[str], str | None] | None = None
              ) -> dict[str, str | None]:
    env: dict[str, str | None] = {}
    outer = lookup or (lambda _n: None)

    def resolve(name: str) -> str | None:  # the shell first, then what this file defined above
        value = outer(name)
        return value if value is not None else env.get(name)

    i, n, line = 0, len(text), 1
    if text.startswith("\ufeff"):
        i = 1
    while i < n:
        start_line = line
        eol = text.find("\n", i)
        eol = n if eol < 0 else eol
        raw = text[i:eol]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i, line = eol + 1, line + 1
            continue
        body = stripped[7:].lstrip() if stripped.startswith("export ") else stripped
        m = _KEY_RE.match(body)
        if not m:
            raise ConfigError(f"invalid line {stripped!r}: expected KEY=VALUE", file=path, line=start_line)
        key, rest = m.group(0), body[m.end():]
        if not rest.strip():
            env[key] = outer(key)  # a bare key: inherit from the environment
            i, line = eol + 1, line + 1
            continue
        if not rest.lstrip().startswith("="):
            raise ConfigError(f"invalid line {stripped!r}: expected KEY=VALUE", file=path, line=start_line)
        value_start = i + raw.index(key) + len(key)
        value_start = text.index("=", value_start) + 1
        while value_start < n and text[value_start] in " \t":
            value_start += 1
        q = text[value_start] if value_start < n else ""
        if q in ("'", '"'):
            end, value = _quoted(text, value_start, q, path, start_line)
            line += text.count("\n", i, end)
            eol = text.find("\n", end)
            tail = text[end:eol if eol >= 0 else n].strip()
            if tail and not tail.startswith("#"):
                raise ConfigError(f"unexpected text after the closing quote of {key}", file=path, line=line)
            eol = n if eol < 0 else eol
        else:
            value = text[value_start:eol]
            cut = re.search(r"\s#", value)
            value = (value[:cut.start()] if cut else value).strip()
        if q != "'":
            try:
                value = expand(value, resolve)
            except InterpolationError as err:
                raise ConfigError(f"{key}: {err}", file=path, line=start_line) from None
        env[key] = value
        i, line = eol + 1, line + 1
    return env


def _quoted(text: str, start: int, q: str, path: str, line: int) -> tuple[int, str]:
    """Return (index after the closing quote, value)."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == q:
            return i + 1, "".join(out)
        if c == "\\" and q == '"' and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    raise ConfigError(f"unterminated {q} quote", file=path, line=line)


def read_raw_env_file(path: str) -> dict[str, str | None]:
    """`env_file: {path: ..., format: raw}`: KEY=VALUE lines taken as written (no quotes, no `${}`, no
    inline comments); blank lines and `#` lines are skipped."""
    text = _read(path)
    env: dict[str, str | None] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        env[key.strip()] = value if sep else None
    return env


def merged_environment(shell: Mapping[str, str], dotenv: Mapping[str, str | None]) -> dict[str, str]:
    """The interpolation environment: the shell wins over .env."""
    env = {k: v for k, v in dotenv.items() if v is not None}
    env.update(shell)
    return env
