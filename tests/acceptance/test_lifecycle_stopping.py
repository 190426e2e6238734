"""Stopping verbs through the CLI: pause/unpause, kill -s, stop_signal and stop_grace_period honoured
by stop, wait (exit code of the first), and the events stream (--json) seeing all of it."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.acceptance.conftest import CLI
from tests.acceptance.test_lifecycle_scale_run import IDLE, tstack  # noqa: F401 - fixture

pytestmark = pytest.mark.root

STACK = f"""
services:
  p:
    image: busybox
    command: {IDLE}
  sig:
    image: busybox
    stop_signal: SIGUSR1
    command: sh -c "trap 'echo got usr1; exit 0' USR1; sleep 600 & wait"
  stubborn:
    image: busybox
    stop_grace_period: 1s
    command: sh -c "while true; do sleep 0.2; done"
  short:
    image: busybox
    command: sh -c "sleep 0.5; exit 7"
"""


def state(s, service: str) -> str:
    return [json.loads(x)["State"] for x in s("ps", "-a", "--format", "json", service).stdout.splitlines()][0]


def test_pause_kill_stop_wait_and_events(tstack):
    s = tstack(STACK)
    s("up", "-d", "p", "sig", "stubborn")
    events = subprocess.Popen([*CLI, "-p", s.name, "events", "--json"], cwd=s.dir, env=s.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.6)  # its first look is the baseline
        s("pause", "p")
        assert state(s, "p") == "paused" and "(Paused)" in s("ps", "p").stdout
        assert s("pause", "p", check=False).returncode != 0  # nothing left to pause
        s("unpause", "p")
        assert state(s, "p") == "running"

        config = json.loads(s("container", "inspect", f"{s.name}-sig-1").stdout)[0]["Config"]
        assert config["StopSignal"] == "SIGUSR1" and "StopTimeout" not in config  # docker's default 10 s
        s("kill", "-s", "USR1", "sig")
        deadline = time.monotonic() + 5
        while state(s, "sig") != "exited" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "got usr1" in s("logs", "sig").stdout
        s("start", "sig")
        t0 = time.monotonic()
        s("stop", "sig")  # stop_signal: the trap ends it at once, no grace period spent
        assert time.monotonic() - t0 < 3 and s("logs", "sig").stdout.count("got usr1") == 2

        t0 = time.monotonic()
        s("stop", "stubborn")  # ignores SIGTERM: killed after its 1 s stop_grace_period
        assert 0.9 < time.monotonic() - t0 < 5

        s("up", "-d", "short")
        w = s("wait", "short", check=False)
        assert w.returncode == 7 and w.stdout.strip() == "7"
        time.sleep(0.6)
    finally:
        events.terminate()
        out, _ = events.communicate(timeout=10)
    seen = [json.loads(line) for line in out.splitlines()]
    by = {(e["service"], e["action"]) for e in seen}
    assert {("p", "pause"), ("p", "unpause"), ("sig", "die"), ("sig", "start"), ("stubborn", "die"),
            ("short", "create"), ("short", "start"), ("short", "die")} <= by, seen
    die = next(e for e in seen if e["service"] == "short" and e["action"] == "die")
    assert die["type"] == "container" and die["attributes"]["exitCode"] == "7"
    assert die["attributes"]["name"] == f"{s.name}-short-1" and die["time"].endswith("Z")
