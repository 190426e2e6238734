"""A JSON Schema compiled to Python closures, for the keywords the vendored compose-spec schema uses (type,
properties, additionalProperties, patternProperties, required, items, oneOf, anyOf, enum, pattern,
uniqueItems, minimum, maximum, $ref). A keyword it does not implement is an error when compiling, never
ignored: the check must accept exactly what the jsonschema library accepts.

Why: the jsonschema library takes ~250 ms to validate a 200-service file and ~50 ms to import; this
yes/no check takes a few ms. It only answers "valid?": on "no", the jsonschema library validates
again and explains the error, so the library stays the authority on every message (and a bug here
can only cost time, never accept a file the library rejects — tests compare the two)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _unique(v: Any) -> bool:
    """JSON uniqueness: 1 and true differ, 1 and 1.0 do not; items may be mappings or lists."""
    if not isinstance(v, list):
        return True
    for i, a in enumerate(v):
        for b in v[i + 1:]:
            if _deep_equal(a, b):
                return False
    return True


def _deep_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return _equal(a, b)


class UnsupportedSchema(Exception):
    pass


def compile_schema(root: dict) -> Check:
    refs: dict[str, Check] = {}

    def ref(target: str) -> Check:
        if target not in refs:
            if not target.startswith("#/"):
                raise UnsupportedSchema(target)
            node: Any = root
            for part in target[2:].split("/"):
                node = node[part]
            refs[target] = lambda v: False  # placeholder while compiling (recursion)
            refs[target] = comp(node)
        return lambda v: refs[target](v)

    def comp(s: Any) -> Check:
        if s is True or s == {}:
            return lambda v: True
        if s is False:
            return lambda v: False
        checks: list[Check] = []
        for key, value in s.items():
            if key in ("$schema", "$id", "title", "description", "definitions", "default", "$comment", "deprecated",
                       "examples"):
                continue
            if key == "$ref":
                checks.append(ref(value))
            elif key == "type":
                types = [_TYPES[t] for t in (value if isinstance(value, list) else [value])]
                checks.append(types[0] if len(types) == 1 else (lambda v, ts=tuple(types): any(t(v) for t in ts)))
            elif key == "enum":
                allowed = list(value)
                checks.append(lambda v, a=allowed: any(_equal(v, x) for x in a))
            elif key == "pattern":
                rx = re.compile(value)
                checks.append(lambda v, rx=rx: not isinstance(v, str) or rx.search(v) is not None)
            elif key == "required":
                req = tuple(value)
                checks.append(lambda v, r=req: not isinstance(v, dict) or all(k in v for k in r))
            elif key == "items":
                item = comp(value)
                checks.append(lambda v, c=item: not isinstance(v, list) or all(c(x) for x in v))
            elif key == "uniqueItems":
                if value:
                    checks.append(_unique)
            elif key in ("minimum", "maximum"):
                bound, low = value, key == "minimum"
                checks.append(lambda v, b=bound, low=low: not _TYPES["number"](v) or (v >= b if low else v <= b))
            elif key in ("oneOf", "anyOf"):
                alts = [comp(a) for a in value]
                if key == "oneOf":
                    checks.append(lambda v, alts=alts: sum(1 for a in alts if a(v)) == 1)
                else:
                    checks.append(lambda v, alts=alts: any(a(v) for a in alts))
            elif key in ("properties", "patternProperties", "additionalProperties"):
                continue  # compiled together below
            else:
                raise UnsupportedSchema(key)
        if any(k in s for k in ("properties", "patternProperties", "additionalProperties")):
            checks.append(_object(s, comp))
        if not checks:
            return lambda v: True
        if len(checks) == 1:
            return checks[0]
        return lambda v, cs=tuple(checks): all(c(v) for c in cs)

    return comp(root)


def _object(s: dict, comp: Callable[[Any], Check]) -> Check:
    props = {k: comp(v) for k, v in (s.get("properties") or {}).items()}
    patterns = [(re.compile(p), comp(v)) for p, v in (s.get("patternProperties") or {}).items()]
    extra = s.get("additionalProperties", True)
    extra_check = None if extra is True else (comp(extra) if extra is not False else False)

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for key, value in v.items():
            matched = False
            c = props.get(key)
            if c is not None:
                if not c(value):
                    return False
                matched = True
            for rx, pc in patterns:
                if rx.search(key):
                    matched = True
                    if not pc(value):
                        return False
            if not matched and extra_check is not None:
                if extra_check is False or not extra_check(value):
                    return False
        return True

    return check
