"""Containers of one network talk even where dockerd set the FORWARD policy to DROP.

Reproduced inside a private network namespace (its own iptables, nft and br_netfilter switch),
so the host's firewall is never touched and the test does not depend on dockerd."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.root

SCRIPT = textwrap.dedent("""
    import subprocess, sys, tempfile, time
    from pathlib import Path
    from composer.runtime import nft
    from composer.runtime.network import NetworkManager
    from composer.runtime.spec import NetworkAttachment
    from tests.integration.network_helpers import Holders, ping

    def ipt(*a):
        subprocess.run(["iptables", "-w", "5", *a], check=True, capture_output=True)

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    assert open("/proc/sys/net/bridge/bridge-nf-call-iptables").read().strip() == "1"
    ipt("-P", "FORWARD", "DROP")             # what dockerd does
    ipt("-N", "DOCKER-USER")
    ipt("-A", "FORWARD", "-j", "DOCKER-USER")
    mgr = NetworkManager(Path(tempfile.mkdtemp(prefix="composer-fwd-")))
    h = Holders()
    try:
        mgr.ensure("fd_default")
        a, b = h.new(), h.new()
        ea = mgr.connect("fd_default", "a" * 64, a, NetworkAttachment("fd_default"), "eth0")
        eb = mgr.connect("fd_default", "b" * 64, b, NetworkAttachment("fd_default"), "eth0")
        with_rules = ping(a, eb.ipv4_address)
        nft.docker_user(False)
        without_rules = ping(a, eb.ipv4_address)
        nft.docker_user(True)
        print(f"with={with_rules} without={without_rules}")
        mgr.disconnect_all("a" * 64); mgr.disconnect_all("b" * 64)
        mgr.remove("fd_default")
        rules = subprocess.run(["iptables", "-S", "DOCKER-USER"], capture_output=True, text=True).stdout
        print("left=" + str("composer" in rules))
    finally:
        h.close()
""")


def test_same_network_traffic_despite_forward_drop():
    res = subprocess.run(["unshare", "-n", sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=60, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert res.returncode == 0, res.stderr
    assert "with=True without=False" in res.stdout, res.stdout
    assert "left=False" in res.stdout
