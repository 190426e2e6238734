"""Pure lifecycle rules: readiness verdicts, health wait bounds, one-off service overrides, and the
container event stream derived from two looks at the state."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from composer.config.model import Dependency, Deploy, FrozenMap, RestartPolicy, Service, ServiceNetwork, ServicePort
from composer.errors import UsageError
from composer.project import readiness as R
from composer.project.events import Facts, diff
from composer.project.oneoff import OneOffOptions, adjust_spec, oneoff_service
from composer.runtime.spec import ContainerSpec, Healthcheck, Mount, PortMapping


@dataclass
class Info:
    status: str = "running"
    exit_code: int | None = None
    health: str | None = None
    hc: Healthcheck | None = None
    monitor_pid: int | None = None
    started_at: float | None = None
    labels: dict = field(default_factory=dict)

    @property
    def spec(self):
        return type("S", (), {"healthcheck": self.hc})()


HC = Healthcheck(test=("true",), interval=1.0, timeout=2.0, retries=2, start_period=3.0)


def test_dependency_conditions():
    j = R.judge_dependency
    assert j(Info("running"), R.COMPLETED)[0] == R.WAIT
    assert j(Info("exited", exit_code=None, monitor_pid=42), R.COMPLETED)[0] == R.WAIT  # exit not yet recorded
    assert j(Info("exited", exit_code=0), R.COMPLETED) == (R.OK, "exited (0)")
    assert j(Info("exited", exit_code=3), R.COMPLETED) == (R.FAIL, "exited with code 3")
    assert j(Info("created"), R.COMPLETED)[0] == R.FAIL
    assert j(Info("running"), R.HEALTHY) == (R.FAIL, "has no healthcheck")
    assert j(Info("running", hc=HC), R.HEALTHY) == (R.WAIT, "to be healthy")
    assert j(Info("running", hc=HC, health="starting"), R.HEALTHY)[0] == R.WAIT
    assert j(Info("running", hc=HC, health="healthy"), R.HEALTHY)[0] == R.OK
    assert j(Info("running", hc=HC, health="unhealthy"), R.HEALTHY) == (R.FAIL, "is unhealthy")
    assert j(Info("exited", exit_code=1, hc=HC), R.HEALTHY)[0] == R.FAIL
    assert j(Info("exited", exit_code=1), R.STARTED)[0] == R.OK  # it was started: that is all it promises
    assert j(Info("created"), R.STARTED)[0] == R.FAIL


def test_ready_for_up_wait():
    j = R.judge_ready
    assert j(Info("running")) == (R.OK, "running")
    assert j(Info("running", hc=HC)) == (R.WAIT, "to be healthy")
    assert j(Info("running", hc=HC, health="healthy")) == (R.OK, "healthy")
    assert j(Info("running", hc=HC, health="unhealthy"))[0] == R.FAIL
    assert j(Info("exited", exit_code=0)) == (R.FAIL, "exited with code 0")
    assert j(Info("exited", exit_code=0), one_shot=True)[0] == R.OK
    assert j(Info("restarting"))[0] == R.WAIT
    assert j(Info("running", started_at=100.0), now=100.2) == (R.WAIT, "to stay up")  # may still fail at once
    assert j(Info("running", started_at=100.0), now=101.0) == (R.OK, "running")


def test_health_timeout_bounds_the_wait():
    assert R.health_timeout(HC) == 3.0 + 3 * (1.0 + 2.0) + 1.0
    assert R.health_timeout(None) == 10.0


def test_one_shots():
    svc = Service(name="app", depends_on=FrozenMap({"init": Dependency(condition=R.COMPLETED),
                                                   "db": Dependency()}))
    model = type("M", (), {"services": {"app": svc}})()
    assert R.one_shots(model) == {"init"}


BASE = Service(name="tool", image="busybox", command=("echo", "hi"), container_name="fixed", restart="always",
               environment=(("A", "1"), ("B", "2")), ports=(ServicePort(target=80, published="8080"),),
               networks=FrozenMap({"default": ServiceNetwork(aliases=("t",))}), labels=FrozenMap({"x": "1"}),
               deploy=Deploy(replicas=3, restart_policy=RestartPolicy(condition="any")), scale=None)


def test_oneoff_tty_and_stdin():
    import dataclasses

    tty_service = dataclasses.replace(BASE, tty=True)
    assert oneoff_service(tty_service, OneOffOptions(service="tool")).tty  # the file's value by default
    assert not oneoff_service(tty_service, OneOffOptions(service="tool", tty=False)).tty  # stdin not a terminal
    assert not oneoff_service(tty_service, OneOffOptions(service="tool", tty=True, no_tty=True)).tty  # -T wins
    assert oneoff_service(BASE, OneOffOptions(service="tool", tty=True, stdin_open=True)).stdin_open


def test_oneoff_service_overrides():
    s = oneoff_service(BASE, OneOffOptions(service="tool"))
    assert s.container_name is None and s.restart is None and s.deploy.restart_policy is None
    assert s.deploy.replicas is None and s.ports == () and s.networks["default"].aliases == ()
    assert s.command == ("echo", "hi") and s.entrypoint is None
    s = oneoff_service(BASE, OneOffOptions(service="tool", command=("sh",), entrypoint="/bin/env -i",
                                           env=(("B", "3"), ("C", "4")), workdir="/tmp", user="65534",
                                           labels=(("y", "2"),), service_ports=True, use_aliases=True))
    assert s.command == ("sh",) and s.entrypoint == ("/bin/env", "-i")
    assert dict(s.environment) == {"A": "1", "B": "3", "C": "4"}
    assert (s.working_dir, s.user) == ("/tmp", "65534") and dict(s.labels) == {"x": "1", "y": "2"}
    assert s.ports == BASE.ports and s.networks["default"].aliases == ("t",)
    with pytest.raises(UsageError, match="absolute path"):
        oneoff_service(BASE, OneOffOptions(service="tool", workdir="tmp"))


def test_oneoff_spec_adjustments():
    spec = ContainerSpec(id="0" * 64, name="n", image="i", image_id="x", layers=(), argv=("true",),
                         mounts=(Mount(target="/data", source="/a"), Mount(target="/keep", source="/k")))
    out = adjust_spec(spec, OneOffOptions(service="s", volumes=(Mount(target="/data", source="/b"),),
                                          publish=(PortMapping(80, 0),), rm=True))
    assert [(m.target, m.source) for m in out.mounts] == [("/keep", "/k"), ("/data", "/b")]
    assert out.ports == (PortMapping(80, 0),) and out.auto_remove


def F(status="running", started=1.0, finished=None, code=None, health=None):
    return Facts("p-web-1", "web", "busybox", status, started, finished, code, health)


def test_events_from_two_looks():
    actions = lambda before, after: [e.action for e in diff(before, after, 10.0)]  # noqa: E731
    assert actions({}, {"a": F("created", None)}) == ["create"]
    assert actions({}, {"a": F()}) == ["create", "start"]
    assert actions({"a": F()}, {"a": F("exited", 1.0, 2.0, 0)}) == ["die"]
    assert actions({"a": F("exited", 1.0, 2.0, 0)}, {"a": F("running", 3.0, 2.0, 0)}) == ["start"]
    assert actions({"a": F()}, {"a": F("running", 3.0, 2.0, 1)}) == ["die", "start"]  # restarted between looks
    # seen after PID 1 died but before its monitor recorded the exit: the die comes with the record
    assert actions({"a": F("exited")}, {"a": F("exited", 1.0, 2.0, 7)}) == ["die"]
    assert actions({"a": F("exited", 1.0, 2.0, 7)}, {"a": F("exited", 1.0, 2.0, 7)}) == []
    assert actions({"a": F()}, {"a": F("paused")}) == ["pause"]
    assert actions({"a": F("paused")}, {"a": F()}) == ["unpause"]
    assert actions({"a": F()}, {"a": F(health="healthy")}) == ["health_status: healthy"]
    assert actions({"a": F()}, {}) == ["destroy"]
    ev = diff({"a": F()}, {"a": F("exited", 1.0, 2.0, 3)}, 1700000000.5)[0]
    assert ev.to_json() == {"time": "2023-11-14T22:13:20.500000000Z", "type": "container", "action": "die",
                            "id": "a", "service": "web",
                            "attributes": {"image": "busybox", "name": "p-web-1", "exitCode": "3"}}
    assert ev.to_text() == "2023-11-14T22:13:20.500000000Z container die a (image=busybox, name=p-web-1, exitCode=3)"


def test_dag_without_networkx():
    from composer.project.parallel import Dag, generations

    g = Dag([("db", "app"), ("cache", "app"), ("app", "lb")])
    g.add_node("alone")
    assert generations(g) == [["alone", "cache", "db"], ["app"], ["lb"]]
    assert generations(g, reverse=True)[0] == ["lb"]
    assert g.ancestors("lb") == {"app", "db", "cache"} and g.find_cycle() is None
    assert generations(g, ["app", "lb"]) == [["app"], ["lb"]]
    g.add_edge("lb", "db")
    assert g.find_cycle() == ["db", "app", "lb"]


def test_unhonoured_keys_warn_once_each():
    from composer.config.model import FileRef, Logging, ResourceSpec
    from composer.service.keys import logging_for, warnings_for

    s = Service(name="w", image="i", tty=True, ipc="host",
                deploy=Deploy(mode="global", labels=FrozenMap({"a": "b"}), extras=FrozenMap({"placement": {}}),
                              reservations=ResourceSpec(cpus=0.5, memory=1 << 20),
                              restart_policy=RestartPolicy(condition="any", delay=5.0)),
                configs=(FileRef(source="c", mode=0o400),))
    text = "\n".join(warnings_for(s))
    for key in ("'ipc'", "'deploy.placement'", "'deploy.mode'", "'deploy.labels'",
                "'deploy.resources.reservations.cpus'", "'deploy.restart_policy.delay'", "'configs.mode'"):
        assert f"service w: key {key}" in text, key
    assert "reservations.memory" not in text  # honoured (memory reservation)
    assert "'tty'" not in text  # honoured (runtime.monitor.tty)
    warn: list[str] = []
    logging_for(Service(name="w", logging=Logging(driver="json-file", options=FrozenMap({"max-size": "1m",
                                                                                        "compress": "true"}))), warn)
    assert warn == ["service w: logging option 'compress' is not supported, ignored"]


def test_raising_a_hard_ulimit_needs_cap_sys_resource():
    from composer.config.model import Ulimit
    from composer.errors import ConfigError
    from composer.service.keys import check_ulimits

    s = Service(name="w", ulimits=FrozenMap({"nofile": Ulimit(soft=1024, hard=1 << 20)}))
    with pytest.raises(ConfigError, match="ulimits.nofile hard limit 1048576 is above this host's 4096; raising a "
                                          "hard limit needs CAP_SYS_RESOURCE, which this sandbox lacks"):
        check_ulimits(s, {"nofile": 4096}, can_raise=False)
    check_ulimits(s, {"nofile": 4096}, can_raise=True)
    check_ulimits(s, {"nofile": 1 << 20}, can_raise=False)  # lowering or keeping is fine
    check_ulimits(s, {"nofile": -1}, can_raise=False)
