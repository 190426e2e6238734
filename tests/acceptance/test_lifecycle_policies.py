"""Restart policies, healthchecks and log rotation through the CLI, checked after `up -d` has
returned (the monitor does the work, no composer process stays behind)."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.acceptance.test_lifecycle_scale_run import IDLE, tstack  # noqa: F401 - fixture

pytestmark = pytest.mark.root

STACK = f"""
services:
  crashy:
    image: busybox
    command: sh -c "date +%s%N >> /data/runs; sleep 0.2; exit 2"
    restart: always
    volumes: [runs:/data]
  limited:
    image: busybox
    command: sh -c "exit 5"
    deploy: {{restart_policy: {{condition: on-failure, max_attempts: 2}}}}
  checked:
    image: busybox
    command: sh -c "touch /tmp/up; {IDLE.replace('"', '')}"
    healthcheck:
      test: ["CMD-SHELL", "test -e /tmp/up && echo fine"]
      interval: 200ms
      retries: 2
  chatty:
    image: busybox
    command: sh -c "i=0; while [ $$i -lt 300 ]; do echo chatty-line-$$i; i=$$((i+1)); done; {IDLE.replace('"', '')}"
    logging: {{driver: json-file, options: {{max-size: 2k, max-file: "2"}}}}
volumes:
  runs:
"""


def ps(s) -> dict[str, dict]:
    return {json.loads(x)["Service"]: json.loads(x) for x in s("ps", "-a", "--format", "json").stdout.splitlines()}


def wait_for(cond, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_policies_work_after_up_returns(tstack):
    s = tstack(STACK)
    s("up", "-d")
    crashy = wait_for(lambda: (r := ps(s)["crashy"])["RestartCount"] >= 2 and r)
    assert "restarts:" in crashy["Status"] or crashy["State"] == "restarting"
    runs = s("exec", "-T", "crashy", "cat", "/data/runs", check=False)
    limited = wait_for(lambda: (r := ps(s)["limited"])["State"] == "exited" and r["RestartCount"] == 2 and r)
    assert limited["ExitCode"] == 5
    checked = wait_for(lambda: (r := ps(s)["checked"])["Health"] == "healthy" and r)
    assert "(healthy" in checked["Status"]
    inspect = json.loads(s("container", "inspect", f"{s.name}-checked-1").stdout)[0]
    assert inspect["State"]["Health"]["Log"][-1]["Output"] == "fine\n"
    s("exec", "-T", "checked", "rm", "/tmp/up")
    wait_for(lambda: ps(s)["checked"]["Health"] == "unhealthy")

    logs = s("logs", "--no-log-prefix", "chatty").stdout.splitlines()
    assert logs[-1] == "chatty-line-299" and "chatty-line-0" not in logs  # rotated away (2 files of 2k)
    data = os.environ.get("COMPOSER_DATA_DIR") or s.env["COMPOSER_DATA_DIR"]
    chatty_id = json.loads(s("container", "inspect", f"{s.name}-chatty-1").stdout)[0]["Id"]
    log = os.path.join(data, "containers", chatty_id, "container.log")
    assert os.path.getsize(log) <= 2048 and os.path.exists(log + ".1") and not os.path.exists(log + ".2")

    s("stop", "-t", "1", "crashy")  # a stop is final, whatever the policy
    time.sleep(1.0)
    assert ps(s)["crashy"]["State"] == "exited"
    if runs.returncode == 0:
        assert len(runs.stdout.split()) >= 2  # the named volume kept what every run wrote
