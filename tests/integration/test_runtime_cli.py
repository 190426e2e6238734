"""`composer container ...` as a user runs it: separate processes sharing only the state on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests import hostobjects
from tests.integration.conftest import PYTHON

pytestmark = pytest.mark.root


@pytest.fixture
def ccli(cli, runtime, busybox_image):
    """cli + cleanup of every container (runtime fixture) + the busybox image name."""
    cli.image = busybox_image
    return cli


def test_run_passes_output_and_exit_codes(ccli):
    r = ccli("container", "run", "--rm", "--network", "none", ccli.image, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    r = ccli("container", "run", "--rm", "--network", "none", ccli.image, "true")
    assert r.returncode == 0
    assert ccli("container", "ls", "-a", "-q").stdout == ""


def test_run_not_found_is_127_with_one_line(ccli):
    r = ccli("container", "run", "--rm", "--network", "none", ccli.image, "nosuchcmd")
    assert r.returncode == 127
    assert r.stderr.strip().splitlines() == ['composer: exec: "nosuchcmd": executable file not found in $PATH']
    assert ccli("container", "ls", "-a", "-q").stdout == ""


def test_run_flags(ccli, tmp_path):
    (tmp_path / "f").write_text("data\n")
    os.chmod(tmp_path, 0o755)  # readable by the container's user 65534
    r = ccli("container", "run", "--rm", "--network", "none", "-e", "A=1", "-w", "/work", "-u", "65534:65534",
             "--hostname", "h1", "-v", f"{tmp_path}:/mnt:ro", ccli.image,
             "sh", "-c", 'echo "$A $(pwd) $(id -u):$(id -g) $(hostname) $(cat /mnt/f)"; touch /mnt/x || echo RO')
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "1 /work 65534:65534 h1 data"
    assert "RO" in r.stdout


@pytest.mark.parametrize("args,message", [
    (["--network", "none", "-m", "lots"], "invalid memory limit"),
    (["--network", "none", "-u", "ghost"], "unable to find user ghost"),
    (["--network", "none", "-v", "/nonexistent/cmp:/x"], "bind source path does not exist"),
    (["--network", "none", "--pids-limit", "x"], "--pids-limit"),
])
def test_bad_input_one_line_nothing_left(ccli, args, message):
    before = hostobjects.snapshot()
    r = ccli("container", "run", "--rm", *args, ccli.image, "true")
    assert r.returncode != 0
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert ccli("container", "ls", "-a", "-q").stdout == ""
    assert hostobjects.leaked(before) == {}


def test_unknown_image(ccli):
    r = ccli("container", "run", "--rm", "cmptest-no-such-image", "true")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1


def test_oom_message_and_137(ccli):
    r = ccli("container", "run", "--rm", "--network", "none", "--name", "hog", "-m", "32m", ccli.image,
             "sh", "-c", "head -c 200m /dev/zero | tail > /dev/null")
    assert r.returncode == 137
    assert "container hog was killed: out of memory (limit 32 MiB)" in r.stderr


def test_detach_then_logs_stop_rm_from_other_processes(ccli):
    r = ccli("container", "run", "-d", "--network", "none", "--name", "bg", ccli.image,
             "sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    assert len(cid) == 64
    deadline = time.monotonic() + 5
    while "started" not in ccli("container", "logs", "bg").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    ls = ccli("container", "ls").stdout
    assert "bg" in ls and "Up" in ls
    assert ccli("container", "exec", "bg", "sh", "-c", "echo hi from exec").stdout == "hi from exec\n"
    t = ccli("container", "logs", "-t", "bg").stdout
    assert t.split()[1] == "started" and t.startswith("20")
    assert ccli("container", "stop", "-t", "5", "bg").returncode == 0
    logs = ccli("container", "logs", "bg").stdout
    assert logs == "started\nbye\n"
    inspect = json.loads(ccli("container", "inspect", "bg").stdout)[0]
    assert inspect["State"]["Status"] == "exited" and inspect["State"]["ExitCode"] == 0
    assert "Exited (0)" in ccli("container", "ls", "-a").stdout
    assert ccli("container", "rm", "bg").returncode == 0
    assert ccli("container", "ls", "-a", "-q").stdout == ""


def test_logs_follow_ends_with_container(ccli):
    r = ccli("container", "run", "-d", "--network", "none", ccli.image, "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.1; done")
    cid = r.stdout.strip()
    f = ccli("container", "logs", "-f", cid, timeout=10)
    assert f.stdout == "1\n2\n3\n"


def test_detached_rm_removes_itself(ccli):
    r = ccli("container", "run", "-d", "--rm", "--network", "none", ccli.image, "true")
    assert r.returncode == 0
    deadline = time.monotonic() + 10
    while ccli("container", "ls", "-a", "-q").stdout and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ccli("container", "ls", "-a", "-q").stdout == ""


def test_kill_9_of_the_cli_then_rm(ccli):
    before = hostobjects.snapshot()
    p = subprocess.Popen([PYTHON, "-m", "composer", "container", "run", "--name", "orphan", "--network", "none",
                          ccli.image, "sleep", "60"], env=ccli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while "orphan" not in ccli("container", "ls").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    p.kill()
    p.wait()
    assert "orphan" in ccli("container", "ls").stdout  # the container lives on
    k = ccli("container", "kill", "orphan")
    assert k.returncode == 0
    w = ccli("container", "wait", "orphan")
    assert w.stdout.strip() == "137"
    assert ccli("container", "rm", "orphan").returncode == 0
    assert hostobjects.leaked(before) == {}


def test_ctrl_c_stops_the_container(ccli):
    p = subprocess.Popen([PYTHON, "-m", "composer", "container", "run", "--rm", "--name", "intr", "--network", "none",
                          ccli.image, "sh", "-c", "trap 'exit 7' INT TERM; echo ready; while true; do sleep 0.1; done"],
                         env=ccli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=15) == 7
    assert ccli("container", "ls", "-a", "-q").stdout == ""


def test_bridge_network(ccli):
    r = ccli("container", "run", "--rm", ccli.image, "sh", "-c", "ip -4 addr show eth0; ip route")
    assert r.returncode == 0, r.stderr
    assert "inet " in r.stdout and "default via" in r.stdout


def test_rm_force_running_leaves_no_host_objects(ccli):
    before = hostobjects.snapshot()
    r = ccli("container", "run", "-d", "--name", "full", "-m", "64m", "--cpus", "0.5", "--pids-limit", "20",
             ccli.image, "sleep", "60")
    assert r.returncode == 0, r.stderr
    assert ccli("container", "rm", "full").returncode != 0  # running: refused
    assert ccli("container", "rm", "-f", "full").returncode == 0
    from tests.integration.conftest import remove_networks

    remove_networks(ccli.env["COMPOSER_STATE_DIR"])  # the default bridge stays until removed, like docker0
    assert hostobjects.leaked(before) == {}
