"""docker-run flags + image config -> ContainerSpec (pure, no root)."""

from __future__ import annotations

import signal

import pytest

from composer.errors import UsageError
from composer.images.model import ImageConfig
from composer.service import runspec
from composer.service.runspec import HostContext, ImageInfo, RunOptions


def image(**cfg) -> ImageInfo:
    return ImageInfo(ref="busybox", id="sha256:abc", layers=("/l1", "/l2"), config=ImageConfig(**cfg))


HOST = HostContext(cwd="/home/u", environ={"FROMHOST": "h"}, ncpu=2)


def build(opts: RunOptions, img: ImageInfo | None = None):
    return runspec.build(opts, img or image(cmd=("sh",)), HOST)


def test_defaults_from_image():
    spec = build(RunOptions("busybox"), image(cmd=("sh",), env=(("PATH", "/bin"), ("A", "1")), working_dir="/w",
                                               user="nobody", stop_signal="SIGQUIT", labels=(("l", "v"),)))
    assert spec.argv == ("sh",)
    assert dict(spec.env) == {"PATH": "/bin", "A": "1"}
    assert (spec.cwd, spec.user, spec.stop_signal) == ("/w", "nobody", int(signal.SIGQUIT))
    assert spec.layers == ("/l1", "/l2") and spec.image_id == "sha256:abc"
    assert len(spec.id) == 64 and spec.name
    assert spec.network_mode == "bridge" and spec.networks[0].network == "bridge"


def test_command_replaces_cmd_entrypoint_kept():
    img = image(entrypoint=("/entry",), cmd=("default",))
    assert build(RunOptions("x", command=("a", "b")), img).argv == ("/entry", "a", "b")
    assert build(RunOptions("x"), img).argv == ("/entry", "default")


def test_entrypoint_flag_drops_image_cmd():
    img = image(entrypoint=("/entry",), cmd=("default",))
    assert build(RunOptions("x", entrypoint="/bin/sh"), img).argv == ("/bin/sh",)
    assert build(RunOptions("x", entrypoint="echo", command=("hi",)), img).argv == ("echo", "hi")


def test_no_command_is_an_error():
    with pytest.raises(UsageError, match="no command"):
        build(RunOptions("x"), image())


def test_env_merging_and_host_passthrough():
    spec = build(RunOptions("x", env=("A=2", "FROMHOST", "UNSET", "B=x=y")), image(cmd=("sh",), env=(("A", "1"),)))
    assert dict(spec.env) == {"A": "2", "FROMHOST": "h", "B": "x=y"}
    with pytest.raises(UsageError):
        build(RunOptions("x", env=("=v",)))


def test_volumes():
    spec = build(RunOptions("x", volumes=("/src:/dst:ro", "./rel:/r")))
    assert spec.mounts[0].source == "/src" and spec.mounts[0].target == "/dst" and spec.mounts[0].read_only
    assert spec.mounts[1].source == "/home/u/rel" and not spec.mounts[1].read_only
    for bad in ("/only", "named:/x", "/a:rel", "/a:/b:bogus", "/a:/b:ro:x"):
        with pytest.raises(UsageError):
            build(RunOptions("x", volumes=(bad,)))


def test_limits():
    spec = build(RunOptions("x", memory="32m", cpus="1.5", pids_limit="100"))
    assert spec.resources.memory == 32 << 20
    assert spec.resources.cpus == 1.5 and spec.resources.pids == 100
    assert build(RunOptions("x", pids_limit="-1")).resources.pids is None
    for kw in ({"memory": "lots"}, {"memory": "1m"}, {"cpus": "x"}, {"cpus": "3"}, {"pids_limit": "x"}):
        with pytest.raises(UsageError):
            build(RunOptions("x", **kw))


def test_flags_pass_through():
    spec = build(RunOptions("x", name="n", workdir="/w", user="1:2", hostname="h", network="none", init=True,
                            rm=True, labels=("a=b",), read_only=True, cap_add=("NET_ADMIN",), cgroupns="private"))
    assert (spec.name, spec.cwd, spec.user, spec.hostname) == ("n", "/w", "1:2", "h")
    assert spec.network_mode == "none" and spec.networks == ()
    assert spec.init and spec.auto_remove and spec.read_only and spec.cap_add == ("NET_ADMIN",)
    assert spec.cgroupns == "private"
    assert dict(spec.labels) == {"a": "b"}
    with pytest.raises(UsageError, match="absolute"):
        build(RunOptions("x", workdir="rel"))
    with pytest.raises(UsageError):
        build(RunOptions("x", network="weird"))


def test_publish():
    spec = build(RunOptions("x", publish=("8080:80", "127.0.0.1:9000:90/udp", "70")))
    p = spec.ports
    assert (p[0].host_port, p[0].container_port, p[0].protocol) == (8080, 80, "tcp")
    assert (p[1].host_ip, p[1].host_port, p[1].container_port, p[1].protocol) == ("127.0.0.1", 9000, 90, "udp")
    assert (p[2].host_port, p[2].container_port) == (0, 70)
    with pytest.raises(UsageError):
        build(RunOptions("x", publish=("a:b",)))


def test_signals():
    assert runspec.parse_signal("KILL") == 9 and runspec.parse_signal("SIGUSR1") == int(signal.SIGUSR1)
    assert runspec.parse_signal("15") == 15
    with pytest.raises(UsageError):
        runspec.parse_signal("NOPE")


def test_spec_round_trips_json():
    from composer.runtime.spec import ContainerSpec

    spec = build(RunOptions("x", volumes=("/a:/b",), memory="8m", publish=("1:2",)))
    assert ContainerSpec.from_json(spec.to_json()) == spec


def test_devices_and_rules_from_flags():
    spec = build(RunOptions("x", devices=("/dev/null:/dev/n:r",), device_cgroup_rules=("b 8:* r",)))
    assert [(d.target, d.kind, d.major, d.minor, d.access) for d in spec.devices] == [("/dev/n", "c", 1, 3, "r")]
    assert spec.resources.device_rules == ("b 8:* r",)
    with pytest.raises(UsageError, match="--device: invalid device '/tmp:/x'"):
        build(RunOptions("x", devices=("/tmp:/x",)))
    with pytest.raises(UsageError, match="--device-cgroup-rule: invalid device cgroup rule"):
        build(RunOptions("x", device_cgroup_rules=("b 8",)))
