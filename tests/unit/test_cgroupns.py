"""Which containers get a private cgroup namespace: docker's default per cgroup version, and the
compose `cgroup` key / run --cgroupns overriding it."""

from __future__ import annotations

import pytest

from composer.runtime.fs import cgroupns

V1 = {"version": 1, "dirs": [["memory", "/sys/fs/cgroup/memory/composer/x"], ["cpu,cpuacct", "/c/composer/x"]]}
V2 = {"version": 2, "dirs": [["", "/sys/fs/cgroup/composer/x"]]}


@pytest.mark.parametrize("mode,paths,private", [
    ("", V2, True), ("", V1, False), ("private", V1, True), ("host", V2, False), ("private", V2, True)])
def test_private_by_mode_and_version(mode, paths, private):
    cfg = cgroupns.config(mode, paths)
    assert cfg["private"] is private
    assert cfg["dirs"] == paths["dirs"] and cfg["version"] == paths["version"]


def test_enter_does_nothing_for_the_host_namespace(monkeypatch):
    calls = []
    monkeypatch.setattr(cgroupns.sc, "unshare", calls.append)
    cgroupns.enter(cgroupns.config("host", V2))
    cgroupns.enter(None)
    assert calls == []
    cgroupns.enter(cgroupns.config("", V2))
    assert calls == [cgroupns.sc.CLONE_NEWCGROUP]
