"""What `stats` reads from a cgroup, per version, on files laid out as the kernel writes them (the
host tests read real v1 cgroups; this holds the v2 reading, which only the VM tier has for real)."""

from composer.runtime.cgroups.base import CgroupPaths, read_io_bytes
from composer.runtime.cgroups.v1 import V1Driver
from composer.runtime.cgroups.v2 import V2Driver


def test_io_bytes_both_formats(tmp_path):
    v1 = tmp_path / "blkio.throttle.io_service_bytes_recursive"
    v1.write_text("8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Total 12288\n"
                  "8:16 Read 1\n8:16 Write 2\nTotal 12291\n")
    assert read_io_bytes(str(v1)) == (4097, 8194)
    v2 = tmp_path / "io.stat"
    v2.write_text("8:0 rbytes=1000 wbytes=2000 rios=3 wios=4 dbytes=0 dios=0\n8:16 rbytes=5 wbytes=6 rios=1 wios=1\n")
    assert read_io_bytes(str(v2)) == (1005, 2006)
    assert read_io_bytes(str(tmp_path / "missing")) is None


def test_v2_stats(tmp_path):
    files = {"memory.current": "10485760\n", "memory.max": "67108864\n", "cpu.stat": "usage_usec 2500\nuser_usec 2000\n",
             "pids.current": "3\n", "memory.stat": "anon 5000\nfile 4000\ninactive_file 1048576\n",
             "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=1\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    s = V2Driver("", "").stats(CgroupPaths(2, (("", str(tmp_path)),)))
    assert (s.memory_bytes, s.memory_limit, s.cpu_ns, s.pids_current) == (10485760, 67108864, 2_500_000, 3)
    assert (s.memory_inactive_file, s.block_read, s.block_write) == (1048576, 10, 20)
    (tmp_path / "memory.max").write_text("max\n")
    assert V2Driver("", "").stats(CgroupPaths(2, (("", str(tmp_path)),))).memory_limit is None


def test_v1_stats(tmp_path):
    dirs = {c: tmp_path / c for c in ("memory", "cpu,cpuacct", "pids", "blkio")}
    for d in dirs.values():
        d.mkdir()
    (dirs["memory"] / "memory.usage_in_bytes").write_text("2097152\n")
    (dirs["memory"] / "memory.limit_in_bytes").write_text("67108864\n")
    (dirs["memory"] / "memory.stat").write_text("cache 10\ntotal_inactive_file 1048576\n")
    (dirs["cpu,cpuacct"] / "cpuacct.usage").write_text("123456789\n")
    (dirs["pids"] / "pids.current").write_text("2\n")
    (dirs["blkio"] / "blkio.throttle.io_service_bytes_recursive").write_text("8:0 Read 7\n8:0 Write 9\nTotal 16\n")
    s = V1Driver([]).stats(CgroupPaths(1, tuple((c, str(d)) for c, d in dirs.items())))
    assert (s.memory_bytes, s.memory_limit, s.cpu_ns, s.pids_current) == (2097152, 67108864, 123456789, 2)
    assert (s.memory_inactive_file, s.block_read, s.block_write) == (1048576, 7, 9)
