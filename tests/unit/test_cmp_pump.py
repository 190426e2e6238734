"""cmp-pump (the compiled idle half of a monitor) writes the same json-file records as the Python
pump, rotates the same way, and hands back to its resume command with PID 1's exit code. Needs
the binary `./dev setup` compiles (gcc is one of the project's Debian packages); no root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from composer.runtime.monitor import handoff, monitor

NASTY = (b"plain line\n" + "héllo wörld 🙂 \"quoted\" back\\slash\ttab\x01ctl\x7f\n".encode()
         + b"bad utf8 \xff\xfe \xc3 \xe2\x82 \xf0\x9f\x99 end\n" + b"x" * 40000 + b"\n" + b"no newline at the end")


def pump_path() -> str:
    assert handoff.PUMP is not None, "cmp-pump is not built: run ./dev setup (it compiles it)"
    return handoff.PUMP


def run_pump(tmp_path, payload: bytes, code: int, *, max_size: int = 0, max_file: int = 1) -> tuple[str, list[str]]:
    """A fake PID 1 writes payload to stdout (and 'err' to stderr) then exits with code; the
    script execs cmp-pump as a monitor would, whose resume command records its arguments."""
    log = tmp_path / "container.log"
    record = tmp_path / "resume.json"
    data = tmp_path / "payload"
    data.write_bytes(payload)
    script = textwrap.dedent(f"""
        import os, sys
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(out_r); os.close(err_r)
            os.write(err_w, b"err\\n")
            with open({str(data)!r}, "rb") as f:
                os.write(out_w, f.read())
            os.close(out_w); os.close(err_w)
            import time; time.sleep(0.3)  # the pump sees both streams end before the exit
            os._exit({code})
        os.close(out_w); os.close(err_w)
        for fd in (out_r, err_r):
            os.set_inheritable(fd, True)
        resume = [sys.executable, "-c", "import json, sys; json.dump(sys.argv[1:], open({str(record)!r}, 'w'))"]
        os.execv({pump_path()!r}, [{pump_path()!r}, "cmp-mon-test", str(pid), str(out_r), str(err_r),
                 {str(log)!r}, "{max_size}", "{max_file}", "0", "--", *resume])
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    return str(log), json.loads(record.read_text())


def python_records(payload: bytes, stream: str) -> list[str]:
    """What the Python pump logs for the same bytes, read in one go and flushed at EOF."""
    lines: list[bytes] = []

    class Sink:
        def write(self, data: bytes) -> None:
            lines.extend(data.splitlines())

    p = monitor._Pump(-1, stream, Sink(), None)
    p.buf = payload
    p.flush(final=True)
    return [json.loads(x)["log"] for x in lines]


def test_same_records_as_the_python_pump_and_the_exit_code(tmp_path):
    log, resumed = run_pump(tmp_path, NASTY, 7)
    assert resumed[:2] == ["exit", "7"] and resumed[2:] == ["-1", "-1"]  # both streams ended
    records = [json.loads(x) for x in open(log, encoding="ascii")]  # ensure_ascii output, as Python's
    out = [r["log"] for r in records if r["stream"] == "stdout"]
    assert out == python_records(NASTY, "stdout")
    assert [r["log"] for r in records if r["stream"] == "stderr"] == ["err\n"]
    assert all(r["time"].endswith("Z") and len(r["time"]) == 30 for r in records)
    first = open(log, "rb").readline()  # byte for byte the Python pump's layout
    assert first.startswith(b'{"log": "') and b'", "stream": "' in first and b'", "time": "' in first


def test_killed_pid1_reports_128_plus_signal(tmp_path):
    _, resumed = run_pump(tmp_path, b"", -9 & 0xFF)  # exit status 247: a plain code
    assert resumed[:2] == ["exit", "247"]


def test_rotation_between_whole_lines(tmp_path):
    payload = b"".join(b"line-%03d\n" % i for i in range(300))
    log, _ = run_pump(tmp_path, payload, 0, max_size=2048, max_file=3)
    assert os.path.exists(log + ".1") and os.path.exists(log + ".2") and not os.path.exists(log + ".3")
    for path in (log, log + ".1", log + ".2"):
        assert os.path.getsize(path) <= 2048
        for line in open(path):
            json.loads(line)  # never a record cut in two
    last = [json.loads(x)["log"] for x in open(log)]
    assert last[-1] in ("line-299\n", "err\n")


@pytest.mark.parametrize("max_file", [1])
def test_single_file_is_truncated(tmp_path, max_file):
    payload = b"".join(b"entry-%03d\n" % i for i in range(200))
    log, _ = run_pump(tmp_path, payload, 0, max_size=1024, max_file=max_file)
    assert os.path.getsize(log) <= 1024 and not os.path.exists(log + ".1")
