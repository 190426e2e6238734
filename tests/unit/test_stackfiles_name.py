"""The fast project-name path of the read-only verbs must agree with the config loader whenever it
answers at all (None means: do the full load)."""

from __future__ import annotations

import pytest

from composer.stackfiles import fast_project_name
from composer.config import LoadOptions, load_project

SVC = "services:\n  a:\n    image: busybox\n"


@pytest.mark.parametrize("files, dotenv, environ, expect", [
    ({"compose.yaml": SVC}, None, {}, "dir"),
    ({"compose.yaml": "name: named\n" + SVC}, None, {}, "named"),
    ({"compose.yaml": "name: 'quoted'  # comment\n" + SVC}, None, {}, "quoted"),
    ({"compose.yaml": "name: base\n" + SVC, "compose.override.yaml": "name: over\n"}, None, {}, "over"),
    ({"docker-compose.yml": SVC}, None, {"COMPOSE_PROJECT_NAME": "fromenv"}, "fromenv"),
    ({"compose.yaml": "name: ${N:-x}\n" + SVC}, None, {}, None),
    ({"compose.yaml": SVC}, "COMPOSE_PROJECT_NAME=dotenv\n", {}, None),
    ({"compose.yaml": '{"name": "json", "services": {"a": {"image": "busybox"}}}'}, None, {}, None),
    ({"fig.yml": "x-top:\n  name: nested\n" + SVC}, None, {}, "dir"),
])
def test_agrees_with_loader(tmp_path, files, dotenv, environ, expect):
    d = tmp_path / "Dir"
    d.mkdir()
    for name, text in files.items():
        (d / name).write_text(text)
    if dotenv:
        (d / ".env").write_text(dotenv)
    fast = fast_project_name((), None, (), environ, cwd=str(d))
    assert fast == expect
    full = load_project(LoadOptions(environ=environ, cwd=str(d))).name
    if fast is not None:
        assert fast == full


def test_explicit_files_and_project_directory(tmp_path):
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "one.yaml").write_text(SVC)
    (tmp_path / "proj").mkdir()
    assert fast_project_name(("stacks/one.yaml",), None, (), {}, cwd=str(tmp_path)) == "stacks"
    assert fast_project_name(("stacks/one.yaml",), "proj", (), {}, cwd=str(tmp_path)) == "proj"
    full = load_project(LoadOptions(files=("stacks/one.yaml",), project_directory="proj", environ={},
                                    cwd=str(tmp_path))).name
    assert full == "proj"
    assert fast_project_name(("-",), None, (), {}, cwd=str(tmp_path)) is None
    assert fast_project_name((), None, (), {"COMPOSE_FILE": "x.yaml"}, cwd=str(tmp_path)) is None


# The regular expressions the name path used before it went without `re` (its import is a third of a
# lean `ps`): the hand-written matchers must answer exactly as they did.
_NAME_LINE = r"""^(["']?)name\1[ \t]*:[ \t]*(.*?)[ \t]*(?:#.*)?$"""
_FLOW_START = r"\A(?:\s*#[^\n]*\n|\s*\n)*\s*[{\[]"
_VALID = r"^[a-z0-9][a-z0-9_-]*\Z"


@pytest.mark.parametrize("text", [
    "name: x", "name:x", "name :  x  ", "name: x # c", "name: 'x'#c", 'name: "a b"  #', "name:", "name:   ",
    '"name": y', "'name' : y", "\"name': y", "'name\": y", "  name: nested", "names: x", "name x", "name: a#b#c",
    "name: x\t#\tc", "name:\tx\t", "x: 1\nname: two\n  name: three\nname: four # four\n", "name: x\r", "#name: x",
    "name: # only a comment", "name: é", "name:: x",
])
def test_name_lines_as_the_regex_read_them(text):
    import re

    from composer.stackfiles import _name_values

    assert _name_values(text) == [m.group(2) for m in re.finditer(_NAME_LINE, text, re.MULTILINE)]


@pytest.mark.parametrize("text", [
    "{", "  {", "[1]", "# c\n{", "\n\n  # c\n \t[", "a: {", "#\n#\nx", "", "   ", "# only", "\r\n{", "\f{",
    "x\n{", "  # c {\n", "\u00a0{",
])
def test_flow_style_as_the_regex_read_it(text):
    import re

    from composer.stackfiles import _flow_style

    assert _flow_style(text) == bool(re.match(_FLOW_START, text))


@pytest.mark.parametrize("name", ["a", "a-b_c9", "9", "-a", "_a", "A", "a.b", "", "aé", "a b", "a-"])
def test_valid_names_as_the_regex_read_them(name):
    import re

    from composer.stackfiles import _valid

    assert _valid(name) == bool(re.match(_VALID, name))
