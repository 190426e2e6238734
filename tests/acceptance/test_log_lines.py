"""Lines come back whole: a line longer than docker's 16 KiB records, and lines a monitor's hand-off
to cmp-pump cut in two, through `logs`, `logs -f` and an attached `up`."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from tests.acceptance.conftest import Stack, down_all

pytestmark = pytest.mark.root

BIG = 5_000_000


@pytest.fixture
def tmp_stack(tmp_path, composer_env, busybox_base):
    made = []

    def make(text: str) -> Stack:
        (tmp_path / "compose.yaml").write_text(text)
        s = Stack(tmp_path, f"lines{uuid.uuid4().hex[:6]}", dict(os.environ, **composer_env))
        made.append(s)
        return s

    yield make
    down_all(made)


def _wait_exit(s: Stack) -> None:
    deadline = time.monotonic() + 60
    while "Exited" not in s("ps", "-a").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_5mb_line_without_newline_is_one_line(tmp_stack):
    s = tmp_stack("services:\n  big:\n    image: busybox\n"
                  f"    command: [sh, -c, 'head -c {BIG} /dev/zero | tr \"\\\\0\" a; sleep 1']\n")
    up = s("up", "--no-log-prefix", timeout=120)  # attached
    _wait_exit(s)
    for out in (up.stdout, s("logs", "--no-log-prefix").stdout, s("logs", "-f", "--no-log-prefix").stdout):
        lines = [line for line in out.splitlines() if line.startswith("a")]
        assert [len(line) for line in lines] == [BIG]


def test_lines_cut_by_a_hand_off_are_joined(tmp_stack):
    s = tmp_stack("services:\n  seq:\n    image: busybox\n    command: [seq, '1', '200000']\n")
    s("up", "-d")
    _wait_exit(s)
    assert s("logs", "--no-log-prefix").stdout == "".join(f"{i}\n" for i in range(1, 200001))
