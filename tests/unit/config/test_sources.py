import io
import os

import pytest

from composer.config import LoadOptions, load_project
from composer.config.sources import normalize_name
from composer.errors import ConfigError

SVC = "services:\n  a: {image: busybox}\n"


def test_discovery_walks_upward_and_applies_override(tmp_path):
    (tmp_path / "docker-compose.yml").write_text(SVC)
    (tmp_path / "docker-compose.override.yml").write_text("services:\n  b: {image: busybox}\n")
    deep = tmp_path / "x" / "y"
    deep.mkdir(parents=True)
    p = load_project(LoadOptions(environ={}, cwd=str(deep)))
    assert set(p.services) == {"a", "b"} and p.working_dir == str(tmp_path)


def test_compose_yaml_preferred_and_fig_names(tmp_path):
    (tmp_path / "fig.yaml").write_text("old:\n  image: busybox\n")
    assert set(load_project(LoadOptions(environ={}, cwd=str(tmp_path))).services) == {"old"}
    (tmp_path / "compose.yaml").write_text(SVC)
    assert set(load_project(LoadOptions(environ={}, cwd=str(tmp_path))).services) == {"a"}


def test_nothing_found(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_project(LoadOptions(environ={}, cwd=str(tmp_path)))
    assert "no stack file" in str(e.value)


def test_compose_file_variable(tmp_path):
    (tmp_path / "one.yml").write_text(SVC)
    (tmp_path / "two.yml").write_text("services:\n  b: {image: busybox}\n")
    p = load_project(LoadOptions(environ={"COMPOSE_FILE": "one.yml:two.yml"}, cwd=str(tmp_path)))
    assert set(p.services) == {"a", "b"}


def test_stdin(tmp_path):
    p = load_project(LoadOptions(files=("-",), environ={}, cwd=str(tmp_path), stdin=io.StringIO(SVC)))
    assert set(p.services) == {"a"} and p.files == ("-",)


def test_project_name_precedence(tmp_path):
    f = tmp_path / "compose.yaml"
    f.write_text("name: fromfile\n" + SVC)
    opts = dict(files=(str(f),), cwd=str(tmp_path))
    assert load_project(LoadOptions(environ={}, **opts)).name == "fromfile"
    assert load_project(LoadOptions(environ={"COMPOSE_PROJECT_NAME": "env"}, **opts)).name == "env"
    assert load_project(LoadOptions(environ={"COMPOSE_PROJECT_NAME": "env"}, project_name="flag", **opts)).name == "flag"
    with pytest.raises(ConfigError):
        load_project(LoadOptions(environ={}, project_name="Bad Name", **opts))


def test_directory_name_normalised(tmp_path):
    d = tmp_path / "My.App-Dir"
    d.mkdir()
    (d / "compose.yaml").write_text(SVC)
    assert load_project(LoadOptions(environ={}, cwd=str(d))).name == "myapp-dir"
    assert normalize_name("__Hello World__") == "helloworld__"


def test_project_directory_flag(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  a: {image: busybox, volumes: ['./d:/d']}\n")
    other = tmp_path / "other"
    other.mkdir()
    p = load_project(LoadOptions(environ={}, cwd=str(tmp_path), files=("compose.yaml",),
                                 project_directory="other"))
    assert p.working_dir == str(other) and p.services["a"].volumes[0].source == os.path.join(str(other), "d")
