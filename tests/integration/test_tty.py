"""stdin and terminals: `container run -i/-t`, `container exec -i/-t`, compose `exec`/`run`, driven
through a pty opened by the test (no real terminal needed)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time

import pytest

from composer.runtime import tty as rtty
from tests.integration.conftest import PYTHON

pytestmark = pytest.mark.root


@pytest.fixture
def ccli(cli, runtime, busybox_image):
    cli.image = busybox_image
    return cli


def on_pty(env: dict, *args: str, rows: int = 33, cols: int = 101, send: bytes = b"", timeout: float = 20):
    """Run the CLI with a new pty (size rows x cols) as its stdin/stdout/stderr: (exit code, output)."""
    master, slave = os.openpty()
    rtty.set_size(master, rtty.winsize(rows, cols))
    proc = subprocess.Popen([PYTHON, "-m", "composer", *args], env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        if send:
            time.sleep(0.3)  # let the container start reading
            os.write(master, send)
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
