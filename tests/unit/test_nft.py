"""nft ruleset text generated from networks and published ports."""

from dataclasses import dataclass

from composer.runtime.net import nft
from composer.runtime.net.nft import Published


@dataclass(frozen=True)
class Net:
    name: str
    bridge: str
    subnet: str
    internal: bool = False


A = Net("a_default", "cmpbaaaaaaaa", "10.89.0.0/24")
B = Net("b_default", "cmpbbbbbbbbb", "10.89.1.0/24")
I = Net("b_back", "cmpbiiiiiiii", "10.89.2.0/24", internal=True)


def test_empty_scope_only_deletes_its_own_chains():
    text = nft.ruleset("t1", [], [])
    lines = text.splitlines()
    assert lines[0] == "table ip composer {}"
    assert "delete chain ip composer fwd_t1" in lines
    assert lines.index("delete chain ip composer pre_t1") < lines.index("delete chain ip composer ports_t1")
    assert "chain fwd_t1 {" not in text and "t2" not in text


def test_masquerade_for_each_non_internal_network():
    text = nft.ruleset("t", [A, B, I], [])
    assert 'ip saddr 10.89.0.0/24 oifname != "cmpbaaaaaaaa" masquerade comment "network a_default"' in text
    assert 'ip saddr 10.89.1.0/24 oifname != "cmpbbbbbbbbb" masquerade' in text
    assert "10.89.2.0/24 oifname !=" not in text  # internal: no way out
    assert 'oifname "cmp*" ip saddr 127.0.0.0/8 masquerade' in text
    assert 'oifname "cmpbaaaaaaaa" ip saddr 10.89.0.0/24 ct status dnat masquerade' in text


def test_isolation_and_internal_drops():
    text = nft.ruleset("t", [A, I], [])
    assert 'iifname "cmpbaaaaaaaa" oifname "cmp*" oifname != "cmpbaaaaaaaa" drop' in text
    assert 'iifname "cmpbiiiiiiii" oifname != "cmpbiiiiiiii" drop comment "network b_back: internal"' in text
    assert 'oifname "cmpbiiiiiiii" iifname != "cmpbiiiiiiii" drop' in text
    lines = text.splitlines()
    established = next(i for i, l in enumerate(lines) if "ct state established,related accept" in l)
    internal = next(i for i, l in enumerate(lines) if "b_back: internal" in l)
    dnat = next(i for i, l in enumerate(lines) if "ct status dnat accept" in l)
    isolated = next(i for i, l in enumerate(lines) if "isolated from other networks" in l)
    # internal beats published ports; published ports may cross networks, new flows may not
    assert established < internal < dnat < isolated


def test_published_ports_dnat_with_host_ip_and_udp():
    ports = [Published("c" * 64, "10.89.0.2", 80, 8080),
             Published("d" * 64, "10.89.0.3", 53, 5353, "127.0.0.1", "udp"),
             Published("e" * 64, "10.89.0.4", 443, 8443, "0.0.0.0")]
    text = nft.ruleset("t", [A], ports)
    assert '\t\ttcp dport 8080 dnat to 10.89.0.2:80 comment "container cccccccccccc"' in text
    assert '\t\tip daddr 127.0.0.1 udp dport 5353 dnat to 10.89.0.3:53 comment "container dddddddddddd"' in text
    assert "\t\ttcp dport 8443 dnat to 10.89.0.4:443" in text
    assert "type nat hook prerouting priority dstnat" in text and "type nat hook output priority -100" in text
    assert text.count("fib daddr type local jump ports_t") == 2


def test_scope_tag_is_stable_and_distinct():
    assert nft.scope_tag("/run/composer") == nft.scope_tag("/run/composer")
    assert nft.scope_tag("/run/composer") != nft.scope_tag("/var/tmp/composer-test-x")
    assert len(nft.scope_tag("/x")) == 8


def test_published_round_trip():
    p = Published("c" * 64, "10.89.0.2", 80, 8080, "127.0.0.1", "udp")
    assert Published.from_dict(p.to_dict()) == p


def test_ip_forward_is_switched_on_only_when_off(tmp_path):
    f = tmp_path / "ip_forward"
    f.write_text("0\n")
    nft.enable_ip_forward(str(f))
    assert f.read_text().strip() == "1"
    nft.enable_ip_forward(str(f))
    assert f.read_text().strip() == "1"
