"""Hostile and broken stack files are refused fast, in bounded memory, with one line that says what is
wrong: empty files, NUL bytes, alias bombs, huge files, huge files of unknown keys, names too long."""

from __future__ import annotations

import resource
import time

import pytest

from composer.cli.main import main
from composer.config import documents
from composer.errors import ConfigError
from tests.unit.config.helpers import load_text

BOMB = """services:
  a:
    image: bb
    environment:
      X: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
x-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
x-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
x-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
x-e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
x-f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
x-g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
x-h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
x-i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _refused(tmp_path, text, **kw) -> tuple[str, float, int]:
    """(message, seconds, growth of the max RSS in kB)"""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.monotonic()
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text, **kw)
    return str(e.value), time.monotonic() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss


def test_alias_bomb_is_refused_in_a_blink(tmp_path):
    msg, secs, grown = _refused(tmp_path, BOMB)
    assert "too many aliases expanded" in msg and "compose.yaml:" in msg
    assert secs < 2 and grown < 100_000, (secs, grown)


def test_anchors_of_a_real_file_pass(tmp_path):
    common = "x-common: &common\n  image: bb\n  environment: {A: '1', B: '2'}\n  labels: [a=b, c=d]\n"
    services = "".join(f"  s{i}:\n    <<: *common\n    command: [sleep, '{i}']\n" for i in range(200))
    assert len(load_text(tmp_path, common + "services:\n" + services).services) == 200


def test_a_file_too_large_is_refused_unread(tmp_path):
    text = "services:\n  a:\n    image: bb\nx-pad:\n" + "  - padding padding padding\n" * 100_000
    assert len(text) > documents.MAX_FILE_SIZE
    msg, secs, grown = _refused(tmp_path, text)
    assert "larger than 2 MiB" in msg and secs < 1, (msg, secs)


def test_unknown_keys_of_a_large_file_are_refused_before_the_parse(tmp_path):
    text = "services:\n  a:\n    image: bb\n" + "".join(f"k{i}:\n  v: [1, 2, 3]\n" for i in range(60_000))
    assert documents._EARLY_CHECK_SIZE < len(text) < documents.MAX_FILE_SIZE
    msg, secs, _ = _refused(tmp_path, text)
    assert "compose.yaml:4:1: unknown top-level key 'k0'" in msg and "aliases" not in msg
    assert secs < 1


def test_empty_file_is_an_error(tmp_path):
    msg, _, _ = _refused(tmp_path, "# nothing here\n")
    assert msg.endswith("empty compose file")


def test_nul_byte_is_one_line(tmp_path, capsys):
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: \"b\0b\"\n")
    assert main(["-f", str(tmp_path / "compose.yaml"), "config"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "compose.yaml:3: the file contains a NUL byte" in err


@pytest.mark.parametrize("flag", ["-p", "env"])
def test_project_name_too_long(tmp_path, capsys, monkeypatch, flag):
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: bb\n")
    monkeypatch.chdir(tmp_path)
    args = ["config"]
    if flag == "-p":
        args = ["-p", "a" * 300, "config"]
    else:
        monkeypatch.setenv("COMPOSE_PROJECT_NAME", "a" * 300)
    assert main(args) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at most 63" in err


def test_down_with_a_long_project_name_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["-p", "b" * 300, "down"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid project name" in err and "at most 63" in err


def test_logs_of_an_unknown_service_fails(tmp_path, capsys, monkeypatch):
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    image: bb\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPOSER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COMPOSER_DATA_DIR", str(tmp_path / "data"))
    assert main(["logs", "nosuch"]) != 0
    assert capsys.readouterr().err == "composer: no such service: nosuch\n"
