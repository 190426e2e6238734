"""The other engines composer's stacks move to (dockerd with its swarm mode, a registry, podman), for the
tests that prove `composer deploy --swarm` and `composer convert` on the real thing.

On a developer machine the engines `../shared/anchors/setup.sh` started are used as they are. In CI
(CI=true) or with COMPOSER_TEST_ENGINES=install, what is missing is installed from Debian and started
here, then stopped by pid at the end; elsewhere the tests skip, saying how to run them. A swarm, a
registry or a daemon these fixtures start is the one they stop: the host is left as it was found."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ENGINES_DIR = Path("/var/tmp/cmp-test-engines")  # not under /composer: dockerd's mounts are not ours
_DEBS = {"dockerd": "docker.io", "docker": "docker.io", "docker-registry": "docker-registry",
         "podman": "podman netavark aardvark-dns runc catatonit"}
ANCHORS_PODMAN_CONF = Path("/var/tmp/composer-anchors/containers.conf")
# As the anchors' setup writes it, for this kind of host: no systemd or journald, cgroup v1 hybrid
# (crun 1.8 refuses it: runc), no CAP_SYS_RESOURCE to raise podman's default rlimits.
_PODMAN_CONF = """[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=20000:20000", "nproc=16384:16384"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
[network]
network_backend = "netavark"
"""


def may_install() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("COMPOSER_TEST_ENGINES") == "install"


def _need(what: str) -> str:
    return (f"{what} is not available here: run ../shared/anchors/setup.sh, or set "
            "COMPOSER_TEST_ENGINES=install to let the tests install and start it")


def ensure_installed(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if not missing:
        return
    if not may_install():
        pytest.skip(_need(", ".join(missing)))
    debs = sorted({deb for p in missing for deb in _DEBS[p].split()})
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Debian's policy-rc.d: the packages' init scripts must not start their daemons on a host without
    # systemd (the fixtures start what they need, and stop it by pid)
    policy = Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    if ours:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True, timeout=600)
        proc = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *debs],
                              env=env, capture_output=True, text=True, timeout=900)
    finally:
        if ours:
            policy.unlink()
    assert proc.returncode == 0, f"apt-get install {' '.join(debs)} failed: {proc.stderr[-2000:]}"


def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check:
        assert proc.returncode == 0, f"docker {' '.join(args)}: {proc.stderr.strip()}"
    return proc


def _docker_answers() -> bool:
    try:
        return docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30).returncode == 0
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def docker_engine():
    """A dockerd the docker CLI reaches: the one running, or one started (and stopped) here."""
    if _docker_answers():
        yield
        return
    ensure_installed("dockerd", "docker")
    ENGINES_DIR.mkdir(parents=True, exist_ok=True)
    # As the anchors' setup does: forwarding on first, so dockerd does not set the FORWARD policy
    # to DROP (which would also drop traffic on other bridges).
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
    log = open(ENGINES_DIR / "dockerd.log", "ab")
    daemon = subprocess.Popen(["dockerd", "--exec-opt", "native.cgroupdriver=cgroupfs"],
                              stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        for _ in range(120):
            if _docker_answers():
                break
            assert daemon.poll() is None, f"dockerd exited; see {ENGINES_DIR / 'dockerd.log'}"
            time.sleep(0.5)
        assert _docker_answers(), f"dockerd did not answer within 60 s; see {ENGINES_DIR / 'dockerd.log'}"
        yield
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        log.close()


@pytest.fixture(scope="module")
def swarm(docker_engine):
    """A one-node swarm on 127.0.0.1: the engine's own if it is in one, else one made and left here."""
    state = json.loads(docker("info", "--format", "{{json .Swarm}}").stdout)
    if state.get("LocalNodeState") == "active":
        yield
        return
    had_gwbridge = docker("network", "inspect", "docker_gwbridge", check=False).returncode == 0
    docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        yield
    finally:
        docker("swarm", "leave", "--force", check=False)
        if not had_gwbridge:
            for _ in range(20):  # the bridge goes once the node's sandboxes are gone
                if docker("network", "rm", "docker_gwbridge", check=False).returncode == 0:
                    break
                time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry(tmp_path):
    """Debian's docker-registry on a loopback port with its own storage; yields HOST:PORT."""
    ensure_installed("docker-registry")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nstorage: {{filesystem: {{rootdirectory: {tmp_path / 'blobs'}}}}}\n"
                      f"http: {{addr: 127.0.0.1:{port}}}\nlog: {{level: error}}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, "docker-registry exited at start"
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def podman_conf() -> str:
    """CONTAINERS_CONF for podman on this host: the anchors' file, else one written here."""
    ensure_installed("podman")
    if ANCHORS_PODMAN_CONF.exists():
        return str(ANCHORS_PODMAN_CONF)
    ENGINES_DIR.mkdir(parents=True, exist_ok=True)
    conf = ENGINES_DIR / "containers.conf"
    conf.write_text(_PODMAN_CONF)
    return str(conf)
