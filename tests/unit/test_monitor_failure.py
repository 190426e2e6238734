"""runtime.monitor.failure: what a lean runtime process leaves when it dies of an exception (the
traceback on fd 2, the launcher's log; a note in the container's state), and that it stays lean."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from composer.runtime.monitor import failure

# A child process with fd 2 on a file, as a monitor has the launcher's log.
_CHILD = """
import json, os, sys
from composer.runtime.monitor import failure
state_dir, pid1 = sys.argv[1], int(sys.argv[2])
try:
    failure.inject("monitor.finish")
    print("not injected")
except RuntimeError:
    failure.report("monitor", "c0ffee" * 4, state_dir, pid1)
"""


def _state(tmp_path, **fields) -> str:
    d = tmp_path / "c"
    d.mkdir()
    (d / "lock").touch()
    (d / "state.json").write_text(json.dumps(fields))
    return str(d)


def _child(tmp_path, state_dir: str, pid1: int, point: str = "monitor.finish") -> tuple[str, str]:
    log = tmp_path / "launcher.log"
    with open(log, "ab") as err:
        out = subprocess.run([sys.executable, "-c", _CHILD, state_dir, str(pid1)], stderr=err, capture_output=False,
                             stdout=subprocess.PIPE, text=True, env=dict(os.environ, COMPOSER_FAULT=point + ":raise"),
                             check=True).stdout
    return out, log.read_text()


def test_traceback_to_the_log_and_a_note_in_the_state(tmp_path):
    state_dir = _state(tmp_path, pid=4242, status="x")
    out, log = _child(tmp_path, state_dir, 4242)
    assert out == ""
    head, *rest = log.splitlines()
    assert head.endswith("monitor pid %s container %s died: RuntimeError: injected failure at monitor.finish "
                         "($COMPOSER_FAULT, test-only)" % (head.split()[3], "c0ffee" * 4))
    assert head[:4].isdigit() and head.split()[0].endswith("Z")  # a UTC timestamp first
    assert rest[0] == "Traceback (most recent call last):" and ", in inject\n" in log
    error = json.loads(open(os.path.join(state_dir, "state.json")).read())["monitor_error"]
    assert error["log"] == str(tmp_path / "launcher.log") and error["message"].startswith("monitor died: RuntimeError")
    assert failure.summary({"monitor_error": error}) == f"{error['message']} (traceback in {error['log']})"


def test_a_newer_runs_state_is_left_alone(tmp_path):
    state_dir = _state(tmp_path, pid=99, monitor_pid=1)
    _, log = _child(tmp_path, state_dir, 4242)
    assert "died: RuntimeError" in log
    assert "monitor_error" not in json.loads(open(os.path.join(state_dir, "state.json")).read())


def test_no_injection_unless_named(tmp_path, monkeypatch):
    out, log = _child(tmp_path, _state(tmp_path), 1, point="monitor.other")
    assert out == "not injected\n" and log == ""
    monkeypatch.delenv("COMPOSER_FAULT", raising=False)
    failure.inject("monitor.finish")


def test_lean_until_it_fails():
    code = ("import sys; from composer.runtime.monitor import monitor, failure\n"
            "print('traceback' in sys.modules)")
    assert subprocess.run([sys.executable, "-I", "-S", "-c", "import sys; sys.path.insert(0, %r)\n" % os.getcwd() + code],
                          capture_output=True, text=True, check=True).stdout == "False\n"


@pytest.mark.parametrize("state, text", [({}, None), ({"monitor_error": "junk"}, None),
                                         ({"monitor_error": {"message": "monitor died: X", "log": None}},
                                          "monitor died: X")])
def test_summary(state, text):
    assert failure.summary(state) == text
