"""The firewall as a whole, on a miniature host: a private network namespace plays the host, with
dockerd's FORWARD policy DROP and a DOCKER-USER chain, plus an "uplink" namespace behind a veth
that plays the outside world. Checks that containers of one network talk, that egress is
masqueraded, that an internal network has no way out, and that a published port is reachable
from outside (the prerouting DNAT path). Nothing here touches the real host's firewall, and no
packet leaves the namespaces this test creates.

br_netfilter: where it is loaded (built in here), bridged traffic between two containers of one
network passes the FORWARD hook, so dockerd's DROP policy reaches it and our DOCKER-USER rules are
what lets it through. Where it is not (Debian until something loads the module:
/proc/sys/net/bridge does not exist), bridged traffic never meets FORWARD; composer relies on
neither: its own rules only filter routed traffic, and the hairpin masquerade makes a neighbour's
reply come back through the host. Both cases run: the sysctl is per network namespace, so the
"off" case turns it off in the test's own namespace (or finds the module absent)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from composer.runtime.net import nft

pytestmark = pytest.mark.root

SCRIPT = textwrap.dedent("""
    import json, shutil, subprocess, sys, tempfile
    from pathlib import Path
    from composer.runtime.net import nft
    from composer.runtime.net.network import NetworkManager
    from composer.runtime.spec import NetworkAttachment, PortMapping
    from tests.integration.network_helpers import Holders, ping, request, run_in, serve

    def sh(*a):
        subprocess.run(a, check=True, capture_output=True)

    sh("ip", "link", "set", "lo", "up")
    BRNF = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    try:
        if sys.argv[1] == "off":
            with open(BRNF, "w") as f:
                f.write("0")                              # this namespace only
        out = {"brnf": open(BRNF).read().strip()}
    except FileNotFoundError:                             # br_netfilter not loaded
        out = {"brnf": "absent"}
    sh("iptables", "-P", "FORWARD", "DROP")             # what dockerd does
    sh("iptables", "-N", "DOCKER-USER")
    sh("iptables", "-A", "FORWARD", "-j", "DOCKER-USER")
    state = Path(tempfile.mkdtemp(prefix="composer-fwd-"))
    mgr, h = NetworkManager(state), Holders()
    try:
        up = h.new()                                      # the outside world
        sh("ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "eth0", "netns", f"/proc/{up}/ns/net")
        sh("ip", "addr", "add", "198.18.0.2/24", "dev", "uplink0")
        sh("ip", "link", "set", "uplink0", "up")
        run_in(up, "ip", "addr", "add", "198.18.0.1/24", "dev", "eth0")
        run_in(up, "ip", "link", "set", "eth0", "up")
        serve(h, up, 9000, "up")
        mgr.ensure("fd_default")
        mgr.ensure("fd_back", internal=True)
        a, b, c = h.new(), h.new(), h.new()
        ea = mgr.connect("fd_default", "a" * 64, a, NetworkAttachment("fd_default"), "eth0")
        eb = mgr.connect("fd_default", "b" * 64, b, NetworkAttachment("fd_default"), "eth0")
        mgr.connect("fd_back", "c" * 64, c, NetworkAttachment("fd_back"), "eth0")
        out["same_network"] = ping(a, eb.ipv4_address)
        nft.docker_user(False)
        out["same_network_without_docker_user_rules"] = ping(a, eb.ipv4_address)
        nft.docker_user(True)
        out["egress"] = request("198.18.0.1", 9000, from_pid=a)
        out["internal_egress"] = request("198.18.0.1", 9000, from_pid=c, timeout=0.5)
        serve(h, b, 80, "web")
        mgr.ports.publish("b" * 64, eb.ipv4_address, [PortMapping(80, 18080)])
        out["published_from_outside"] = request("198.18.0.2", 18080, from_pid=up)
        out["hairpin"] = request("198.18.0.2", 18080, from_pid=a)  # a neighbour's published port
        out["gateway"] = ea.gateway
        for cid in ("a", "b", "c"):
            mgr.ports.unpublish(cid * 64)
            mgr.disconnect_all(cid * 64)
        mgr.remove("fd_default")
        mgr.remove("fd_back")
        out["docker_user_left"] = "composer" in subprocess.run(
            ["iptables", "-S", "DOCKER-USER"], capture_output=True, text=True).stdout
        # the rules' bookkeeping, each change one iptables-restore batch: adding twice adds once,
        # removing with one rule deleted by hand removes the other
        def ours():
            listing = subprocess.run(["iptables", "-S", "DOCKER-USER"], capture_output=True, text=True).stdout
            return sorted(line for line in listing.splitlines() if "composer" in line)
        nft.docker_user(True)
        nft.docker_user(True)
        out["added_twice"] = ours()
        sh("iptables", "-D", "DOCKER-USER", *nft.DOCKER_USER_RULES[0])
        nft.docker_user(False)
        out["after_partial_removal"] = ours()
        out["table_left"] = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    finally:
        h.close()
        shutil.rmtree(state, ignore_errors=True)
    print(json.dumps(out))
""")


@pytest.mark.parametrize("brnf", ["as-is", "off"])
def test_firewall_on_a_miniature_host_with_forward_drop(brnf):
    res = subprocess.run(["unshare", "-n", sys.executable, "-c", SCRIPT, brnf], capture_output=True, text=True,
                         timeout=60, cwd=str(Path(__file__).parents[2]))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    bridged_traffic_meets_forward = out["brnf"] == "1"
    assert bridged_traffic_meets_forward == (brnf == "as-is" and out["brnf"] != "absent")
    assert out["same_network"] is True
    # with br_netfilter on, dockerd's DROP reaches bridged traffic: the DOCKER-USER rules are needed
    assert out["same_network_without_docker_user_rules"] is not bridged_traffic_meets_forward
    assert out["egress"] == "up sees 198.18.0.2"  # masqueraded behind the host's address
    assert out["internal_egress"].startswith("FAILED")
    assert out["published_from_outside"] == "web sees 198.18.0.1"
    assert out["hairpin"] == f"web sees {out['gateway']}"  # the reply comes back through the host
    assert out["docker_user_left"] is False
    assert out["added_twice"] == sorted("-A DOCKER-USER " + " ".join(r) for r in nft.DOCKER_USER_RULES)
    assert out["after_partial_removal"] == []
    assert "composer" not in out["table_left"]
