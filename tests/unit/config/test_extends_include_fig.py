from .helpers import FIXTURES, load_fixture


def test_extends_same_file_and_other_file():
    p = load_fixture("extends")
    web = p.services["web"]
    assert web.image == "busybox" and web.environment_map == {"LEVEL": "base", "EXTRA": "1"}
    remote = p.services["remote"]
    sub = FIXTURES / "extends" / "sub"
    assert remote.image == "alpine" and remote.command == ("run",)
    assert remote.build.context == str(sub / "ctx")  # rebased to the extended file's directory
    assert remote.volumes[0].source == str(sub / "data")
    assert remote.environment_map == {"COMMON": "yes"}


def test_fig_format_1():
    p = load_fixture("fig")
    assert p.files[0].endswith("fig.yml") and p.name == "fig"
    web = p.services["web"]
    assert web.network_mode == "host" and web.links == (("db", "db"),)
    assert set(web.depends_on) == {"db"} and web.volumes_from == ("db",)
    assert p.services["db"].external_links == ("other_db_1:olddb",)


def test_include():
    p = load_fixture("include")
    assert set(p.services) == {"app", "lib"}
    assert p.services["lib"].volumes[0].source == str(FIXTURES / "include" / "inc" / "data")


def test_version_is_ignored(tmp_path):
    from .helpers import load_text
    p = load_text(tmp_path, "version: '2.4'\nservices:\n  a: {image: busybox}\n")
    assert list(p.services) == ["a"]


def test_extends_cycle(tmp_path):
    import pytest

    from composer.errors import ConfigError

    from .helpers import load_text
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, "services:\n  a: {image: x, extends: b}\n  b: {image: x, extends: a}\n")
    assert "a -> b -> a" in str(e.value)


def test_extends_unknown(tmp_path):
    import pytest

    from composer.errors import ConfigError

    from .helpers import load_text
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, "services:\n  web: {image: x}\n  a:\n    extends: {service: wbe}\n")
    assert "wbe" in str(e.value) and "did you mean 'web'" in str(e.value) and ":4:" in str(e.value)


def test_extends_a_service_without_a_body(tmp_path):
    """Found by test_property: `base:` with nothing under it was an AttributeError, not a message."""
    import pytest

    from composer.config import LoadOptions, load_project
    from composer.errors import ConfigError

    (tmp_path / "compose.yaml").write_text("services:\n  base:\n  web:\n    extends: base\n    image: x\n")
    with pytest.raises(ConfigError, match="compose.yaml:2:3: service 'base': a service needs a definition"):
        load_project(LoadOptions(cwd=str(tmp_path), environ={}))
