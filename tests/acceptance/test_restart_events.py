"""`restart` takes along the services that declare `depends_on: {x: {restart: true}}` (not the
others, not with --no-deps), seen through `events --since/--until`, which replays the recorded past
and ends at --until."""

from __future__ import annotations

import json
import time

import pytest

from tests.acceptance.test_lifecycle_scale_run import IDLE, tstack  # noqa: F401 - fixture

pytestmark = pytest.mark.root

STACK = f"""
services:
  db:
    image: busybox
    command: {IDLE}
  api:
    image: busybox
    depends_on: {{db: {{condition: service_started, restart: true}}}}
    command: {IDLE}
  web:
    image: busybox
    depends_on: {{api: {{condition: service_started, restart: true}}}}
    command: {IDLE}
  worker:
    image: busybox
    depends_on: [db]
    command: {IDLE}
"""


def events(s, since: float, *extra: str) -> set[tuple[str, str]]:
    out = s("events", "--json", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}", *extra, timeout=20).stdout
    return {(e["service"], e["action"]) for e in map(json.loads, out.splitlines())}


def test_restart_takes_restart_true_dependents_and_events_since_until(tstack):
    s = tstack(STACK)
    s("up", "-d")
    t0 = time.time()
    time.sleep(0.05)
    s("restart", "-t", "1", "db")
    assert events(s, t0) == {("db", "start"), ("api", "start"), ("web", "start")}
    assert events(s, t0, "worker") == set()  # filtered by service, and not restarted
    t1 = time.time()
    time.sleep(0.05)
    s("restart", "-t", "1", "--no-deps", "db")
    assert events(s, t1) == {("db", "start")}
    assert ("worker", "create") in events(s, 0)  # the whole recorded past

    t = time.monotonic()
    assert s("events", "--until", "1s").returncode == 0  # in the past: ends at once
    assert time.monotonic() - t < 5
    bad = s("events", "--since", "yesterday", check=False)
    assert bad.returncode == 1 and "invalid --since value" in bad.stderr
