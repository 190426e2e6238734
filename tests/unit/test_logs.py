"""The combined log stream: prefixes, colours, merge order, followers joining and exiting."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass

import pytest

from composer.errors import NotFoundError, UsageError
from composer.runtime import LogRecord
from composer.ui import logmux as logs


@dataclass
class FakeInfo:
    status: str
    exit_code: int | None


class FakeRuntime:
    """runtime.logs/get over in-memory records; a follower's stream ends when `close(id)` is called."""

    def __init__(self) -> None:
        self.records: dict[str, list[LogRecord]] = {}
        self.codes: dict[str, int] = {}
        self.closed: dict[str, threading.Event] = {}

    def add(self, id: str, lines: list[tuple[str, str]], code: int = 0, closed: bool = True) -> None:
        self.records[id] = [LogRecord(t, "stdout", line + "\n") for t, line in lines]
        self.codes[id] = code
        self.closed[id] = threading.Event()
        if closed:
            self.closed[id].set()

    def logs(self, id, *, follow=False, since=None, tail=None):
        if id not in self.records:
            raise NotFoundError(f"no such container: {id}")
        recs = self.records[id]
        if tail is not None:
            recs = recs[-tail:] if tail else []
        yield from recs
        if follow:
            self.closed[id].wait(5)

    def get(self, id):
        return FakeInfo("exited", self.codes[id])


def T(sec: int) -> str:
    return f"2024-05-01T10:00:{sec:02d}.000000000Z"


def test_prefix_padded_to_longest_name_plus_one():
    out = io.StringIO()
    p = logs.LogPrinter(out, logs.LogOptions(colour=False), names=["db-1", "backend-1"])
    p.line(logs.Source("x", "db-1", "db"), T(0), "hello\n")
    p.line(logs.Source("y", "backend-1", "backend"), T(0), "hi\n")
    assert out.getvalue() == "db-1       | hello\nbackend-1  | hi\n"


def test_single_service_prefix_like_compose():
    out = io.StringIO()
    p = logs.LogPrinter(out, logs.LogOptions(colour=False), names=["db-1"])
    p.line(logs.Source("x", "db-1", "db"), T(0), "line")
    assert out.getvalue() == "db-1  | line\n"


def test_colours_stable_and_distinct():
    a = logs.colour_map(["web", "db", "lb"])
    b = logs.colour_map(["lb", "web", "db"])
    assert a == b and len(set(a.values())) == 3
    assert logs.colour_for("new", a) == logs.colour_for("new", b)
    out = io.StringIO()
    p = logs.LogPrinter(out, logs.LogOptions(colour=True), a, ["db-1"])
    p.line(logs.Source("x", "db-1", "db"), T(0), "x\n")
    assert out.getvalue().startswith(f"\x1b[{a['db']}mdb-1  |\x1b[0m x")


def test_no_prefix_and_timestamps():
    out = io.StringIO()
    p = logs.LogPrinter(out, logs.LogOptions(colour=False, prefix=False, timestamps=True), names=["db-1"])
    p.line(logs.Source("x", "db-1", "db"), T(3), "x\n")
    assert out.getvalue() == f"{T(3)} x\n"


def test_exit_line():
    out = io.StringIO()
    p = logs.LogPrinter(out, logs.LogOptions(colour=False))
    p.exited(logs.Source("x", "db-1", "db"), 0)
    assert out.getvalue() == "db-1 exited with code 0\n"


def test_display_name_strips_project():
    assert logs.display_name("demo-db-1", "demo") == "db-1"
    assert logs.display_name("my-custom", "demo") == "my-custom"


def test_parse_since():
    now = 1_000_000.0
    assert logs.parse_since("10m", now) == now - 600
    assert logs.parse_since("1h30m", now) == now - 5400
    assert logs.parse_since("1714557600", now) == 1714557600.0
    assert logs.parse_since("2024-05-01T10:00:00Z", now) == 1714557600.0
    assert logs.parse_since("2024-05-01T10:00:00.123456789Z", now) == pytest.approx(1714557600.123456)
    assert logs.parse_since("2024-05-01T12:00:00+02:00", now) == 1714557600.0
    with pytest.raises(UsageError):
        logs.parse_since("yesterday", now)


def test_print_logs_merges_by_time_with_tail():
    rt = FakeRuntime()
    rt.add("a", [(T(1), "a1"), (T(3), "a3"), (T(5), "a5")])
    rt.add("b", [(T(2), "b2"), (T(4), "b4")])
    out = io.StringIO()
    p = logs.LogPrinter(out, logs.LogOptions(colour=False, tail=2))
    logs.print_logs(rt, [logs.Source("a", "a-1", "a"), logs.Source("b", "b-1", "b")], p)
    assert out.getvalue() == "b-1  | b2\na-1  | a3\nb-1  | b4\na-1  | a5\n"


def test_mux_follows_until_all_exit_and_announces():
    rt = FakeRuntime()
    rt.add("a", [(T(1), "a1")], code=0, closed=False)
    rt.add("b", [(T(2), "b2")], code=3, closed=False)
    out = io.StringIO()
    mux = logs.LogMux(rt, logs.LogPrinter(out, logs.LogOptions(colour=False, follow=True)))
    mux.add(logs.Source("a", "a-1", "a"))
    mux.add(logs.Source("b", "b-1", "b"))
    threading.Timer(0.1, rt.closed["a"].set).start()
    threading.Timer(0.2, rt.closed["b"].set).start()
    t0 = time.monotonic()
    mux.run()
    assert time.monotonic() - t0 < 2
    lines = out.getvalue().splitlines()
    assert set(lines[:2]) == {"a-1  | a1", "b-1  | b2"}
    assert lines[2:] == ["a-1 exited with code 0", "b-1 exited with code 3"]
    assert mux.exit_codes == {"a-1": 0, "b-1": 3}


def test_mux_abort_on_exit_callback_stops_early():
    rt = FakeRuntime()
    rt.add("a", [], code=1)
    rt.add("b", [], closed=False)
    out = io.StringIO()
    seen = []
    mux = logs.LogMux(rt, logs.LogPrinter(out, logs.LogOptions(colour=False)),
                      on_exit=lambda s, c: seen.append((s.name, c)) or True)
    mux.add(logs.Source("a", "a-1", "a"))
    mux.add(logs.Source("b", "b-1", "b"))
    mux.run()
    assert seen == [("a-1", 1)]
    rt.closed["b"].set()


def test_mux_picks_up_new_containers_and_widens():
    rt = FakeRuntime()
    rt.add("a", [(T(1), "a1")], closed=False)
    rt.add("c", [(T(2), "new")])
    out = io.StringIO()
    new = [logs.Source("c", "longer-name-1", "c")]
    calls = []

    def discover():
        calls.append(1)
        return new if len(calls) >= 1 else []

    mux = logs.LogMux(rt, logs.LogPrinter(out, logs.LogOptions(colour=False)), discover=discover)
    mux.POLL = 0.05
    mux.add(logs.Source("a", "a-1", "a"))
    threading.Timer(0.3, rt.closed["a"].set).start()
    mux.run()
    text = out.getvalue()
    assert "longer-name-1  | new" in text
    assert "longer-name-1 exited with code 0" in text and "a-1 exited with code 0" in text


def test_mux_does_not_announce_containers_that_were_not_running():
    rt = FakeRuntime()
    rt.add("a", [(T(1), "old")])
    out = io.StringIO()
    mux = logs.LogMux(rt, logs.LogPrinter(out, logs.LogOptions(colour=False)))
    mux.add(logs.Source("a", "a-1", "a", running=False))
    mux.run()
    assert out.getvalue() == "a-1  | old\n"


def test_tail_values():
    import pytest

    from composer.errors import UsageError
    from composer.ui.logmux import parse_tail

    assert parse_tail("all") is None and parse_tail("-1") is None and parse_tail("0") == 0 and parse_tail("5") == 5
    with pytest.raises(UsageError, match="invalid --tail 'x'"):
        parse_tail("x")
