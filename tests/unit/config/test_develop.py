"""`develop.watch` in the model: the spec's keys typed, paths absolute, and what the schema cannot
say refused at the rule's file:line; `develop` does not change the config hash."""

from __future__ import annotations

import pytest

from composer.config.serialize import config_hash
from composer.errors import ConfigError
from tests.unit.config.helpers import load_text

GOOD = """services:
  app:
    image: busybox
    develop:
      watch:
        - action: sync+restart
          path: ./app/src
          target: /app/src
          ignore: "**/*.pyc"
          include: ["*.py"]
          initial_sync: true
        - action: sync+exec
          path: ./app/static
          target: /app/static
          exec: {command: kill -HUP 1, user: root, environment: {A: "1"}}
        - action: rebuild
          path: ./app/requirements.txt
"""


def test_rules_are_typed(tmp_path):
    rules = load_text(tmp_path, GOOD).services["app"].develop.watch
    assert [r.action for r in rules] == ["sync+restart", "sync+exec", "rebuild"]
    assert rules[0].path == str(tmp_path / "app" / "src") and rules[0].target == "/app/src"
    assert rules[0].ignore == ("**/*.pyc",) and rules[0].include == ("*.py",) and rules[0].initial_sync
    assert rules[1].exec.command == ("kill", "-HUP", "1") and rules[1].exec.user == "root"
    assert rules[1].exec.environment == (("A", "1"),)
    assert rules[2].target is None and rules[0].where.endswith("compose.yaml:6")


@pytest.mark.parametrize("rule, line, words", [
    ("{action: sync, path: ./src}", 6, "needs a target"),
    ("{action: sync, path: ./src, target: app}", 6, "absolute path"),
    ("{action: sync+exec, path: ./src, target: /app}", 6, "needs exec"),
    ("{action: restart, path: ./src, exec: {command: [\"true\"]}}", 6, "only run by action sync+exec"),
    ("{action: resync, path: ./src}", 6, "must be one of"),
    ("{path: ./src, target: /app}", 6, "action"),
])
def test_bad_rules_name_file_and_line(tmp_path, rule, line, words):
    text = f"services:\n  app:\n    image: busybox\n    develop:\n      watch:\n        - {rule}\n"
    with pytest.raises(ConfigError) as err:
        load_text(tmp_path, text)
    assert f"compose.yaml:{line}" in str(err.value) and words in str(err.value)


def test_develop_is_not_in_the_config_hash(tmp_path):
    with_rules = load_text(tmp_path, GOOD).services["app"]
    without = load_text(tmp_path, "services:\n  app:\n    image: busybox\n").services["app"]
    assert config_hash(with_rules) == config_hash(without)



def test_config_prints_what_loads_again(tmp_path):
    import json
    from dataclasses import replace

    from composer.config.serialize import project_dict

    first = load_text(tmp_path, GOOD)
    again = load_text(tmp_path, json.dumps(project_dict(first)), name="again.yaml")  # YAML reads JSON
    strip = lambda s: tuple(replace(r, where="") for r in s.develop.watch)  # noqa: E731
    assert strip(again.services["app"]) == strip(first.services["app"])
