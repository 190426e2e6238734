import pytest

from composer.errors import ConfigError

from .helpers import load_fixture


def test_default_only_unprofiled():
    p = load_fixture("profiles")
    assert set(p.services) == {"app", "opt"}
    assert set(p.disabled_services) == {"debug", "tool"}
    assert "debug" not in p.services["opt"].depends_on or not p.services["opt"].depends_on["debug"].required
    assert p.all_profiles() == ("debug", "tools")


def test_profile_flag_and_env():
    assert "debug" in load_fixture("profiles", profiles=("debug",)).services
    assert "debug" in load_fixture("profiles", environ={"COMPOSE_PROFILES": "debug,other"}).services
    assert set(load_fixture("profiles", profiles=("*",)).services) == {"app", "debug", "tool", "opt"}


def test_enabled_service_needing_disabled_one_names_both():
    with pytest.raises(ConfigError) as e:
        load_fixture("profiles", profiles=("tools",))
    msg = str(e.value)
    assert "'tool'" in msg and "'debug'" in msg and "profile" in msg


def test_named_service_enables_its_profiles():
    p = load_fixture("profiles", services=("debug",))
    assert "debug" in p.services and p.profiles == ("debug",)


def test_named_unknown_service():
    with pytest.raises(ConfigError):
        load_fixture("profiles", services=("nope",))
