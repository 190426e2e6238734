"""The busybox example, converted, runs under `podman kube play` (Debian's podman 4.3, configured by
shared/anchors/setup.sh) and answers through its load balancer on loopback: lb -> backend (a link alias)
-> app -> db, the visit count on the claim. Podman is not a cluster, so this test stands in for what
only a cluster has, and says so where it does:
- podman plays Pods, Deployments and claims: the StatefulSet is played as a Deployment;
- no Services: each workload is played alone on one network with the names of the Services that
  select it as network aliases (aardvark-dns answers them, as cluster DNS would for headless Services);
- no LoadBalancer: the published Service's port becomes a hostPort on 127.0.0.1;
- podman 4.3 ignores a ConfigMap volume's defaultMode (4.4 reads it): the files get their mode after play.
The init containers (waiting for a dependency's name) run as they are. Everything made is removed, even
on failure: pods (`podman kube down`), the volumes podman made for the ConfigMaps and the claim, the
network and the image."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from composer.config import LoadOptions, load_project
from composer.convert import checks
from composer.convert.convert import ConvertOptions, convert
from tests.conftest import IN_CI
from tests.engines import podman_conf  # noqa: F401  (fixture: installs podman in CI)

pytestmark = pytest.mark.root

ROOT = Path(__file__).resolve().parents[2]
TAG = os.getpid()
IMAGE = f"localhost/cmpconv-busybox:{TAG}"
NET = f"cmpconv-{TAG}"
PREFIX = "cmpconv-"


def podman(*args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)  # CONTAINERS_CONF: set by the test from podman_conf
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def busybox_tar(dest: Path) -> Path:
    """A root with static busybox and a link per applet (Debian's busybox-static)."""
    busybox = "/bin/busybox"
    tar = dest / "rootfs.tar"
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    with tarfile.open(tar, "w") as t:
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "tmp", "etc", "srv", "data"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            t.addfile(info)
        t.add(busybox, "bin/busybox")
        for applet in applets:
            if applet != "bin/busybox":
                info = tarfile.TarInfo(applet)
                info.type, info.linkname = tarfile.SYMTYPE, "/bin/busybox"
                t.addfile(info)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        import io

        t.addfile(info, io.BytesIO(passwd))
    return tar


def selects(service: dict, workload: dict) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


def for_podman(objects: list[dict], port: int) -> list[tuple[str, list[dict], list[str], dict]]:
    """(workload name, documents to play, network aliases, ConfigMap name -> mode), in start order."""
    by_kind: dict[str, list[dict]] = {}
    for o in objects:
        by_kind.setdefault(o["kind"], []).append(o)
    plays = []
    order = ["db", "app", "lb"]  # the dependency order: the init containers wait for the names before
    workloads = sorted(by_kind.get("StatefulSet", []) + by_kind.get("Deployment", []),
                       key=lambda w: order.index(w["metadata"]["name"]))
    for w in workloads:
        w = copy.deepcopy(w)
        if w["kind"] == "StatefulSet":
            w["kind"] = "Deployment"
            del w["spec"]["serviceName"]
        name = w["metadata"]["name"]
        w["metadata"]["name"] = PREFIX + name
        # podman 4.3 removes a finished "once" init container and races itself doing so under load
        # ("cannot remove container ... as it is running"); "always" ones are kept, which a test can afford
        for meta in (w["metadata"], w["spec"]["template"].setdefault("metadata", {})):
            meta.setdefault("annotations", {})["io.podman.annotations.init.container.type"] = "always"
        spec = w["spec"]["template"]["spec"]
        aliases, modes, docs = [], {}, []
        for svc in by_kind.get("Service", []):
            if not selects(svc, w):
                continue
            if svc["spec"].get("type") == "LoadBalancer":
                for p in svc["spec"]["ports"]:
                    for c in spec["containers"]:
                        for cp in c.get("ports", []):
                            if cp["name"] == p["targetPort"]:
                                cp.update(hostPort=port, hostIP="127.0.0.1")
            else:
                aliases.append(svc["metadata"]["name"])
        for vol in spec.get("volumes", []):
            if "configMap" in vol:
                cm = next(o for o in by_kind["ConfigMap"] if o["metadata"]["name"] == vol["configMap"]["name"])
                docs.append(cm)
                modes[cm["metadata"]["name"]] = vol["configMap"].get("defaultMode", 0o644)
            if "persistentVolumeClaim" in vol:
                docs += [o for o in by_kind["PersistentVolumeClaim"]
                         if o["metadata"]["name"] == vol["persistentVolumeClaim"]["claimName"]]
        for ref in (r for c in spec["containers"] for r in c.get("envFrom", [])):
            docs += [o for o in by_kind["ConfigMap"] if o["metadata"]["name"] == ref["configMapRef"]["name"]]
        plays.append((name, [*docs, w], aliases, modes))
    return plays


def get(url: str, deadline: float) -> str:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = resp.read().decode()
                if "visit" in body and "unreachable" not in body:
                    return body
                last = AssertionError(body)
        except OSError as err:
            last = err
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer: {last}")


def test_busybox_example_answers_under_podman_kube_play(tmp_path, podman_conf, monkeypatch):
    if not os.path.exists("/bin/busybox"):
        message = "busybox-static is needed (./dev setup installs it)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    monkeypatch.setenv("CONTAINERS_CONF", podman_conf)
    override = tmp_path / "podman.yaml"
    override.write_text("services:\n" + "".join(f"  {s}:\n    image: {IMAGE}\n    pull_policy: never\n"
                                                  for s in ("db", "app", "lb")))
    project = load_project(LoadOptions(files=(str(ROOT / "examples/busybox/compose.yaml"), str(override)),
                                       project_name=f"cmpconv-{TAG}", environ={}))
    result = convert(project, ConvertOptions(wait_image=IMAGE))
    assert checks.check(result.objects, result.external) == []
    port = free_port()
    plays = for_podman(list(result.objects), port)
    volumes = [n for _w, docs, _a, _m in plays for d in docs if d["kind"] in ("ConfigMap", "PersistentVolumeClaim")
               for n in [d["metadata"]["name"]]]
    taken = set(podman("volume", "ls", "--format", "{{.Name}}").stdout.split()) & set(volumes)
    assert not taken, f"podman volumes {taken} exist already: not ours to replace"
    played: list[Path] = []
    try:
        podman("import", "-q", "-c", "ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin", str(busybox_tar(tmp_path)), IMAGE)
        podman("network", "create", NET)
        for name, docs, aliases, modes in plays:
            path = tmp_path / f"{name}.yaml"
            path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
            played.append(path)
            network = NET + "".join(f",alias={a}" if i else f":alias={a}" for i, a in enumerate(aliases))
            for attempt in range(4):
                play = podman("kube", "play", "--network", network, str(path), check=False)
                if play.returncode == 0 or "init container" not in play.stderr:
                    break
                podman("kube", "down", str(path), check=False)  # the race above, if the annotation is ignored
                time.sleep(1 + attempt)
            assert play.returncode == 0, f"podman kube play {path.name}: {play.stderr.strip()}"
            for cm, mode in modes.items():  # podman 4.3 ignores defaultMode
                mountpoint = podman("volume", "inspect", "--format", "{{.Mountpoint}}", cm).stdout.strip()
                for f in Path(mountpoint).iterdir():
                    f.chmod(mode)
        deadline = time.monotonic() + 90
        first = get(f"http://127.0.0.1:{port}/cgi-bin/visit", deadline)
        second = get(f"http://127.0.0.1:{port}/cgi-bin/visit", deadline)
        assert first.startswith("visit ") and "served by" in first
        assert int(second.split()[1].rstrip(",")) == int(first.split()[1].rstrip(",")) + 1  # the count, on the claim
    finally:
        for path in reversed(played):
            podman("kube", "down", str(path), check=False)
        for volume in volumes:
            podman("volume", "rm", "-f", volume, check=False)
        podman("network", "rm", "-f", NET, check=False)
        podman("rmi", "-f", IMAGE, check=False)
    left = podman("pod", "ps", "--format", "{{.Name}}").stdout.split()
    assert not [p for p in left if p.startswith(PREFIX)]
