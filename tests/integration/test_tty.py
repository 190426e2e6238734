"""stdin and terminals: `container run -i/-t`, `container exec -i/-t`, compose `exec`/`run`, driven
through a pty opened by the test (no real terminal needed)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time

import pytest

from composer.runtime.monitor import tty as rtty
from tests.integration.conftest import PYTHON

pytestmark = pytest.mark.root


@pytest.fixture
def ccli(cli, runtime, busybox_image):
    cli.image = busybox_image
    return cli


def on_pty(env: dict, *args: str, rows: int = 33, cols: int = 101, send=(), timeout: float = 20, cwd=None):
    """Run the CLI with a new pty (size rows x cols) as its stdin/stdout/stderr: (exit code, output).
    send: bytes to type, or (rows, cols) to resize the terminal (SIGWINCH to the CLI, as a
    terminal emulator's resize does to its foreground process), each after a pause."""
    master, slave = os.openpty()
    rtty.set_size(master, rtty.winsize(rows, cols))
    proc = subprocess.Popen([PYTHON, "-m", "composer", *args], env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, cwd=cwd)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        for item in [send] if isinstance(send, bytes) else send:
            time.sleep(0.4)  # let the container start reading
            if isinstance(item, bytes):
                os.write(master, item)
            else:
                rtty.set_size(master, rtty.winsize(*item))
                proc.send_signal(signal.SIGWINCH)
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the CLI and every holder of the slave are gone
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, out.decode(errors="replace")


def test_run_i_forwards_stdin_pipe(ccli):
    r = ccli("container", "run", "-i", "--rm", "--network", "none", ccli.image, "cat", input="hi\n")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr


def test_run_without_i_has_no_stdin(ccli):
    r = ccli("container", "run", "--rm", "--network", "none", ccli.image, "cat", input="hi\n")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr


def test_run_t_gives_pid1_a_terminal(ccli):
    code, out = on_pty(ccli.env, "container", "run", "-t", "--rm", "--network", "none", ccli.image,
                       "sh", "-c", "[ -t 1 ] && echo IS-TTY; tty; stty size; exit 4")
    assert code == 4, out
    assert "IS-TTY" in out and "/dev/pts/0" in out and "33 101" in out, out


def test_run_it_interactive_shell(ccli):
    code, out = on_pty(ccli.env, "container", "run", "-it", "--rm", "--network", "none", ccli.image, "sh",
                       send=b"echo $((6*7))\rexit 5\r")
    assert code == 5, out
    assert "42" in out


def test_exec_it_tty_and_size(ccli):
    r = ccli("container", "run", "-d", "--network", "none", "--name", "c", ccli.image, "sleep", "60")
    assert r.returncode == 0, r.stderr
    code, out = on_pty(ccli.env, "container", "exec", "-it", "c", "sh", "-c", "tty; stty size; exit 3",
                       rows=40, cols=120)
    assert code == 3, out
    assert "/dev/pts/" in out and "40 120" in out, out
    r = ccli("container", "exec", "-i", "c", "cat", input="piped\n")
    assert (r.returncode, r.stdout) == (0, "piped\n")
    r = ccli("container", "exec", "c", "sh", "-c", "[ -t 0 ] || echo no-tty; cat", input="ignored\n")
    assert (r.returncode, r.stdout) == (0, "no-tty\n")


def test_run_it_window_size_follows_the_terminal(ccli):
    code, out = on_pty(ccli.env, "container", "run", "-it", "--rm", "--network", "none", ccli.image, "sh",
                       send=[(50, 70), b"stty size\r", b"exit\r"])
    assert code == 0, out
    assert "50 70" in out, out


def test_exec_it_window_size_follows_the_terminal(ccli):
    assert ccli("container", "run", "-d", "--network", "none", "--name", "w", ccli.image, "sleep", "60").returncode == 0
    code, out = on_pty(ccli.env, "container", "exec", "-it", "w", "sh", send=[(44, 55), b"stty size; exit 7\r"])
    assert code == 7, out
    assert "44 55" in out, out


def test_exec_t_error_when_container_gone_is_one_line(ccli):
    r = ccli("container", "exec", "-it", "nosuch", "true")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1


STACK = """
services:
  box:
    image: {image}
    network_mode: none
    command: sleep 60
  term:
    image: {image}
    network_mode: none
    tty: true
    command: sh -c '[ -t 1 ] && echo TERM-OK; tty; sleep 60'
  idle:
    image: {image}
    network_mode: none
    stdin_open: true
    command: cat
"""


def test_compose_exec_run_and_tty_services(ccli, tmp_path):
    (tmp_path / "compose.yaml").write_text(STACK.format(image=ccli.image))
    name = "cmptty" + os.urandom(3).hex()

    def compose(*args, **kw):
        return ccli("-p", name, *args, cwd=tmp_path, **kw)

    try:
        r = compose("up", "-d")
        assert r.returncode == 0, r.stderr
        assert "not supported" not in r.stderr
        # exec: a tty by default when stdin is a terminal; -T: none
        code, out = on_pty(ccli.env, "-p", name, "exec", "box", "sh", "-c", "tty; stty size", rows=21, cols=88,
                           cwd=tmp_path)
        assert code == 0 and "/dev/pts/" in out and "21 88" in out, out
        r = compose("exec", "-T", "box", "sh", "-c", "[ -t 0 ] || echo NO-TTY")
        assert (r.returncode, r.stdout) == (0, "NO-TTY\n"), r.stderr
        r = compose("exec", "box", "cat", input="through exec\n")  # not a terminal: no tty, stdin attached
        assert (r.returncode, r.stdout) == (0, "through exec\n"), r.stderr
        # run: stdin attached by default; a tty when stdin is a terminal
        r = compose("run", "--rm", "box", "cat", input="through run\n")
        assert (r.returncode, r.stdout) == (0, "through run\n"), r.stderr
        code, out = on_pty(ccli.env, "-p", name, "run", "--rm", "box", "sh", "-c", "tty; exit 2", cwd=tmp_path)
        assert code == 2 and "/dev/pts/0" in out, out
        # tty: true, detached: the pty's output is logged as stdout; stdin_open: an idle open stdin
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            logs = compose("logs", "--no-log-prefix", "term").stdout
            if "/dev/pts/0" in logs:
                break
            time.sleep(0.1)
        assert "TERM-OK" in logs and "/dev/pts/0" in logs, logs
        ps = compose("ps", "--format", "json", "idle")
        assert "running" in ps.stdout, ps.stdout + ps.stderr
    finally:
        compose("down", "-t", "0")


def test_ctrl_c_goes_to_the_container_on_a_tty(ccli):
    code, out = on_pty(ccli.env, "container", "run", "-it", "--rm", "--network", "none", ccli.image, "sh",
                       send=[b"sleep 30\r", b"\x03", b"echo after-$((1+1))\r", b"exit 6\r"], timeout=15)
    assert code == 6, out
    assert "after-2" in out
