"""A monitor that dies of an exception leaves a trace: its traceback in the launcher's log and a note
in the container's state, which `container ls` and `container inspect` show. The failure is injected
at one named point by the test-only $COMPOSER_FAULT (runtime.monitor.failure.inject)."""

from __future__ import annotations

import json
import os
import time

import pytest

pytestmark = pytest.mark.root


@pytest.fixture
def failing_monitors(composer_env, monkeypatch):
    # before the runtime fixture starts this test's launcher: monitors inherit its environment
    monkeypatch.setenv("COMPOSER_FAULT", "monitor.finish:raise")


def test_monitor_death_is_logged_and_recorded(failing_monitors, cli, runtime, busybox_image):
    r = cli("container", "run", "-d", "--network", "none", "--name", "doomed", busybox_image, "sh", "-c", "exit 3")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    state_file = os.path.join(runtime.state_dir, "containers", cid, "state.json")
    deadline = time.monotonic() + 10
    while not (state := json.loads(open(state_file).read())).get("monitor_error") and time.monotonic() < deadline:
        time.sleep(0.05)
    error = state["monitor_error"]
    log_path = os.path.join(runtime.state_dir, "launcher.log")
    assert error["log"] == log_path and error["pid"] == state["monitor_pid"]
    assert error["message"] == ("monitor died: RuntimeError: injected failure at monitor.finish "
                                "($COMPOSER_FAULT, test-only)")
    log = open(log_path).read()
    head = next(line for line in log.splitlines() if f"container {cid}" in line)
    assert f"monitor pid {error['pid']} container {cid} died: RuntimeError" in head
    assert "Traceback (most recent call last):" in log and "in finish\n" in log and "in inject\n" in log

    where = f"(traceback in {log_path})"
    (info,) = json.loads(cli("container", "inspect", cid).stdout)
    assert info["State"]["Status"] == "exited" and info["State"]["Error"] == f"{error['message']} {where}"
    listing = cli("container", "ls", "-a").stdout
    assert f"Exited (?) (monitor died: RuntimeError" in listing and where in listing
