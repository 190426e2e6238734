"""cli.warmup finds the cgroup.procs of our own cgroup (v2 first, else v1); main decides which
commands warm up (those that start containers, never exec)."""

from __future__ import annotations

from composer.cli.main import _starts_containers, command_word
from composer.cli.warmup import procs_file

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
