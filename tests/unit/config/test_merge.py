from composer.config.merge import merge_services

from .helpers import load_fixture


def test_override_file_is_applied_automatically():
    p = load_fixture("override")
    assert len(p.files) == 2 and p.files[1].endswith("compose.override.yaml")
    web = p.services["web"]
    assert web.command == ("c",)  # command replaces
    assert web.environment_map == {"A": "1", "B": "3", "C": "4"}  # key by key across list and map forms
    assert dict(web.labels) == {"x": "1", "y": "2"}
    assert [(x.published, x.target) for x in web.ports] == [("8080", 80), ("9090", 90)]  # de-duplicated
    assert [(v.source.rsplit("/", 1)[-1], v.target) for v in web.volumes] == [("b", "/a")]  # by target
    assert web.dns == ("1.1.1.1", "8.8.8.8")  # sequences append
    assert set(web.depends_on) == {"db", "cache"}  # list became a map, then merged
    assert web.depends_on["cache"].condition == "service_healthy"
    assert p.services["db"].ports == ()  # !reset
    assert "cache" in p.services


def test_override_tag():
    p = load_fixture("override", files=("compose.yaml", "compose.override.yaml", "third.yaml"))
    assert p.services["web"].environment_map == {"ONLY": "me"}


def test_explicit_files_skip_the_override():
    p = load_fixture("override", files=("compose.yaml",))
    assert p.services["web"].command == ("a", "b") and "cache" not in p.services


def test_merge_rules_directly():
    base = {"image": "a", "entrypoint": ["x"], "healthcheck": {"test": ["CMD", "a"], "retries": 3},
            "ulimits": {"nofile": {"soft": 1, "hard": 2}}, "build": "./ctx", "expose": [80]}
    over = {"entrypoint": ["y"], "healthcheck": {"test": ["CMD", "b"]}, "ulimits": {"nproc": 5},
            "build": {"dockerfile": "D"}, "expose": ["80", 81]}
    out = merge_services(base, over)
    assert out["entrypoint"] == ["y"]
    assert out["healthcheck"] == {"test": ["CMD", "b"], "retries": 3}
    assert out["ulimits"] == {"nofile": {"soft": 1, "hard": 2}, "nproc": 5}
    assert out["build"] == {"context": "./ctx", "dockerfile": "D"}
    assert out["expose"] == ["80", 81]
