"""composer.startup's warm-up finds the cgroup.procs of our own cgroup (v2 first, else v1); main decides which
commands warm up (those that start containers, never exec)."""

from __future__ import annotations

import os
import time

from composer.cli.main import _starts_containers, command_word
from composer.startup import procs_file

HYBRID_CGROUP = "12:pids:/process_api/abc\n4:cpu:/process_api/abc\n0::/\n"
HYBRID_MOUNTS = (
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    "50 31 0:47 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
)


def test_v2_preferred_when_mounted():
    assert procs_file(HYBRID_CGROUP, HYBRID_MOUNTS, lambda p: True) == "/sys/fs/cgroup/unified/cgroup.procs"


def test_v1_when_no_v2_file():
    got = procs_file(HYBRID_CGROUP, HYBRID_MOUNTS, lambda p: "unified" not in p)
    assert got == "/sys/fs/cgroup/pids/process_api/abc/cgroup.procs"


def test_mount_root_below_our_path_is_stripped():
    mounts = "60 31 0:50 /process_api /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
    assert procs_file("3:pids:/process_api/abc\n", mounts, lambda p: True) == "/sys/fs/cgroup/pids/abc/cgroup.procs"


def test_nothing_found():
    assert procs_file("", HYBRID_MOUNTS, lambda p: True) is None
    assert procs_file(HYBRID_CGROUP, "", lambda p: True) is None


def test_which_commands_warm_up():
    def starts(argv):
        return _starts_containers(argv, command_word(argv))

    assert starts(["up", "-d"]) and starts(["-p", "x", "start"]) and starts(["container", "run", "img"])
    assert not starts(["exec", "web", "sh"]) and not starts(["container", "exec", "c", "sh"])
    assert not starts(["ps"]) and not starts(["down"]) and not starts(["--version"])


def test_warm_up_ends_at_the_first_cgroup_move(tmp_path, monkeypatch):
    """The warm-up writes every PERIOD until the runtime's first move into a container's cgroup
    (base.after_first_move, as cli.main registers it), then not once more: each write takes the
    host-wide cgroup_mutex."""
    from composer import startup
    from composer.runtime.cgroups import base

    monkeypatch.delenv("COMPOSER_NO_WARMUP", raising=False)
    procs, container = tmp_path / "own.procs", tmp_path / "ctr"
    procs.write_text("")
    container.mkdir()
    (container / "cgroup.procs").write_text("")
    monkeypatch.setattr(base, "after_first_move", [startup.stop_warming])
    start = startup.writes
    startup.warm(procs=str(procs))
    try:
        deadline = time.monotonic() + 5
        while startup.writes < start + 3 and time.monotonic() < deadline:
            time.sleep(startup.PERIOD)
        assert startup.writes >= start + 3 and startup.warming()  # it keeps writing until the move
        driver = base.driver_for(base.CgroupPaths(2, (("", str(container)),)))
        driver.attach(base.CgroupPaths(2, (("", str(container)),)), os.getpid())
        assert (container / "cgroup.procs").read_text() == str(os.getpid())
        assert not startup.warming() and base.after_first_move == []
        time.sleep(3 * startup.PERIOD)  # a write already under way may finish
        settled = startup.writes
        time.sleep(5 * startup.PERIOD)
        assert startup.writes == settled  # stopped
    finally:
        startup.stop_warming()


def test_warm_up_ends_with_the_command_or_its_cap(tmp_path, monkeypatch):
    from composer import startup

    monkeypatch.delenv("COMPOSER_NO_WARMUP", raising=False)
    procs = tmp_path / "own.procs"
    procs.write_text("")
    start = startup.writes
    startup.warm(seconds=5 * startup.PERIOD, procs=str(procs))  # the cap: 5 writes at most
    time.sleep(20 * startup.PERIOD)
    assert startup.writes - start <= 5
    startup.stop_warming()  # what main does when the command ends: idempotent after the cap
    assert not startup.warming()
