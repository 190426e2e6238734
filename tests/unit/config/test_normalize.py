import os

import pytest

from composer.config.shortsyntax import parse_port, parse_volume

from .helpers import FIXTURES, load_fixture, load_text


@pytest.fixture(scope="module")
def basic():
    return load_fixture("basic", environ={"FROM_SHELL": "shell-value", "HOME": "/home/u"})


def test_ports(basic):
    ports = [(p.host_ip, p.published, p.target, p.protocol) for p in basic.services["web"].ports]
    assert ports == [("127.0.0.1", "8080", 80, "tcp"), (None, None, 3000, "tcp"),
                     (None, "8000", 9000, "udp"), (None, "8001", 9001, "udp"), (None, "8002", 9002, "udp"),
                     ("::1", "6001", 6001, "tcp"), (None, "8443", 443, "tcp")]


@pytest.mark.parametrize("spec,want", [
    ("3000", [(None, None, 3000)]), ("3000-3001", [(None, None, 3000), (None, None, 3001)]),
    ("8000:8000", [(None, "8000", 8000)]), ("127.0.0.1::5000", [("127.0.0.1", None, 5000)]),
    ("12400-12500:1240", [(None, "12400-12500", 1240)]), ("::1:80:80", [("::1", "80", 80)]),
])
def test_port_short_syntax(spec, want):
    assert [(p.host_ip, p.published, p.target) for p in parse_port(spec)] == want


@pytest.mark.parametrize("bad", ["70000", "0", "80:70000", "1-2:3-5", "80/icmp", "x", "[::1:80"])
def test_bad_ports(bad):
    with pytest.raises(ValueError):
        parse_port(bad)


def test_volumes(basic):
    v = basic.services["web"].volumes
    wd = str(FIXTURES / "basic")
    assert (v[0].type, v[0].source, v[0].target, v[0].read_only) == ("bind", os.path.join(wd, "html"),
                                                                     "/usr/share/nginx/html", True)
    assert (v[1].type, v[1].source, v[1].target) == ("volume", "data", "/data")
    assert (v[2].type, v[2].source, v[2].target) == ("volume", None, "/anon")
    assert v[3].type == "bind" and v[3].source == os.path.expanduser("~/cache") and v[3].selinux == "z"
    assert (v[4].type, v[4].target, v[4].tmpfs_size) == ("tmpfs", "/tmp", 64 << 20)


def test_volume_short_syntax_modes():
    v = parse_volume("./x:/y:rw,nocopy", "/p")
    assert v.source == "/p/x" and not v.read_only
    with pytest.raises(ValueError):
        parse_volume("./x:/y:bogus", "/p")
    with pytest.raises(ValueError):
        parse_volume("./x:relative", "/p")


def test_environment_and_escape(basic):
    web = basic.services["web"]
    assert web.environment == (("A", "1"), ("FROM_SHELL", "shell-value"))
    assert basic.services["db"].environment_map["POSTGRES_PASSWORD"] == "pa$word"


def test_bare_env_key_dropped_when_unset():
    p = load_fixture("basic", environ={})
    assert p.services["web"].environment == (("A", "1"),)


def test_dependencies_made_explicit(basic):
    web, db, sidecar = (basic.services[n] for n in ("web", "db", "sidecar"))
    assert set(web.depends_on) == {"db", "cache"}  # depends_on list + links
    assert web.depends_on["db"].condition == "service_started" and web.depends_on["db"].required
    assert set(db.depends_on) == {"cache"}  # volumes_from
    assert set(sidecar.depends_on) == {"db"}  # network_mode service:db
    assert web.links == (("cache", "redis"),)
    assert sidecar.networks == {} and sidecar.network_mode == "service:db"


def test_units_and_misc(basic):
    web = basic.services["web"]
    assert web.command == ("nginx", "-g", "daemon off;")
    assert web.image == "nginx:1.25"
    assert web.mem_limit == 512 << 20 and web.shm_size == 64 << 20 and web.stop_grace_period == 60.0
    hc = web.healthcheck
    assert hc.test == ("CMD-SHELL", "curl -f http://localhost") and hc.interval == 90.0 and hc.retries == 3
    assert web.deploy.limits.cpus == 0.5 and web.deploy.limits.memory == 1 << 30
    assert web.extensions["x-note"] == "kept"


def test_default_network_and_names(basic):
    assert basic.name == "basic"
    assert basic.networks["default"].name == "basic_default"
    assert basic.volumes["data"].name == "basic_data"
    assert set(basic.services["web"].networks) == {"default"}


def test_build_context_absolute(basic):
    assert basic.services["builder"].build.context == str(FIXTURES / "basic" / "app")


def test_model_is_hashable_and_immutable(basic):
    hash(basic)
    with pytest.raises(Exception):
        basic.services["web"].image = "x"  # type: ignore[misc]


def test_bad_size_is_located(tmp_path):
    from composer.errors import ConfigError
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, "services:\n  app:\n    image: busybox\n    mem_limit: lots\n")
    assert "compose.yaml:4:5" in str(e.value) and "mem_limit" in str(e.value)


def test_interpolated_numbers_and_bools(tmp_path):
    p = load_text(tmp_path, "services:\n  app:\n    image: busybox\n    tty: ${T}\n    cpus: ${C}\n    scale: ${S}\n",
                  environ={"T": "true", "C": "1.5", "S": "2"})
    a = p.services["app"]
    assert a.tty is True and a.cpus == 1.5 and a.replicas == 2


def test_external_and_named_resources(tmp_path):
    p = load_text(tmp_path, """
services:
  app: {image: busybox, networks: [front, ext]}
networks:
  front: {name: custom-front}
  ext: {external: true}
volumes:
  v: {external: true, name: real-v}
  w: {}
""")
    assert p.networks["front"].name == "custom-front" and p.networks["ext"].name == "ext"
    assert p.networks["ext"].external and "default" not in p.networks
    assert p.volumes["v"].name == "real-v" and p.volumes["w"].name.endswith("_w")
