"""Readiness through the CLI: depends_on conditions (completed successfully, healthy, started),
`required: false`, `restart: true`, `up --wait`; the progress says what is waited for, and a
failed dependency stops its dependent with a message naming both."""

from __future__ import annotations

import json

import pytest

from tests.acceptance.test_lifecycle_scale_run import IDLE, names, tstack  # noqa: F401 - fixture

pytestmark = pytest.mark.root

STACK = f"""
services:
  init:
    image: busybox
    command: sh -c "sleep 0.5; echo init done"
  app:
    image: busybox
    command: {IDLE}
    depends_on: {{init: {{condition: service_completed_successfully}}}}
  bad:
    image: busybox
    command: sh -c "exit 3"
  needsbad:
    image: busybox
    command: {IDLE}
    depends_on: {{bad: {{condition: service_completed_successfully}}}}
  tolerant:
    image: busybox
    command: {IDLE}
    depends_on:
      bad: {{condition: service_completed_successfully, required: false}}
  hc:
    image: busybox
    command: {IDLE}
    healthcheck: {{test: ["CMD", "true"], interval: 200ms, timeout: 1s, retries: 1}}
  base:
    image: busybox
    command: {IDLE}
    environment: {{V: "${{V:-1}}"}}
  follower:
    image: busybox
    command: {IDLE}
    depends_on: {{base: {{condition: service_started, restart: true}}}}
"""


def inspect(s, name: str) -> dict:
    return json.loads(s("container", "inspect", name).stdout)[0]


def when(rfc3339: str) -> tuple[str, float]:
    """docker's RFC 3339 time (fraction of 0-9 digits), comparable."""
    whole, _, frac = rfc3339.rstrip("Z").partition(".")
    return whole, float("0." + (frac or "0"))


def test_completed_successfully_and_failures(tstack):
    s = tstack(STACK)
    up = s("--progress", "plain", "up", "-d", "app")
    assert f"Container {s.name}-init-1  Waiting  to complete (for app)" in up.stderr
    assert f"Container {s.name}-init-1  Exited  exited (0)" in up.stderr
    init, app = inspect(s, f"{s.name}-init-1"), inspect(s, f"{s.name}-app-1")
    assert init["State"]["ExitCode"] == 0 and app["State"]["Status"] == "running"
    assert when(app["State"]["StartedAt"]) >= when(init["State"]["FinishedAt"])  # it started only after init had completed

    bad = s("up", "-d", "needsbad", check=False)
    assert bad.returncode != 0
    assert (f"service needsbad not started: dependency bad ({s.name}-bad-1) exited with code 3 "
            "(condition service_completed_successfully)") in bad.stderr
    assert names(s, "needsbad") == []

    ok = s("--progress", "plain", "up", "-d", "tolerant")  # required: false only warns
    assert "service tolerant: dependency bad" in ok.stderr and "starting anyway" in ok.stderr
    assert names(s, "tolerant") == [f"{s.name}-tolerant-1"]

    # up --wait: a service that exits is a failure, with its code
    w = s("up", "--wait", "bad", check=False)
    assert w.returncode != 0 and f"container {s.name}-bad-1 exited with code 3" in w.stderr
    s("up", "--wait", "app")  # no healthcheck: running is ready (init is a one-shot: exited 0 is fine)


def test_healthy_wait_and_restart_on_recreate(tstack):
    s = tstack(STACK)
    w = s("--progress", "plain", "up", "--wait", "--wait-timeout", "3", "hc", check=False)
    assert f"Container {s.name}-hc-1  Waiting  to be healthy" in w.stderr
    assert w.returncode == 0, w.stderr  # the monitor runs the healthcheck
    assert inspect(s, f"{s.name}-hc-1")["State"]["Health"]["Status"] == "healthy"

    s("up", "-d", "follower")
    before = inspect(s, f"{s.name}-follower-1")
    s.env["V"] = "2"  # base's configuration changes: it is recreated, its follower restarted
    up = s("--progress", "plain", "up", "-d", "follower")
    assert f"Container {s.name}-base-1  Recreated" in up.stderr
    assert f"Container {s.name}-follower-1  Restarting  dependency base was recreated" in up.stderr
    after = inspect(s, f"{s.name}-follower-1")
    assert after["Id"] == before["Id"] and when(after["State"]["StartedAt"]) > when(before["State"]["StartedAt"])
    assert after["State"]["Status"] == "running"
