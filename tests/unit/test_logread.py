"""runtime.container.logread: a follower that attaches before the monitor has opened the log waits for it."""

from __future__ import annotations

import json
import os
import threading
import time

from composer.runtime.container import logread
from composer.runtime.container import state as st
from composer.runtime.syscalls import proc_start_time


def _line(text: str) -> bytes:
    return (json.dumps({"log": text, "stream": "stdout", "time": "2026-01-01T00:00:00.000000000Z"}) + "\n").encode()


def test_follow_waits_for_a_log_not_yet_opened(tmp_path):
    state, log = str(tmp_path / "state"), str(tmp_path / "container.log")
    os.mkdir(state)
    me = os.getpid()  # stands in for a live monitor: the container runs
    st.write(state, {"monitor_pid": me, "monitor_start": proc_start_time(me), "pid": None})

    def monitor():
        time.sleep(0.15)
        with open(log, "wb") as f:
            f.write(_line("hello\n"))
        time.sleep(0.1)
        st.write(state, {"monitor_pid": None, "pid": None, "exit_code": 0, "finished_at": 1.0})

    t = threading.Thread(target=monitor)
    t.start()
    got = [r.line for r in logread.records(log, state, 1, follow=True)]
    t.join()
    assert got == ["hello\n"]


def test_no_log_and_no_container_running_ends_at_once(tmp_path):
    state = str(tmp_path / "state")
    os.mkdir(state)
    st.write(state, {"pid": None, "exit_code": 0, "finished_at": 1.0})
    start = time.monotonic()
    assert list(logread.records(str(tmp_path / "container.log"), state, 1, follow=True)) == []
    assert list(logread.records(str(tmp_path / "container.log"), state, 1)) == []
    assert time.monotonic() - start < 0.5
