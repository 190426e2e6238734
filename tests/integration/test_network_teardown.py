"""Teardown on the real host: links deleted without waiting for the kernel's teardown are gone
from the host when the call returns; a dead container's veth is left to vanish with its netns,
a live one's is deleted after the grace; bridge removal is fast."""

from __future__ import annotations

import os
import signal
import statistics
import time

import pytest

from composer.runtime.net import network, rtnl
from composer.runtime.spec import NetworkAttachment
from tests.integration.network_helpers import holders, links, manager  # noqa: F401  (fixtures)

pytestmark = pytest.mark.root


def _bridge(name: str) -> None:
    with rtnl.Rtnl() as nl:
        nl.add_bridge(name)


def test_detached_delete_is_gone_on_return():
    names = ["cmpbtdtest1", "cmpbtdtest2"]
    try:
        for n in names:
            _bridge(n)
        t = time.perf_counter()
        rtnl.delete_links_detached(names)
        took = time.perf_counter() - t
        assert not set(names) & links()
        assert took < 0.5
    finally:
        with rtnl.Rtnl() as nl:
            for n in names:
                nl.delete_link(n)
    rtnl.delete_links_detached(["cmpbtdmissing"])  # nothing to do: no error


def test_detached_delete_without_ip_falls_back_to_netlink(monkeypatch):
    monkeypatch.setattr(rtnl, "_which", lambda _name: None)  # no ip (nor sh) on PATH
    try:
        _bridge("cmpbtdtest3")
        rtnl.delete_links_detached(["cmpbtdtest3"])
        assert "cmpbtdtest3" not in links()
    finally:
        with rtnl.Rtnl() as nl:
            nl.delete_link("cmpbtdtest3")


def test_wait_gone():
    try:
        _bridge("cmpbtdtest4")
        t = time.monotonic()
        assert rtnl.wait_gone(["cmpbtdtest4", "cmpbtdabsent"], 0.05) == ["cmpbtdtest4"]
        assert time.monotonic() - t >= 0.05
    finally:
        with rtnl.Rtnl() as nl:
            nl.delete_link("cmpbtdtest4")
    assert rtnl.wait_gone(["cmpbtdtest4"], 1.0) == []


def test_a_dead_containers_veth_vanishes_a_live_ones_is_deleted(manager, holders):  # noqa: F811
    manager.ensure("td_default")
    dead, alive = holders.new(), holders.new()
    ea = manager.connect("td_default", "a" * 64, dead, NetworkAttachment("td_default"), "eth0")
    eb = manager.connect("td_default", "b" * 64, alive, NetworkAttachment("td_default"), "eth0")
    assert {ea.host_veth, eb.host_veth} <= links()
    os.kill(dead, signal.SIGKILL)  # a zombie holds no namespace; the Holders fixture reaps it
    t = time.perf_counter()
    manager.disconnect_all("a" * 64)
    assert ea.host_veth not in links() and time.perf_counter() - t < network.VETH_GRACE
    t = time.perf_counter()
    manager.disconnect_all("b" * 64)  # its netns lives on (a joined container would do that)
    assert eb.host_veth not in links()
    assert time.perf_counter() - t < network.VETH_GRACE + 0.5
    assert manager.network_endpoints("td_default") == []


def test_bridge_removal_is_quick(manager):  # noqa: F811
    times = []
    for i in range(3):
        info = manager.ensure(f"tq{i}_default")
        t = time.perf_counter()
        manager.remove(f"tq{i}_default")
        times.append(time.perf_counter() - t)
        assert info.bridge not in links()
    print(f"network remove: median {statistics.median(times) * 1000:.1f} ms")
    assert statistics.median(times) < 0.3


def test_bridges_left_reads_our_namespace():
    try:
        _bridge("cmpbtdtest5")
        assert network._bridges_left()
    finally:
        with rtnl.Rtnl() as nl:
            nl.delete_link("cmpbtdtest5")


def test_reap_detached_returns_at_once_and_the_veth_goes(manager, holders):  # noqa: F811
    """The --rm path: a dead container's veth is left to a detached child; it is gone soon after,
    a live one's (its namespace kept) is deleted by that child after the grace."""
    manager.ensure("td_default")
    dead, alive = holders.new(), holders.new()
    ea = manager.connect("td_default", "c" * 64, dead, NetworkAttachment("td_default"), "eth0")
    eb = manager.connect("td_default", "d" * 64, alive, NetworkAttachment("td_default"), "eth0")
    os.kill(dead, signal.SIGKILL)
    t = time.perf_counter()
    manager.disconnect_all("c" * 64, settle=False)
    manager.disconnect_all("d" * 64, settle=False)
    assert time.perf_counter() - t < 0.05
    assert manager.network_endpoints("td_default") == []
    deadline = time.monotonic() + network.VETH_GRACE + 2.0
    while {ea.host_veth, eb.host_veth} & links() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not {ea.host_veth, eb.host_veth} & links()
