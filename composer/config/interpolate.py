"""Variable interpolation as the compose specification defines it: `$VAR`, `${VAR}`, `${VAR:-d}`,
`${VAR-d}`, `${VAR:?msg}`, `${VAR?msg}`, `${VAR:+alt}`, `${VAR+alt}`, nested defaults, and `$$` for a
literal `$`. A `$` followed by neither a name nor `{` (`$(hostname)`, `$1`, `5$`) is kept as written, as the
reference implementation does. Applied to values only, never to mapping keys."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from composer.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from composer.config.yamlsrc import Marks

_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")


class InterpolationError(Exception):
    """Raised by expand(); the caller turns it into a ConfigError with a location."""


def expand(text: str, lookup: Callable[[str], str | None], missing: list[str] | None = None) -> str:
    """Expand every variable reference in `text`. `missing` collects names that were unset and
    had no default (compose warns about them and substitutes an empty string)."""
    if "$" not in text:
        return text
    out, _ = _expand(text, 0, lookup, missing, inside=False)
    return out


def _expand(text: str, i: int, lookup, missing, inside: bool) -> tuple[str, int]:
    """Expand from position i; inside braces stop at the unmatched `}` and return its index."""
    out: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == "}" and inside:
            return "".join(out), i
        if c != "$":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1] if i + 1 < n else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            value, i = _braced(text, i + 2, lookup, missing)
            out.append(value)
        elif nxt in _NAME_START:
            j = i + 1
            while j < n and text[j] in _NAME_CHARS:
                j += 1
            out.append(_get(text[i + 1:j], lookup, missing))
            i = j
        else:  # not a reference: the `$` is text (`$(cmd)`, `$1`, a trailing `$`)
            out.append("$")
            i += 1
    if inside:
        raise InterpolationError(f"missing closing brace in {text!r}")
    return "".join(out), i


def _braced(text: str, i: int, lookup, missing) -> tuple[str, int]:
    """Parse `NAME[op word]}` starting after `${`; return (value, index after `}`)."""
    n = len(text)
    j = i
    while j < n and text[j] in _NAME_CHARS:
        j += 1
    name = text[i:j]
    if not name or name[0] not in _NAME_START:
        raise InterpolationError(f"invalid interpolation format in {text!r}: bad variable name")
    if j >= n:
        raise InterpolationError(f"missing closing brace in {text!r}")
    if text[j] == "}":
        return _get(name, lookup, missing), j + 1
    colon = text[j] == ":"
    op_at = j + 1 if colon else j
    op = text[op_at] if op_at < n else ""
    if op not in ("-", "?", "+"):
        raise InterpolationError(f"invalid interpolation format in {text!r}: unknown operator after {name}")
    value = lookup(name)
    is_set = value is not None and (value != "" or not colon)
    # The word is expanded lazily: `${A:-${B:?}}` must not fail when A is set.
    word_lookup = lookup if (op == "-" and not is_set) or (op == "+" and is_set) or op == "?" else _skip
    word, end = _expand(text, op_at + 1, word_lookup, missing if word_lookup is lookup else None, inside=True)
    if op == "-":
        result = value if is_set else word
    elif op == "+":
        result = word if is_set else ""
    else:
        if not is_set:
            raise InterpolationError(f"required variable {name} is missing a value" + (f": {word}" if word else ""))
        result = value
    return result or "", end + 1


class Variable(NamedTuple):
    """A variable a stack file uses, as `config --variables` lists it."""

    name: str
    required: bool = False
    default: str = ""  # the word of `${NAME-word}` / `${NAME:-word}`, as written
    alternate: str = ""  # the word of `${NAME+word}` / `${NAME:+word}`


def variables(text: str) -> list[Variable]:
    """Every variable `text` refers to, in order, the words of nested references included."""
    out: list[Variable] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("$", i)
        if j < 0 or j + 1 >= n:
            break
        nxt = text[j + 1]
        if nxt == "$":
            i = j + 2
        elif nxt in _NAME_START:
            k = j + 1
            while k < n and text[k] in _NAME_CHARS:
                k += 1
            out.append(Variable(text[j + 1:k]))
            i = k
        elif nxt == "{":
            k = j + 2
            while k < n and text[k] in _NAME_CHARS:
                k += 1
            name, depth, end = text[j + 2:k], 1, k
            while end < n and depth:  # the matching brace
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                end += 1
            body = text[k:end - 1] if depth == 0 else text[k:]
            op = body.lstrip(":")[:1]
            word = body[2:] if body.startswith(":") else body[1:]
            if name and name[0] in _NAME_START:
                out.append(Variable(name, required=op == "?", default=word if op == "-" else "",
                                    alternate=word if op == "+" else ""))
            out.extend(variables(word))
            i = end
        else:
            i = j + 1
    return out


def _skip(_name: str) -> str:
    return "x"  # an unused branch: any set value, so nothing in it can fail


def _get(name: str, lookup, missing) -> str:
    value = lookup(name)
    if value is None:
        if missing is not None:
            missing.append(name)
        return ""
    return value


def interpolate_tree(data: Any, environ: Mapping[str, str], marks: Marks, warnings: list[str],
                     path: tuple = ()) -> Any:
    """Interpolate every string value of a document. Errors name the file:line:column of the value."""
    # here, not at the top: `.env` files (and so LoadOptions' module, which every command imports)
    # use expand() alone, and yaml is not imported when a cached model is used (config.cache)
    from composer.config.yamlsrc import Override

    lookup = environ.get

    def walk(value: Any, p: tuple) -> Any:
        if isinstance(value, str):
            if "$" not in value:
                return value
            missing: list[str] = []
            try:
                out = expand(value, lookup, missing)
            except InterpolationError as err:
                raise located_error(str(err), marks, p) from None
            for name in missing:
                msg = f"the {name} variable is not set, defaulting to a blank string"
                if msg not in warnings:
                    warnings.append(msg)
            return out
        if isinstance(value, dict):
            return {k: walk(v, p + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, p + (i,)) for i, v in enumerate(value)]
        if isinstance(value, Override):
            return Override(walk(value.value, p))
        return value

    return walk(data, path)


def located_error(message: str, marks: Marks, path: tuple, hint: str | None = None) -> ConfigError:
    """A ConfigError at the closest known mark of `path`, naming the service and key."""
    mark = None
    p = tuple(path)
    while p:
        mark = marks.get(p)
        if mark:
            break
        p = p[:-1]
    service = key = None
    if len(path) >= 2 and path[0] == "services":
        service = str(path[1])
        key = ".".join(str(x) for x in path[2:]) or None
    elif path:
        key = ".".join(str(x) for x in path)
    prefix = ""
    if service:
        prefix = f"service {service!r}" + (f" {key}" if key else "") + ": "
    elif key:
        prefix = f"{key}: "
    return ConfigError(prefix + message, file=mark.file if mark else None,
                       line=mark.line if mark else None, column=mark.column if mark else None,
                       service=service, key=key, hint=hint)
