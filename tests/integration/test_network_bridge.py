"""Bridge networks on the real host: attach, traffic, egress rule, isolation, internal, removal.
What composer's rtnetlink client set is read back by pyroute2 (netlink_oracle), independently."""

from __future__ import annotations

import statistics
import subprocess
import threading
import time

import pytest

from composer.errors import ConflictError, NotFoundError
from composer.runtime.spec import NetworkAttachment
from tests.integration import netlink_oracle as oracle
from tests.integration.network_helpers import (  # noqa: F401  (fixtures)
    holders, links, manager, nft_table, ping, request, run_in, serve)

pytestmark = pytest.mark.root


def cid(n: int) -> str:
    return f"{n:064x}"


def attach(mgr, net, n, pid, ifname="eth0", **kw):
    return mgr.connect(net, cid(n), pid, NetworkAttachment(net, **kw), ifname)


def test_two_containers_talk_over_one_network(manager, holders):
    info = manager.ensure("t1_default")
    assert info.bridge.startswith("cmpb") and info.bridge in links()
    assert manager.ensure("t1_default") == info  # idempotent
    a, b = holders.new(), holders.new()
    ea, eb = attach(manager, "t1_default", 1, a), attach(manager, "t1_default", 2, b)
    assert ea.ipv4_address != eb.ipv4_address
    assert ea.gateway == info.gateway and ea.mac_address == "02:42:" + ":".join(
        f"{int(x):02x}" for x in ea.ipv4_address.split("."))
    assert ping(a, eb.ipv4_address) and ping(b, info.gateway)
    serve(holders, b, 8000, "b")
    assert request(eb.ipv4_address, 8000, from_pid=a) == f"b sees {ea.ipv4_address}"
    inside = run_in(a, "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert f"{ea.ipv4_address}/24" in inside
    assert f"default via {info.gateway} dev eth0" in run_in(a, "ip", "route").stdout
    assert "state UP" in run_in(a, "ip", "link", "show", "lo").stdout or "UNKNOWN" in run_in(a, "ip", "link", "show", "lo").stdout
    assert [e.network for e in manager.endpoints(cid(1))] == ["t1_default"]
    oracle.check_bridge(info)
    oracle.check_endpoint(info, ea, a)
    oracle.check_endpoint(info, eb, b)
    assert oracle.host().ports(info.bridge) == {ea.host_veth, eb.host_veth}


def test_egress_masquerade_rule_and_forwarding(manager):
    info = manager.ensure("t2_default")
    table = nft_table()
    assert f'ip saddr {info.subnet} oifname != "{info.bridge}" masquerade' in table
    assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == "1"
    assert open(f"/proc/sys/net/ipv4/conf/{info.bridge}/route_localnet").read().strip() == "1"
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    assert f"{info.subnet} dev {info.bridge}" in routes


def test_subnets_skip_routed_ones_and_do_not_repeat(manager):
    a, b = manager.ensure("t3_a"), manager.ensure("t3_b")
    assert a.subnet != b.subnet
    with pytest.raises(ConflictError, match="overlaps"):
        manager.ensure("t3_c", subnet=a.subnet)
    with pytest.raises(ConflictError, match="exists with subnet"):
        manager.ensure("t3_a", subnet="10.89.250.0/24")
    assert manager.get("t3_c") is None


def test_networks_are_isolated_from_each_other(manager, holders):
    manager.ensure("t4_a")
    nb = manager.ensure("t4_b")
    a1, a2, b1 = holders.new(), holders.new(), holders.new()
    e_a2 = attach(manager, "t4_a", 2, a2)
    attach(manager, "t4_a", 1, a1)
    e_b1 = attach(manager, "t4_b", 3, b1)
    serve(holders, b1, 8000, "b1")
    serve(holders, a2, 8000, "a2")
    assert request(e_a2.ipv4_address, 8000, from_pid=a1).startswith("a2 sees")
    assert request(e_b1.ipv4_address, 8000, from_pid=a1, timeout=1).startswith("FAILED")
    assert not ping(a1, e_b1.ipv4_address)
    assert f'iifname "{nb.bridge}" oifname "cmp*" oifname != "{nb.bridge}" drop' in nft_table()


def test_internal_network_has_no_way_out(manager, holders):
    info = manager.ensure("t5_back", internal=True)
    p, q = holders.new(), holders.new()
    ep = attach(manager, "t5_back", 1, p)
    eq = attach(manager, "t5_back", 2, q)
    assert "default" not in run_in(p, "ip", "route").stdout
    assert f'ip saddr {info.subnet} oifname != "{info.bridge}" masquerade' not in nft_table()
    assert f'iifname "{info.bridge}" oifname != "{info.bridge}" drop' in nft_table()
    assert ping(p, eq.ipv4_address) and ep.ipv4_address != eq.ipv4_address
    oracle.check_bridge(info)
    oracle.check_endpoint(info, ep, p, default_route=False)
    assert oracle.netns_of(p).defaults() == []


def test_default_route_only_from_first_non_internal_network(manager, holders):
    nfront = manager.ensure("t6_front")
    nback = manager.ensure("t6_back", internal=True)
    p = holders.new()
    back = attach(manager, "t6_back", 1, p, "eth0")
    front = attach(manager, "t6_front", 1, p, "eth1")
    routes = run_in(p, "ip", "route").stdout
    assert f"default via {front.gateway} dev eth1" in routes
    nother = manager.ensure("t6_other")
    other = attach(manager, "t6_other", 1, p, "eth2")
    assert run_in(p, "ip", "route").stdout.count("default") == 1
    assert {e.interface for e in manager.endpoints(cid(1))} == {"eth0", "eth1", "eth2"}
    oracle.check_endpoint(nback, back, p, default_route=False)
    oracle.check_endpoint(nfront, front, p, default_route=True)
    oracle.check_endpoint(nother, other, p, default_route=False)


def test_requested_address_and_mac(manager, holders):
    info = manager.ensure("t7_default", subnet="10.89.251.0/24", gateway="10.89.251.254")
    p = holders.new()
    ep = attach(manager, "t7_default", 1, p, ipv4_address="10.89.251.7", mac_address="02:aa:bb:cc:dd:ee")
    assert (ep.ipv4_address, ep.mac_address, ep.gateway) == ("10.89.251.7", "02:aa:bb:cc:dd:ee", info.gateway)
    assert "02:aa:bb:cc:dd:ee" in run_in(p, "ip", "link", "show", "eth0").stdout
    oracle.check_bridge(info)  # the requested gateway on the bridge
    oracle.check_endpoint(info, ep, p)  # the requested address and MAC in the namespace
    with pytest.raises(ConflictError, match="10.89.251.7 is already in use"):
        attach(manager, "t7_default", 2, holders.new(), ipv4_address="10.89.251.7")
    assert manager.endpoints(cid(2)) == []


def test_remove_and_disconnect_leave_nothing(manager, holders):
    info = manager.ensure("t8_default")
    p = holders.new()
    ep = attach(manager, "t8_default", 1, p)
    assert ep.host_veth in links()
    oracle.check_endpoint(info, ep, p)
    with pytest.raises(ConflictError, match="in use by container"):
        manager.remove("t8_default")
    manager.disconnect_all(cid(1))
    manager.disconnect_all(cid(1))  # idempotent
    assert ep.host_veth not in links()
    assert "eth0" not in run_in(p, "ip", "link").stdout
    oracle.check_gone(ep.host_veth)
    assert oracle.host().ports(info.bridge) == set()
    inside = oracle.netns_of(p)
    assert set(inside.links) == {"lo"} and inside.routes == []
    manager.remove("t8_default")
    manager.remove("t8_default")  # idempotent
    assert info.bridge not in links()
    oracle.check_gone(info.bridge)
    assert not any(r.dev == info.bridge for r in oracle.host().routes)
    assert f"_{manager._tag}" not in nft_table()
    with pytest.raises(NotFoundError):
        attach(manager, "t8_default", 2, p)


def test_gc_forgets_dead_containers(manager, holders):
    manager.ensure("t9_default")
    p, q = holders.new(), holders.new()
    attach(manager, "t9_default", 1, p)
    eq = attach(manager, "t9_default", 2, q)
    holders.procs[1].kill()  # q dies: its veth goes with its netns, the record stays
    holders.procs[1].wait()
    manager.gc({cid(1)})
    assert manager.endpoints(cid(2)) == [] and len(manager.endpoints(cid(1))) == 1
    assert eq.host_veth not in links()
    oracle.check_gone(eq.host_veth)


def test_parallel_connects_from_threads(manager, holders):
    info = manager.ensure("t10_default")
    pids = [holders.new() for _ in range(8)]
    results, errors = {}, []

    def go(i, pid):
        try:
            results[i] = attach(manager, "t10_default", i, pid)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=go, args=(i, pid)) for i, pid in enumerate(pids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({e.ipv4_address for e in results.values()}) == 8
    for i, pid in enumerate(pids):
        assert results[i].ipv4_address in run_in(pid, "ip", "-4", "addr").stdout
        oracle.check_endpoint(info, results[i], pid)
    assert oracle.host().ports(info.bridge) == {e.host_veth for e in results.values()}
    assert ping(pids[0], results[7].ipv4_address)


def test_connect_time(manager, holders, capsys):
    manager.ensure("t11_default")
    pids = [holders.new() for _ in range(20)]
    times = []
    for i, pid in enumerate(pids):
        start = time.perf_counter()
        attach(manager, "t11_default", i, pid)
        times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    with capsys.disabled():
        print(f"\nconnect(): median {median:.2f} ms over 20 (min {min(times):.2f}, max {max(times):.2f})")
    assert median < 15


def test_reconnect_keeps_address_and_dead_pid_leaves_no_record(manager, holders):
    from composer.errors import ContainerError

    manager.ensure("t12_default")
    first = attach(manager, "t12_default", 1, holders.new())
    again = attach(manager, "t12_default", 1, holders.new())  # restarted container: new netns
    assert again.ipv4_address == first.ipv4_address
    dead = holders.new()
    holders.procs[-1].kill()
    holders.procs[-1].wait()
    with pytest.raises(ContainerError, match="is not running"):
        attach(manager, "t12_default", 2, dead)
    assert manager.endpoints(cid(2)) == []
