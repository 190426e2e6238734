"""Two projects side by side: each resolves only its own services, cannot reach the other's
containers, and `down` of one leaves the other running. Plus down by project name without a
stack file, rm -v and orphans."""

from __future__ import annotations

import pytest

from composer.config import LoadOptions, load_project
from composer.project.project import DownOptions, ProjectRunner, UpOptions, list_projects

pytestmark = pytest.mark.root

STACK = """
name: {name}
services:
  web:
    image: busybox
    init: true
    command: httpd -f -p 80
    volumes: ["/scratch"]
{extra}
"""


@pytest.fixture(scope="session")
def busybox_in_store(composer_root):
    from composer.images.bootstrap import bootstrap_busybox
    from composer.images.store import ImageStore

    store = ImageStore(composer_root / "data")
    if not store.exists("busybox"):
        bootstrap_busybox(store)


def project(tmp_path, name, extra=""):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    (d / "compose.yaml").write_text(STACK.format(name=name, extra=extra))
    return load_project(LoadOptions(cwd=str(d), environ={}))


@pytest.fixture
def cleanup(composer_env, busybox_in_store):
    names = []
    yield names
    for n in names:
        ProjectRunner(None, name=n).down(DownOptions(volumes=True))


def test_two_projects_are_isolated(tmp_path, cleanup):
    cleanup += ["cmpia", "cmpib"]
    a = ProjectRunner(project(tmp_path, "cmpia"))
    b = ProjectRunner(project(tmp_path, "cmpib"))
    a.up(UpOptions())
    b.up(UpOptions())
    b_ip = b.containers()[0].endpoints[0].ipv4_address
    a_ip = a.containers()[0].endpoints[0].ipv4_address
    assert a.exec("web", ["ping", "-c1", "-W1", "web"]) == 0
    assert a.exec("web", ["sh", "-c", "! grep -q cmpib /etc/hosts"]) == 0
    assert a.exec("web", ["ping", "-c1", "-W1", b_ip]) != 0
    assert b.exec("web", ["ping", "-c1", "-W1", a_ip]) != 0
    listed = {p.name: p.status for p in list_projects()}
    assert listed["cmpia"] == listed["cmpib"] == "running(1)"
    # down by name, without the stack file; the other project keeps running
    ProjectRunner(None, name="cmpia").down(DownOptions(volumes=True))
    assert a.containers(all=True) == [] and [c.status for c in b.containers()] == ["running"]
    assert not [v for v in a.volumes.list() if v.label("composer.project") == "cmpia"]


def test_orphans_and_rm_volumes(tmp_path, cleanup):
    cleanup.append("cmpio")
    events = []
    two = project(tmp_path, "cmpio", extra="  extra:\n    image: busybox\n    init: true\n    command: sleep 60\n")
    r = ProjectRunner(two, on_event=events.append)
    r.up(UpOptions())
    anon = [m.source for m in r.container_for("web").spec.mounts if m.target == "/scratch"]
    assert anon and r.volumes.owner_of(anon[0]).anonymous
    one = ProjectRunner(project(tmp_path, "cmpio"), on_event=events.append)
    one.up(UpOptions())
    assert any(e.action == "Warning" and "orphan" in e.detail for e in events)
    one.up(UpOptions(remove_orphans=True))
    assert [c.label("composer.service") for c in one.containers(all=True)] == ["web"]
    # recreate keeps the anonymous volume; rm -v removes it
    one.up(UpOptions(force_recreate=True))
    assert [m.source for m in one.container_for("web").spec.mounts if m.target == "/scratch"] == anon
    one.stop()
    assert one.containers() == []
    assert one.rm(volumes=True) == ["cmpio-web-1"]
    assert r.volumes.owner_of(anon[0]) is None


def test_concurrent_ups_are_serialised_and_restart_works(tmp_path, cleanup):
    import threading

    cleanup.append("cmpil")
    model = project(tmp_path, "cmpil")
    runners = [ProjectRunner(model), ProjectRunner(model)]
    runners[0].runtime.prepare()  # one launcher, forked before the threads below
    errors = []

    def up(r):
        try:
            r.up(UpOptions(scale=(("web", 2),)))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=up, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    r = runners[0]
    assert [c.name for c in r.containers(all=True)] == ["cmpil-web-1", "cmpil-web-2"]
    # every replica is listed under the service name in each other's /etc/hosts
    assert r.exec("web", ["sh", "-c", "test $(grep -c '\tweb ' /etc/hosts) = 2"], index=2) == 0
    r.stop(["web"])
    assert r.containers() == []
    r.start()
    assert [c.status for c in r.containers()] == ["running", "running"]
    r.restart(timeout=1)
    assert [c.status for c in r.containers()] == ["running", "running"]
