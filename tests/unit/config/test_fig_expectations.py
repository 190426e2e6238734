"""Fig-era files (format 1: services at the top level), which docker compose v2 refuses, keep their own
expectations: what docker-compose 1.29.2 made of tests/fixtures/config/diff/fig.yml, written down when the
reference moved to compose v2 (tests/differential/). Where 1.29.2 gave `network_mode: bridge`, composer
attaches Fig services to the project's default network."""

from __future__ import annotations

from .helpers import FIXTURES, load_fixture


def test_fig_file_means_what_it_meant_to_docker_compose_1():
    p = load_fixture("diff", files=("fig.yml",), environ={"PATH": "/usr/bin"})
    assert set(p.services) == {"web", "db"}
    web, db = p.services["web"], p.services["db"]
    assert web.image == "busybox" and db.image == "postgres"
    assert [(x.host_ip, x.published, x.target, x.protocol) for x in web.ports] == [(None, "5000", 5000, "tcp")]
    assert dict(web.environment) == {"MODE": "dev"}
    assert web.links == (("db", "db"),) and set(web.depends_on) == {"db"}
    assert [(v.type, v.source, v.target, v.read_only) for v in db.volumes] == [("bind", "/var/lib/pg", "/data", False)]
    assert set(web.networks) == set(db.networks) == {"default"}
    assert (FIXTURES / "diff" / "fig.yml").exists()
