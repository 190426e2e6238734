"""Property tests: whatever the input, the loader returns a Project or raises ConfigError (never
another exception), and the fast schema check agrees with the jsonschema library."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.config import LoadOptions, Project, load_project
from composer.config.validate import _fast, _validators, schema
from composer.errors import ConfigError

from .helpers import FIXTURES

SEEDS = [p.read_text() for p in sorted(FIXTURES.rglob("*.y*ml"))]
KEYS = ["image", "build", "command", "ports", "volumes", "environment", "depends_on", "links", "networks",
        "healthcheck", "deploy", "extends", "profiles", "env_file", "network_mode", "mem_limit", "scale",
        "services", "volumes_from", "container_name", "test", "condition", "target", "published", "x-a", "tty"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=12), st.sampled_from(["80:80", "./a:/b:ro", "${A:-x}", "$$", "${B:?}", "1g",
                                                           "10s", "service:a", "a", "b", "!reset", "~/x:/y"]))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                   st.dictionaries(st.sampled_from(KEYS + ["a", "b"]), c, max_size=5)),
                      max_leaves=25)
documents = st.one_of(
    values,
    st.fixed_dictionaries({"services": st.dictionaries(st.sampled_from(["a", "b", "c"]),
                                                       st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
                                                       max_size=3)}),
)

_DIR = Path(tempfile.mkdtemp(prefix="composer-prop-"))
SETTINGS = settings(max_examples=int(__import__("os").environ.get("PROP_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(text: str) -> None:
    f = _DIR / "compose.yaml"
    f.write_text(text)
    try:
        result = load_project(LoadOptions(files=(str(f),), environ={"A": "1"}, cwd=str(_DIR)))
        assert isinstance(result, Project)
        hash(result)
    except ConfigError as err:
        assert str(err) and "\n" not in str(err)


@SETTINGS
@given(documents)
def test_random_documents(doc):
    _load(yaml.safe_dump(doc))


@SETTINGS
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(
    ["", ":", "-", " ", "\n", "{", "[", "'", '"', "$", "${", "!reset ", "&a", "*a", "\t", "x", "0", "#", "<<: "])),
    min_size=1, max_size=4))
def test_mutated_fixtures(seed, edits):
    text = seed
    for pos, ins in edits:
        pos %= len(text) + 1
        text = text[:pos] + ins + text[pos + 1:] if ins == "" else text[:pos] + ins + text[pos:]
    _load(text)


@SETTINGS
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=6))
def test_fast_schema_agrees_with_jsonschema(service):
    from jsonschema import Draft7Validator

    doc = {"services": {"a": service}}
    assert _fast()(doc) == Draft7Validator(schema()).is_valid(doc)
    top, svc = _validators()
    assert svc.is_valid(service) == Draft7Validator(schema()).is_valid(doc)


TOP_KEYS = ["name", "services", "networks", "volumes", "configs", "secrets", "models", "include", "version", "x-a",
            "extra"]
OBJ_KEYS = ["driver", "external", "name", "labels", "driver_opts", "ipam", "file", "content", "environment",
            "model", "context_size", "path", "env_file", "project_directory", "internal", "a"]
objects = st.dictionaries(st.sampled_from(["a", "b", "bad name"]),
                          st.one_of(st.none(), st.dictionaries(st.sampled_from(OBJ_KEYS), values, max_size=4)),
                          max_size=2)


@SETTINGS
@given(st.dictionaries(st.sampled_from(TOP_KEYS), st.one_of(values, objects), max_size=5))
def test_fast_schema_agrees_on_whole_documents(doc):
    """Not only service bodies: the top level, networks, volumes, configs, secrets, models, include."""
    from jsonschema import Draft7Validator

    assert _fast()(doc) == Draft7Validator(schema()).is_valid(doc)
