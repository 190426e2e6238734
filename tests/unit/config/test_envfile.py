import pytest

from composer.config.envfile import parse_env
from composer.errors import ConfigError

from .helpers import load_fixture


def test_grammar():
    text = """# comment
export A=1
B = spaced
C='single $A \\n literal'
D="double $A\\nline \\"q\\" \\$lit"
E=unquoted # inline comment
F=hash#kept
G=
H=""
I='multi
line'
BARE
"""
    env = parse_env(text, lookup={"BARE": "from-shell"}.get)
    assert env == {"A": "1", "B": "spaced", "C": "single $A \\n literal", "D": 'double 1\nline "q" $lit',
                   "E": "unquoted", "F": "hash#kept", "G": "", "H": "", "I": "multi\nline", "BARE": "from-shell"}


def test_shell_wins_in_expansion():
    assert parse_env("A=file\nB=${A}", lookup={"A": "shell"}.get)["B"] == "shell"


def test_bad_line_has_line_number():
    with pytest.raises(ConfigError) as e:
        parse_env("A=1\n=nokey\n", "x.env")
    assert "x.env:2" in str(e.value)


def test_unterminated_quote():
    with pytest.raises(ConfigError):
        parse_env("A='open\n", "x.env")


def test_dotenv_env_file_and_precedence():
    p = load_fixture("envfile")
    assert p.name == "fromdotenv"  # COMPOSE_PROJECT_NAME from .env
    app = p.services["app"]
    assert app.image == "busybox:1.36"
    env = app.environment_map
    assert env["OVERRIDDEN"] == "from-environment"  # environment wins over env_file
    assert env["FROM_FILE"] == "yes"
    assert "TAG" not in env  # .env feeds interpolation, not containers
    assert p.env_sources["TAG"].endswith(".env")


def test_shell_over_dotenv():
    p = load_fixture("envfile", environ={"TAG": "2.0", "COMPOSE_PROJECT_NAME": "shellname"})
    assert p.services["app"].image == "busybox:2.0" and p.name == "shellname"
    assert p.env_sources["TAG"] == "shell"


def test_env_file_never_feeds_interpolation(tmp_path):
    (tmp_path / "a.env").write_text("IMG=alpine\n")
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    image: x${IMG}\n    env_file: a.env\n")
    from composer.config import LoadOptions, load_project
    p = load_project(LoadOptions(files=(str(tmp_path / "compose.yaml"),), environ={}))
    assert p.services["app"].image == "x"


def test_explicit_env_file_replaces_dotenv(tmp_path):
    (tmp_path / ".env").write_text("TAG=dot\n")
    (tmp_path / "other.env").write_text("TAG=other\n")
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    image: busybox:${TAG}\n")
    from composer.config import LoadOptions, load_project
    p = load_project(LoadOptions(files=(str(tmp_path / "compose.yaml"),), environ={}, cwd=str(tmp_path),
                                 env_files=("other.env",)))
    assert p.services["app"].image == "busybox:other"


def test_missing_required_env_file(tmp_path):
    (tmp_path / "compose.yaml").write_text("services:\n  app:\n    image: busybox\n    env_file: nope.env\n")
    from composer.config import LoadOptions, load_project
    with pytest.raises(ConfigError) as e:
        load_project(LoadOptions(files=(str(tmp_path / "compose.yaml"),), environ={}))
    assert "nope.env" in str(e.value) and "compose.yaml:4" in str(e.value)
