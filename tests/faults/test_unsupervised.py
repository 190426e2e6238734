"""A container whose monitor died keeps running unsupervised: `ps` says so instead of a stale health
status, and `up` recreates it (a new monitor cannot adopt PID 1: docs/ARCHITECTURE.md)."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.acceptance.test_lifecycle_scale_run import IDLE
from tests.faults.common import Owned, _alive, left_on_host, look, state_dir, wait_for

pytestmark = pytest.mark.root

HEALTHY = f"""
services:
  web:
    image: busybox
    command: {IDLE}
    healthcheck: {{test: ["CMD", "true"], interval: 1s, start_period: 0s}}
"""


def test_dead_monitor_shows_unsupervised_and_up_recreates(tstack):
    s = tstack(HEALTHY)
    s("up", "-d", "--wait")
    owned = Owned(s)
    look(owned)
    row = json.loads(s("ps", "--format", "json").stdout.splitlines()[0])
    assert "(healthy)" in row["Status"]
    cid = next(n for n in os.listdir(os.path.join(state_dir(s), "containers")) if n.startswith(row["ID"]))
    state = json.loads(open(os.path.join(state_dir(s), "containers", cid, "state.json")).read())
    os.kill(state["monitor_pid"], signal.SIGKILL)
    wait_for(lambda: not _alive(state["monitor_pid"]), timeout=5)
    assert _alive(state["pid"])
    row = json.loads(s("ps", "--format", "json").stdout.splitlines()[0])
    assert row["State"] == "running" and "(unsupervised)" in row["Status"] and "healthy" not in row["Status"]
    up = s("up", "-d")
    assert "Recreate" in up.stderr + up.stdout
    wait_for(lambda: not _alive(state["pid"]), timeout=10)
    row = json.loads(s("ps", "--format", "json").stdout.splitlines()[0])
    assert row["ID"] != cid[:12] and "unsupervised" not in row["Status"]
    look(owned)
    s("down", "-t", "0")
    assert left_on_host(owned) == {}
