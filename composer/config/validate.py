"""Validation of the merged document against the project's JSON Schema (schemas/compose-spec.json),
turning the jsonschema library's verdict into one short ConfigError at file:line:column, with a
"did you mean" for a misspelt key."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

from composer.config.interpolate import located_error
from composer.config.yamlsrc import Marks

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "schemas", "compose-spec.json")


@lru_cache(maxsize=1)
def schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return json.load(fh)


@lru_cache(maxsize=1)
def _validators() -> tuple[Any, Any]:
    """(top-level validator, per-service validator). Imported lazily: jsonschema costs ~70 ms."""
    from jsonschema import Draft7Validator

    s = schema()
    top = dict(s)
    top["properties"] = dict(s["properties"])
    # services are validated one by one (and cached by content): the same definition often repeats
    top["properties"]["services"] = {"type": "object", "additionalProperties": False,
                                     "patternProperties": {"^[a-zA-Z0-9._-]+$": {}}}
    service = {"definitions": s["definitions"], **s["definitions"]["service"]}
    return Draft7Validator(top), Draft7Validator(service)


@lru_cache(maxsize=1)
def _fast() -> Any:
    from composer.config.fastschema import compile_schema

    return compile_schema(schema())


def validate(data: dict, marks: Marks) -> None:
    """Fast yes/no check first; only an invalid file pays for the jsonschema library's diagnosis."""
    if _fast()(data):
        return
    top, service = _validators()
    err = _first_error(top, data)
    if err is not None:
        raise _to_config_error(err, (), marks)
    seen: set[str] = set()
    for name, svc in (data.get("services") or {}).items():
        if svc is None:
            raise located_error("a service needs a definition (a mapping)", marks, ("services", name))
        key = json.dumps(svc, sort_keys=True, default=str)
        if key in seen:
            continue
        err = _first_error(service, svc)
        if err is not None:
            raise _to_config_error(err, ("services", name), marks)
        seen.add(key)


def _first_error(validator: Any, instance: Any) -> Any:
    from jsonschema.exceptions import best_match, relevance

    errors = list(validator.iter_errors(instance))
    if not errors:
        return None
    # Prefer an unknown key over a type mismatch inside oneOf alternatives: it is what a typo produces.
    return best_match(errors, key=relevance)


def _describe(instance: Any) -> str:
    if instance is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(instance), type(instance).__name__)


_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
               "array": "a list", "object": "a mapping", "null": "null"}


def _to_config_error(err: Any, prefix: tuple, marks: Marks):
    # descend into oneOf/anyOf: the alternative whose type matches the value says the most
    while err.validator in ("oneOf", "anyOf") and err.context:
        same_type = [e for e in err.context if e.validator != "type" and len(e.absolute_path) >= len(err.absolute_path)]
        if not same_type:
            break
        err = max(same_type, key=lambda e: len(e.absolute_path))
    path = prefix + tuple(err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        props = list((err.schema.get("properties") or {}).keys())
        patterns = list((err.schema.get("patternProperties") or {}).keys())
        import re

        extra = [k for k in err.instance if k not in props and not any(re.search(p, k) for p in patterns)]
        bad = extra[0] if extra else "?"
        if not props and path and path[-1] in ("services", "networks", "volumes", "configs", "secrets"):
            return located_error(f"invalid name {bad!r} (use letters, digits, '.', '_' and '-')", marks, path + (bad,))
        import difflib  # only for a message

        close = difflib.get_close_matches(bad, props, n=1, cutoff=0.6)
        return located_error(f"unknown key {bad!r}", marks, path + (bad,),
                             hint=f"did you mean {close[0]!r}?" if close else None)
    if v == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in want)
        return located_error(f"must be {words}, not {_describe(err.instance)}", marks, path)
    if v == "enum":
        return located_error(f"must be one of {', '.join(map(str, err.validator_value))}, not {err.instance!r}",
                             marks, path)
    if v == "required":
        return located_error(err.message.replace("is a required property", "is required"), marks, path)
    if v in ("oneOf", "anyOf"):
        return located_error(f"invalid value {_short(err.instance)}", marks, path)
    return located_error(err.message, marks, path)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
