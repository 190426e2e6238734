"""Rendering of the project verbs: status, port and command texts, ps tables, progress lines."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

import pytest

from composer.runtime.spec import PortMapping
from composer.ui import progress, tables

NOW = 1_700_000_000.0


@dataclass(frozen=True)
class FakeSpec:
    image: str = "busybox"
    argv: tuple = ("httpd", "-f", "-p", "80")
    labels: tuple = (("composer.service", "web"), ("composer.project", "demo"))
    ports: tuple = ()


@dataclass(frozen=True)
class FakeInfo:
    name: str = "demo-web-1"
    status: str = "running"
    id: str = "a" * 64
    spec: FakeSpec = field(default_factory=FakeSpec)
    exit_code: int | None = None
    oom_killed: bool = False
    created_at: float | None = NOW - 125
    started_at: float | None = NOW - 3
    finished_at: float | None = None
    ports: tuple = ()
    health: str | None = None
    monitor_error: str | None = None

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")

    def label(self, key, default=None):
        return dict(self.spec.labels).get(key, default)


@dataclass(frozen=True)
class Ev:
    kind: str
    name: str
    action: str
    service: str | None = None
    detail: str = ""


def test_status_texts_follow_docker():
    assert tables.status_text(FakeInfo(), NOW) == "Up 3 seconds"
    assert tables.status_text(FakeInfo(started_at=NOW - 1), NOW) == "Up 1 second"
    assert tables.status_text(FakeInfo(health="healthy"), NOW) == "Up 3 seconds (healthy)"
    assert tables.status_text(FakeInfo(status="paused"), NOW) == "Up 3 seconds (Paused)"
    exited = FakeInfo(status="exited", exit_code=0, finished_at=NOW - 130)
    assert tables.status_text(exited, NOW) == "Exited (0) 2 minutes ago"
    assert tables.status_text(FakeInfo(status="exited", exit_code=137, oom_killed=True, finished_at=NOW - 5), NOW) \
        == "Exited (137) (OOM killed) 5 seconds ago"
    assert tables.status_text(FakeInfo(status="created"), NOW) == "Created"
    died = "monitor died: RuntimeError: x (traceback in /s/launcher.log)"
    assert tables.status_text(FakeInfo(status="exited", finished_at=NOW - 5, monitor_error=died), NOW) \
        == f"Exited (?) ({died}) 5 seconds ago"
    assert tables.status_text(FakeInfo(monitor_error=died), NOW) == f"Up 3 seconds ({died})"


def test_port_texts():
    info = FakeInfo(ports=(PortMapping(80, 8080, "127.0.0.1"), PortMapping(53, 5353, "", "udp")))
    assert tables.ports_text(info) == "127.0.0.1:8080->80/tcp, 0.0.0.0:5353->53/udp"
    assert tables.ports_text(FakeInfo(spec=FakeSpec(ports=(PortMapping(80),)))) == "80/tcp"
    assert tables.ports_text(FakeInfo(status="exited")) == ""


def test_command_truncated_like_docker():
    assert tables.command_text(("httpd", "-f")) == '"httpd -f"'
    long = tables.command_text(("sh", "-c", "echo hello world and more"))
    assert long.startswith('"sh -c ') and long.endswith('…"') and len(long) == 22
    assert tables.command_text(("sh", "-c", "echo hello world and more"), trunc=False) == \
        "\"sh -c 'echo hello world and more'\""


def test_ps_plain_table_aligned():
    rows = [tables.ps_row(FakeInfo(), NOW), tables.ps_row(FakeInfo(name="demo-database-1", status="exited", exit_code=1,
                                                           finished_at=NOW - 10), NOW)]
    text = tables.plain_table(tables.PS_HEADERS, [tuple(vars(r).values()) for r in rows])
    lines = text.splitlines()
    assert lines[0].split() == list(tables.PS_HEADERS)
    assert lines[0].index("IMAGE") == lines[1].index("busybox") == lines[2].index("busybox")
    assert "Up 3 seconds" in lines[1] and "Exited (1) 10 seconds ago" in lines[2]
    assert "2 minutes ago" in lines[1]


def test_ps_rich_table_into_string_console():
    out = io.StringIO()
    row = tables.ps_row(FakeInfo(ports=(PortMapping(80, 8080, "127.0.0.1"),)), NOW)
    tables.print_table(tables.PS_HEADERS, [tuple(vars(row).values())], out, use_rich=True, colour=False, width=200)
    text = out.getvalue()
    assert "NAME" in text and "demo-web-1" in text and "127.0.0.1:8080->80/tcp" in text
    assert "\x1b[" not in text


def test_ps_json_fields():
    d = tables.ps_json(FakeInfo(ports=(PortMapping(80, 8080, "127.0.0.1"),)), "demo", NOW)
    assert d["Name"] == "demo-web-1" and d["Service"] == "web" and d["State"] == "running"
    assert d["Publishers"] == [{"URL": "127.0.0.1", "TargetPort": 80, "PublishedPort": 8080, "Protocol": "tcp"}]
    json.dumps(d)


def test_plain_progress_lines():
    out = io.StringIO()
    p = progress.make_progress("auto", "auto", out)  # a StringIO is no terminal: plain
    assert isinstance(p, progress.PlainProgress)
    with p:
        p(Ev("Network", "demo_default", "Created"))
        p(Ev("Container", "demo-web-1", "Started"))
        p(Ev("Container", "demo-web-1", "Error", detail="port 8080 is in use"))
    assert out.getvalue().splitlines() == ["Network demo_default  Created", "Container demo-web-1  Started",
                                           "Container demo-web-1  Error  port 8080 is in use"]


def test_quiet_progress_only_errors():
    out = io.StringIO()
    p = progress.make_progress("quiet", "auto", out)
    p(Ev("Container", "x", "Started"))
    p(Ev("Container", "x", "Error", detail="boom"))
    assert out.getvalue() == "Container x  Error  boom\n"


def test_ansi_never_and_progress_plain_pick_plain():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(progress.make_progress("auto", "never", Tty()), progress.PlainProgress)
    assert isinstance(progress.make_progress("plain", "auto", Tty()), progress.PlainProgress)
    assert isinstance(progress.make_progress("auto", "auto", Tty()), progress.TtyProgress)


def test_tty_progress_renders_marks_and_times():
    from rich.console import Console

    p = progress.TtyProgress(io.StringIO(), colour=False, width=100)
    p(Ev("network", "demo_default", "Creating"))
    p(Ev("Network", "demo_default", "Created"))
    p(Ev("Container", "demo-web-1", "Starting"))
    p(Ev("Container", "demo-db-1", "Error", detail="exec failed"))
    out = io.StringIO()
    Console(file=out, width=100, no_color=True).print(p.renderable())
    text = out.getvalue()
    assert "[+] Running 2/3" in text
    assert "✔ Network demo_default" in text and "Created" in text
    assert "✘ Container demo-db-1" in text and "Error exec failed" in text
    assert "s\n" in text  # elapsed seconds column
    assert p.plain_lines()[1] == "Container demo-web-1  Starting"


def test_tty_progress_live_writes_final_state():
    out = io.StringIO()
    with progress.TtyProgress(out, colour=False, width=80) as p:
        p(Ev("Container", "demo-web-1", "Starting"))
        p(Ev("Container", "demo-web-1", "Started"))
    assert "Container demo-web-1" in out.getvalue() and "Started" in out.getvalue()


def test_runner_kinds_capitalised_and_project_warnings():
    out = io.StringIO()
    p = progress.PlainProgress(out)
    p(Ev("container", "demo-web-1", "Started", "web"))
    p(Ev("container", "demo", "Warning", None, "found orphan containers (old)"))
    assert out.getvalue().splitlines() == ["Container demo-web-1  Started", "WARNING: found orphan containers (old)"]
    t = progress.TtyProgress(io.StringIO(), colour=False)
    t(Ev("container", "demo", "Warning", None, "orphans"))
    t(Ev("volume", "demo_data", "Created"))
    assert t.plain_lines() == ["Volume demo_data  Created"]


@pytest.mark.parametrize("arg", ["", "plain", "a b", "it's", "$HOME", "ä", "x=y,z:1/2.3-4@5%6+7", "tab\there",
                                 "new\nline", "'", '"', "*", "a;b", "~x", "#"])
def test_command_quoting_is_shlex_quote(arg):
    import shlex

    from composer.ui.texts import quote

    assert quote(arg) == shlex.quote(arg)
