"""The CLI as users meet it: up -d, a request through the published port, ps/logs/exec from separate
processes, down with nothing left; attached up with prefixed logs and exit lines; a taken port."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest

from tests import hostobjects
from tests.acceptance.conftest import leftovers

pytestmark = pytest.mark.root


def _nft_ruleset() -> str:
    import subprocess

    return subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout


def _get(url: str, timeout: float = 5.0) -> str:
    from tests.integration.network_helpers import http_get

    return http_get(url, timeout)


def test_three_tier_stack_lifecycle(stack):
    s = stack("three")
    up = s("--progress", "plain", "up", "-d")
    for svc in ("db", "app", "lb"):
        assert f"Container {s.name}-{svc}-1  Started" in up.stderr

    address = s("port", "lb", "80").stdout.strip()
    assert re.fullmatch(r"127\.0\.0\.1:\d+", address), address
    assert "lb says: visit 1, served by" in _get(f"http://{address}/cgi-bin/visit")
    assert "visit 2" in _get(f"http://{address}/cgi-bin/visit")

    ps = s("ps").stdout.splitlines()
    assert ps[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    assert [line.split()[0] for line in ps[1:]] == [f"{s.name}-app-1", f"{s.name}-db-1", f"{s.name}-lb-1"]
    assert all("Up " in line for line in ps[1:])
    assert f"{address}->80/tcp" in ps[3]
    rows = [json.loads(line) for line in s("ps", "--format", "json").stdout.splitlines()]
    assert {r["Service"] for r in rows} == {"db", "app", "lb"} and {r["State"] for r in rows} == {"running"}
    assert s("ps", "--services").stdout.split() == ["app", "db", "lb"]

    logs = s("logs", "--no-color").stdout
    assert "lb-1   | lb ready" in logs and "db-1   | db ready" in logs and "app-1  | app ready" in logs
    assert s("logs", "--no-log-prefix", "--tail", "1", "db").stdout == "db ready\n"

    assert s("exec", "-T", "db", "cat", "/data/count").stdout.strip() == "2"
    assert s("exec", "-T", "app", "sh", "-c", "exit 3", check=False).returncode == 3
    assert s("exec", "-T", "lb", "sh", "-c", "nslookup backend >/dev/null 2>&1 || grep -q backend /etc/hosts"
             ).returncode == 0

    s("stop", "-t", "1", "app")
    assert "Exited" in s("ps", "-a", "app").stdout
    s("start", "app")
    assert "visit 3" in _get(f"http://{address}/cgi-bin/visit")

    owned = s.host_objects()
    assert len(owned["ids"]) == 3 and len(owned["links"]) == 4 and owned["pids"]
    down = s("--progress", "plain", "down", "-t", "1")
    assert f"Container {s.name}-lb-1  Removed" in down.stderr
    assert s("ps", "-a", "-q").stdout == ""
    assert leftovers(owned) == {}
    port = address.rsplit(":", 1)[1]
    assert f"dport {port}" not in _nft_ruleset()


def test_attached_up_prefixes_logs_and_announces_exits(stack):
    s = stack("oneshot")
    proc = s("--ansi", "never", "up")
    out = proc.stdout
    assert "hello-1  | hello from one" in out and "hello-1  | bye from one" in out
    assert "other-1  | other here" in out
    assert "hello-1 exited with code 0" in out and "other-1 exited with code 0" in out
    assert out.index("hello from one") < out.index("bye from one") < out.index("hello-1 exited with code 0")


def test_attach_false_service_runs_but_is_not_shown(stack):
    s = stack("quiet")
    out = s("--ansi", "never", "up").stdout
    assert "loud-1  | loud here" in out and "quiet here" not in out
    logs = s("logs", "quiet").stdout
    assert "quiet here" in logs  # it ran: only the attached display left it out


def test_attached_up_exit_code_from(stack):
    s = stack("oneshot", OTHER_CODE="3")
    proc = s("--ansi", "never", "up", "--exit-code-from", "other", check=False)
    assert proc.returncode == 3, proc.stderr
    assert "other-1 exited with code 3" in proc.stdout


def test_up_with_taken_port_fails_before_starting_anything(stack):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        s = stack("taken", TAKEN_PORT=str(port))
        proc = s("up", "-d", check=False)
        assert proc.returncode != 0
        assert str(port) in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr  # a short message, no traceback
        assert s("ps", "-a", "-q").stdout == ""  # `first` was not started (nor created)
        from composer.runtime.net.ipam import bridge_name

        assert bridge_name(f"{s.name}_default") not in hostobjects.links()


def _start_attached(s, *args: str):
    """`composer up` in its own process group, as a terminal runs it (Ctrl-C goes to the group)."""
    import os
    import subprocess

    from tests.acceptance.conftest import CLI

    proc = subprocess.Popen([*CLI, "-p", s.name, "--ansi", "never", "up", *args], cwd=s.dir, env=s.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if "stubborn up" in "".join(seen) and "polite up" in "".join(seen):
            return proc, seen
    proc.kill()
    raise AssertionError("up did not attach: " + "".join(seen))


def test_ctrl_c_stops_gracefully(stack):
    import os
    import signal

    s = stack("stubborn")
    proc, _ = _start_attached(s)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None  # still waiting for `stubborn`'s grace period
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # the second Ctrl-C kills
    out, err = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 5
    assert proc.returncode == 130
    assert "Gracefully stopping... (press Ctrl+C again to force)" in err
    assert "Traceback" not in err
    states = {json.loads(line)["Service"]: json.loads(line)["State"] for line in
              s("ps", "-a", "--format", "json").stdout.splitlines()}
    assert states == {"polite": "exited", "stubborn": "exited"}


def test_logs_follow_sees_recreated_containers_and_ends_with_them(stack):
    import subprocess

    from tests.acceptance.conftest import CLI

    s = stack("three")
    s("up", "-d")
    follower = subprocess.Popen([*CLI, "-p", s.name, "logs", "-f", "--no-color", "lb"], cwd=s.dir, env=s.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        s("up", "-d", "--force-recreate", "--no-deps", "lb")  # a new lb container joins the stream
        time.sleep(1.0)
        s("stop", "-t", "1")
        out, err = follower.communicate(timeout=15)
    finally:
        follower.kill()
    assert out.count("lb-1  | lb ready") == 2, out + err
    assert "lb-1 exited with code" in out
    assert follower.returncode == 0
