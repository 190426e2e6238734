"""The corpus covers the specification: every key the vendored schema defines for the top level, services,
build, deploy, healthcheck, develop, networks, volumes, configs, secrets and include appears in some stack
of corpus/ (so the differential tier compares it with the reference), and the fast schema check agrees with
the jsonschema library on every corpus document."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.config.validate import _fast, schema
from composer.config.yamlsrc import parse
from composer.errors import ConfigError

from .oracle import CORPUS


def _documents() -> list[tuple[Path, dict]]:
    out = []
    for f in sorted(CORPUS.rglob("*.y*ml")):
        try:
            data, _ = parse(f.read_text(), str(f))
        except ConfigError:
            continue  # the refusal cases (duplicate keys)
        if isinstance(data, dict):
            out.append((f, data))
    return out


def _props(node: dict) -> set[str]:
    defs = schema()["definitions"]
    out: set[str] = set()
    for alt in [node] + node.get("oneOf", []) + node.get("anyOf", []):
        if "$ref" in alt:
            alt = defs[alt["$ref"].rsplit("/", 1)[-1]]
        out |= set(alt.get("properties", {}))
    return out


def _used() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {k: set() for k in ("top", "service", "build", "deploy", "healthcheck",
                                                     "development", "network", "volume", "config", "secret",
                                                     "include")}
    for _, d in _documents():
        used["top"] |= set(d)
        for s in (d.get("services") or {}).values():
            if isinstance(s, dict):
                used["service"] |= set(s)
                for key, kind in (("build", "build"), ("deploy", "deploy"), ("healthcheck", "healthcheck"),
                                  ("develop", "development")):
                    if isinstance(s.get(key), dict):
                        used[kind] |= set(s[key])
        for key, kind in (("networks", "network"), ("volumes", "volume"), ("configs", "config"),
                          ("secrets", "secret")):
            used[kind] |= {k for o in (d.get(key) or {}).values() if isinstance(o, dict) for k in o}
        used["include"] |= {k for i in d.get("include") or () if isinstance(i, dict) for k in i}
    return used


def test_every_key_of_the_spec_is_in_the_corpus():
    s = schema()
    defs = s["definitions"]
    want = {"top": set(s["properties"]), "service": _props(defs["service"]),
            "build": _props(defs["service"]["properties"]["build"]), "deploy": _props(defs["deployment"]),
            "healthcheck": _props(defs["healthcheck"]), "development": _props(defs["development"]),
            "network": _props(defs["network"]), "volume": _props(defs["volume"]),
            "config": _props(defs["config"]), "secret": _props(defs["secret"]), "include": _props(defs["include"])}
    used = _used()
    missing = {k: sorted(want[k] - used[k]) for k in want if want[k] - used[k]}
    assert not missing


@pytest.mark.parametrize("path,data", _documents(), ids=lambda x: str(x.relative_to(CORPUS)) if isinstance(x, Path) else "")
def test_fast_check_agrees_with_jsonschema(path, data):
    from jsonschema import Draft7Validator

    assert _fast()(data) == Draft7Validator(schema()).is_valid(data)
