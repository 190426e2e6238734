import pytest

from composer.config.interpolate import InterpolationError, expand
from composer.errors import ConfigError

from .helpers import load_text

ENV = {"SET": "v", "EMPTY": ""}


@pytest.mark.parametrize("text,want", [
    ("$SET", "v"), ("${SET}", "v"), ("x${SET}y", "xvy"), ("$SET.x", "v.x"),
    ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"), ("${SET:-d}", "v"),
    ("${SET:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
    ("${UNSET:-${SET}}", "v"), ("${UNSET:-${ALSO:-deep}}", "deep"), ("${UNSET:-a-$SET-b}", "a-v-b"),
    ("$$SET", "$SET"), ("$${SET}", "${SET}"), ("a$$", "a$"), ("${SET:?boom}", "v"),
    ("${SET:-${UNSET:?never evaluated}}", "v"), ("no vars", "no vars"), ("${UNSET}", ""),
])
def test_operators(text, want):
    assert expand(text, ENV.get) == want


@pytest.mark.parametrize("text", ["${UNSET:?need it}", "${EMPTY:?x}", "${UNSET?x}", "${", "${SET", "${1BAD}",
                                  "${SET:x}", "${UNSET:-${SET}"])
def test_errors(text):
    with pytest.raises(InterpolationError):
        expand(text, ENV.get)


def test_unset_is_reported():
    missing = []
    assert expand("${A}-$B", {}.get, missing) == "-"
    assert missing == ["A", "B"]


def test_values_only_never_keys(tmp_path):
    p = load_text(tmp_path, "services:\n  app:\n    image: ${IMG}\n    labels:\n      ${KEY}: ${VAL}\n",
                  environ={"IMG": "busybox", "KEY": "k", "VAL": "v"})
    assert p.services["app"].image == "busybox"
    assert dict(p.services["app"].labels) == {"${KEY}": "v"}


def test_required_variable_error_has_location(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, "services:\n  app:\n    image: ${IMG:?set IMG please}\n")
    msg = str(e.value)
    assert "compose.yaml:3:5" in msg and "IMG" in msg and "set IMG please" in msg and "'app'" in msg
    assert e.value.service == "app" and e.value.key == "image"


def test_unset_warning(tmp_path):
    p = load_text(tmp_path, "services:\n  app:\n    image: busybox${NOPE}\n")
    assert p.services["app"].image == "busybox"
    assert any("NOPE" in w for w in p.warnings)


def test_no_interpolate_keeps_text(tmp_path):
    p = load_text(tmp_path, "services:\n  app:\n    image: ${IMG:-busybox}\n", interpolate=False)
    assert p.services["app"].image == "${IMG:-busybox}"


def test_dollar_escape_in_values(tmp_path):
    p = load_text(tmp_path, "services:\n  app:\n    image: busybox\n    command: echo $$HOME\n")
    assert p.services["app"].command == ("echo", "$HOME")
