"""The vendored compose-spec schema is upstream's, unmodified (schemas/README.md says which one), and the
keys of the current specification load."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from composer.config.validate import SCHEMA_PATH, _fast, schema

from .helpers import load_text

ROOT = Path(__file__).resolve().parents[3]


def test_schema_is_the_upstream_file_named_in_the_readme():
    readme = (ROOT / "schemas" / "README.md").read_text()
    want = re.search(r"sha256 `([0-9a-f]{64})`", readme).group(1)
    assert hashlib.sha256(Path(SCHEMA_PATH).read_bytes()).hexdigest() == want


def test_fast_check_compiles_from_the_vendored_schema():
    assert _fast()({"services": {"a": {"image": "x", "gpus": "all"}}})
    assert not _fast()({"services": {"a": {"image": "x", "gpuz": "all"}}})
    assert schema()["$id"] == "compose_spec.json"


CURRENT_KEYS = """
services:
  app:
    image: busybox
    gpus: all
    use_api_socket: true
    label_file: [./labels]
    post_start: [{command: echo started, user: root}]
    pre_stop: [{command: [echo, bye]}]
    models: [llm]
    develop: {watch: [{action: sync, path: ./src, target: /src}]}
    build: {context: ., entitlements: [network.host], additional_contexts: {base: ./base}}
models:
  llm: {model: ai/smollm2}
"""


def test_current_spec_keys_are_accepted(tmp_path):
    (tmp_path / "labels").write_text("a=b\n")
    p = load_text(tmp_path, CURRENT_KEYS)
    assert "app" in p.services
