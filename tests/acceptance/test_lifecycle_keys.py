"""Service keys the runtime cannot honour are reported once each, naming service and key; ulimits
are lowered as asked, and raising a hard limit without CAP_SYS_RESOURCE is refused up front."""

from __future__ import annotations

import resource

import pytest

from tests.acceptance.test_lifecycle_scale_run import IDLE, names, tstack  # noqa: F401 - fixture

pytestmark = pytest.mark.root

HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def _can_raise() -> bool:
    with open("/proc/self/status") as f:
        caps = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(caps & (1 << 24))


def test_warnings_and_ulimits(tstack):
    s = tstack(f"""
services:
  w:
    image: busybox
    command: {IDLE}
    ipc: host
    deploy: {{replicas: 2, placement: {{constraints: ["node.role==manager"]}}}}
    ulimits: {{nofile: {{soft: 512, hard: 1024}}}}
  greedy:
    image: busybox
    command: {IDLE}
    ulimits: {{nofile: {{soft: 1024, hard: {HARD + 1}}}}}
""")
    up = s("--progress", "plain", "up", "-d", "w")
    assert up.stderr.count("service w: key 'ipc' is not supported by composer's runtime, ignored") == 1
    assert up.stderr.count("service w: key 'deploy.placement' is not supported by composer (swarm only)") == 1
    assert len(names(s)) == 2
    limits = s("exec", "-T", "w", "grep", "open files", "/proc/1/limits").stdout.split()  # PID 1's limits
    assert limits[3:5] == ["512", "1024"], limits
    greedy = s("up", "-d", "greedy", check=False)
    if _can_raise():
        assert greedy.returncode == 0 or "ulimit" in greedy.stderr
    else:
        assert greedy.returncode != 0
        assert (f"service greedy: ulimits.nofile hard limit {HARD + 1} is above this host's {HARD}; raising a hard "
                "limit needs CAP_SYS_RESOURCE, which this sandbox lacks") in greedy.stderr
        assert names(s, "-a", "greedy") == []
