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


def _rec(text: str, stream: str = "stdout", t: str = "2026-01-01T00:00:00.000000000Z") -> bytes:
    return (json.dumps({"log": text, "stream": stream, "time": t}) + "\n").encode()


def _exited(tmp_path) -> tuple[str, str]:
    state, log = str(tmp_path / "state"), str(tmp_path / "container.log")
    os.mkdir(state)
    st.write(state, {"pid": None, "exit_code": 0, "finished_at": 1.0})
    return state, log


def test_partial_records_come_back_as_one_line(tmp_path):
    """A hand-off's unfinished line ("23" then "697\\n"), 16 KiB pieces, and stderr between them."""
    state, log = _exited(tmp_path)
    with open(log, "wb") as f:
        f.write(_rec("23") + _rec("oops\n", "stderr") + _rec("697\n") + _rec("a" * 16384) + _rec("b" * 16384)
                + _rec("c\n") + _rec("no newline at the end"))
    for follow in (False, True):
        got = [(r.stream, r.line) for r in logread.records(log, state, 1, follow=follow)]
        assert got == [("stderr", "oops\n"), ("stdout", "23697\n"), ("stdout", "a" * 16384 + "b" * 16384 + "c\n"),
                       ("stdout", "no newline at the end")]


def test_a_5mb_line_written_by_the_pump_reads_back_whole(tmp_path):
    from composer.runtime.monitor import logpump

    state, log = _exited(tmp_path)
    lf = logpump._LogFile(log, None, 1)
    pump = logpump._Pump(-1, "stdout", lf, None)
    line = ("0123456789" * 500_000).encode()
    for i in range(0, len(line), 65536):
        pump.buf += line[i:i + 65536]
        pump.flush()
    pump.flush(final=True)
    lf.close()
    with open(log, "rb") as f:
        assert sum(1 for _ in f) == 306  # 16 KiB records, as docker's json-file
    got = list(logread.records(log, state, 1))
    assert len(got) == 1 and got[0].line == line.decode()


def test_escapes_and_foreign_lines_decode_as_json_does(tmp_path):
    state, log = _exited(tmp_path)
    texts = ['tab\there "quoted" \\back\\ é ü \u2603\n', '", "stream": "stderr", "time": "x"}\n', "\x00\x1b[31m\n"]
    with open(log, "wb") as f:
        for t in texts:
            f.write(_rec(t))
        f.write(b'{"time": "2026-01-01T00:00:01.000000000Z", "log": "other order\\n", "stream": "stdout"}\n')
        f.write(b"not json\n")
    assert [r.line for r in logread.records(log, state, 1)] == texts + ["other order\n"]
