"""The cgroup v2 device program on the real kernel. On a v1-hybrid host the kernel runs the device
programs of a process's cgroup2 cgroup (/sys/fs/cgroup/unified) besides v1's devices controller,
so the program is proven here too: a forked child moved into a cgroup carrying it can mknod any
node, open the default character devices, and open nothing else (a disk: EPERM)."""

from __future__ import annotations

import os
import statistics
import time
import uuid

import pytest

from composer.errors import HostError
from composer.runtime.cgroups import devices as cd
from tests.integration import cgroup_drivers

pytestmark = pytest.mark.root


@pytest.fixture
def cgroup2_dir():
    """An empty cgroup2 dir of our own under <cgroup2>/composer/, removed afterwards."""
    drv = cgroup_drivers.unified_v2() or cgroup_drivers.make("host")
    assert drv.version == 2
    base = drv.base_dirs()[0]
    os.makedirs(base, exist_ok=True)
    d = os.path.join(base, f"devtest-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.mkdir(d)
    yield d
    os.rmdir(d)


def in_cgroup(d: str, probe) -> list[str]:
    """Run probe() in a forked child moved into cgroup d; its result lines."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            os.write(w, "\n".join(probe()).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = b""
    while chunk := os.read(r, 4096):
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return out.decode().splitlines()


def attempt(fn) -> str:
    try:
        fn()
        return "ok"
    except OSError as e:
        return e.strerror


def test_program_confines_a_process(cgroup2_dir, tmp_path):
    cd.attach(cgroup2_dir, cd.rules_for())
    assert cd.attached(cgroup2_dir) == 1
    disk, null, mem, pts = (str(tmp_path / n) for n in ("disk", "null", "mem", "pts"))

    def probe():
        return [
            attempt(lambda: os.mknod(disk, 0o600 | 0o060000, os.makedev(7, 0))),  # a loop disk
            attempt(lambda: os.close(os.open(disk, os.O_RDONLY))),
            attempt(lambda: os.mknod(null, 0o666 | 0o020000, os.makedev(1, 3))),
            attempt(lambda: os.close(os.open(null, os.O_RDWR))),
            attempt(lambda: os.mknod(mem, 0o600 | 0o020000, os.makedev(1, 1))),
            attempt(lambda: os.close(os.open(mem, os.O_RDONLY))),
            attempt(lambda: os.mknod(pts, 0o600 | 0o020000, os.makedev(136, 99))),
            attempt(lambda: os.close(os.open("/dev/zero", os.O_RDONLY))),
        ]

    assert in_cgroup(cgroup2_dir, probe) == ["ok", "Operation not permitted", "ok", "ok", "ok",
                                             "Operation not permitted", "ok", "ok"]
    assert attempt(lambda: os.close(os.open(disk, os.O_RDONLY))) != "Operation not permitted"  # only in there


def test_extra_rule_opens_one_more_device(cgroup2_dir, tmp_path):
    cd.attach(cgroup2_dir, cd.rules_for(("c 1:11 r",)))
    mem = str(tmp_path / "kmsg")
    os.mknod(mem, 0o600 | 0o020000, os.makedev(1, 11))
    assert in_cgroup(cgroup2_dir, lambda: [attempt(lambda: os.close(os.open(mem, os.O_RDONLY))),
                                           attempt(lambda: os.close(os.open(mem, os.O_RDWR)))]) == \
        ["ok", "Operation not permitted"]


def test_verifier_refusal_is_a_host_error_with_its_log():
    bad = cd.assemble(cd.rules_for())[:-8]  # no final exit
    with pytest.raises(HostError, match="the verifier said:\n.*"):
        cd._load(bad)


def test_attach_costs_little(cgroup2_dir):
    """Loaded once per process; each container then pays an open and a BPF_PROG_ATTACH."""
    rules = cd.rules_for(("c 99:* r",))  # a rule set no other test loaded
    t = time.perf_counter()
    cd.load(rules)
    first = time.perf_counter() - t
    times = []
    for i in range(20):
        d = os.path.join(cgroup2_dir, f"c{i}")
        os.mkdir(d)
        try:
            t = time.perf_counter()
            cd.attach(d, rules)
            times.append(time.perf_counter() - t)
        finally:
            os.rmdir(d)
    median_ms = statistics.median(times) * 1000
    print(f"device program: load {first * 1000:.2f} ms once, attach median {median_ms:.3f} ms")
    assert median_ms < 2
