"""Pure parts of crash recovery (bridge ownership tags), `events --since/--until` (time parsing,
the recorded past, the end) and `restart` taking along `depends_on: {x: {restart: true}}`."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from composer.project import recovery
from composer.project.events import Facts, follow, history, parse_time
from composer.project.ops import restart_set

# ---------------------------------------------------------------- ownership tags


def test_tag_round_trip_and_foreign_aliases():
    tag = recovery.BridgeTag("1a2b3c4d", "shop", "shop_default")
    assert tag.text() == "composer scope=1a2b3c4d project=shop network=shop_default"
    assert recovery.BridgeTag.parse(tag.text() + "\n") == tag
    for foreign in ("", "docker0", "composer", "composer scope=x project=y", "composerx scope=a project=b network=c",
                    "composer scope= project=b network=c", "composer scope=a project=b network=c extra=1"):
        assert recovery.BridgeTag.parse(foreign) is None


def test_tagged_bridges_reads_only_cmp_links_with_our_alias(tmp_path):
    def link(name: str, alias: str | None, ports: tuple[str, ...] = ()) -> None:
        (tmp_path / name / "brif").mkdir(parents=True)
        if alias is not None:
            (tmp_path / name / "ifalias").write_text(alias + "\n")
        for p in ports:
            (tmp_path / name / "brif" / p).mkdir()

    tag = recovery.BridgeTag("1a2b3c4d", "shop", "shop_default")
    link("cmpb00000001", tag.text(), ("cmpv0000000000a", "eth9"))
    link("cmpb00000002", "")  # untagged: never ours by alias
    link("docker0", tag.text())  # not a cmp link, whatever its alias says
    link("cmpb00000003", None)  # no ifalias file
    found = recovery.tagged_bridges(str(tmp_path))
    assert found == {"cmpb00000001": tag}
    assert recovery.enslaved("cmpb00000001", str(tmp_path)) == ["cmpv0000000000a"]
    assert recovery.enslaved("missing", str(tmp_path)) == []


def test_tag_bridge_writes_the_alias_and_ignores_a_missing_link(tmp_path):
    (tmp_path / "cmpb1").mkdir()
    (tmp_path / "cmpb1" / "ifalias").write_text("")
    tag = recovery.BridgeTag("s", "p", "p_default")
    recovery.tag_bridge("cmpb1", tag, str(tmp_path))
    assert recovery.tagged_bridges(str(tmp_path)) == {"cmpb1": tag}
    recovery.tag_bridge("gone", tag, str(tmp_path))  # best effort: no error


# ---------------------------------------------------------------- events --since / --until

NOW = 1_700_000_000.0


@pytest.mark.parametrize("text,expected", [
    ("10m", NOW - 600), ("1h30m", NOW - 5400), ("1.5h", NOW - 5400), ("500ms", NOW - 0.5), ("-10s", NOW + 10),
    ("1700000123", 1700000123.0), ("1700000123.25", 1700000123.25),
    ("2023-11-14T22:13:20Z", NOW), ("2023-11-15T00:13:20+02:00", NOW), ("2023-11-14T22:13:20.5Z", NOW + 0.5),
])
def test_parse_time(text, expected):
    assert parse_time(text, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "yesterday", "10x", "m", "2023-13-01"])
def test_parse_time_rejects(text):
    with pytest.raises(ValueError):
        parse_time(text, now=NOW)


def facts(status, created, started=None, finished=None, code=None, name="p-web-1", service="web") -> Facts:
    return Facts(name, service, "busybox", status, started, finished, code, None, created)


def test_history_in_time_order():
    past = {"a": facts("exited", 10.0, 11.0, 15.0, 3), "b": facts("running", 12.0, 13.0, name="p-db-1", service="db"),
            "c": facts("created", 14.0, name="p-job-1", service="job"),
            "d": facts("running", 5.0, 20.0, 19.0, 0, name="p-x-1", service="x")}  # restarted: no die after start
    evs = [(e.time, e.action, e.id) for e in history(past)]
    assert evs == [(5.0, "create", "d"), (10.0, "create", "a"), (11.0, "start", "a"), (12.0, "create", "b"),
                   (13.0, "start", "b"), (14.0, "create", "c"), (15.0, "die", "a"), (20.0, "start", "d")]
    die = [e for e in history(past) if e.action == "die"][0]
    assert dict(die.attributes)["exitCode"] == "3"


class FakeRuntime:
    """runtime.list() over a script of looks: each call returns the next state."""

    def __init__(self, looks):
        self.looks = list(looks)

    def list(self, all=False, labels=None):
        cur = self.looks.pop(0) if len(self.looks) > 1 else self.looks[0]
        return [SimpleNamespace(id=cid, name=f.name, status=f.status, started_at=f.started_at,
                                finished_at=f.finished_at, exit_code=f.exit_code, health=f.health,
                                created_at=f.created_at, spec=SimpleNamespace(image=f.image),
                                label=lambda k, f=f: f.service)
                for cid, f in cur.items()]


def test_follow_since_replays_the_past_and_until_in_the_past_ends_at_once():
    rt = FakeRuntime([{"a": facts("exited", 10.0, 11.0, 15.0, 0)}])
    got = [(e.time, e.action) for e in follow(rt, "p", since=11.0, until=14.0, poll=0.0, clock=lambda: 100.0)]
    assert got == [(11.0, "start")]


def test_follow_until_in_the_future_streams_then_ends():
    clock = iter([100.0, 100.0, 100.1, 100.1, 100.2, 100.2, 100.3, 100.3, 100.4])
    rt = FakeRuntime([{}, {"a": facts("running", 100.05, 100.06)}, {"a": facts("exited", 100.05, 100.06, 100.15, 1)}])
    got = [e.action for e in follow(rt, "p", until=100.25, poll=0.0, clock=lambda: next(clock))]
    assert got == ["create", "start", "die"]


# ---------------------------------------------------------------- restart takes dependents along


def model(**deps):
    """deps: service -> {dependency: restart flag}."""
    services = {name: SimpleNamespace(depends_on={d: SimpleNamespace(restart=r) for d, r in ds.items()})
                for name, ds in deps.items()}
    return SimpleNamespace(services=services)


def test_restart_set_follows_restart_true_transitively():
    m = model(db={}, api={"db": True}, worker={"db": False}, web={"api": True}, cron={"web": False})
    assert restart_set(m, ["db"]) == ("api", "db", "web")
    assert restart_set(m, ["db"], no_deps=True) == ("db",)
    assert restart_set(m, ["worker"]) == ("worker",)
    assert restart_set(m, []) == ()  # all services anyway
    assert restart_set(None, ["db"]) == ("db",)  # no stack file: by name only
