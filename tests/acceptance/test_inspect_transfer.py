"""The verbs that look into containers, through the CLI on real containers: `container inspect -f`
with docker's shape and Go templates, `cp` both ways into a running and a stopped container (volumes
included), `stats --no-stream` showing mem_limit, `attach` to a running service, `export` of the
file system (without volumes)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time

import pytest

from tests.acceptance.conftest import CLI
from tests.acceptance.test_lifecycle_scale_run import IDLE, tstack  # noqa: F401 - fixture

pytestmark = pytest.mark.root

STACK = f"""
services:
  web:
    image: busybox
    command: {IDLE}
    mem_limit: 64m
    labels: {{k: v}}
    volumes: [data:/data]
  spin:
    image: busybox
    command: sh -c "trap 'exit 0' TERM; while :; do :; done"
    cpus: 0.5
  talker:
    image: busybox
    command: sh -c "sleep 2; echo attached-line; echo to-stderr >&2; exit 3"
volumes:
  data:
"""


def test_inspect_format_and_shape(tstack):
    s = tstack(STACK)
    s("up", "-d", "web")
    name = f"{s.name}-web-1"
    (d,) = json.loads(s("container", "inspect", name).stdout)
    assert d["Name"] == f"/{name}" and d["State"]["Status"] == "running" and d["State"]["Running"] is True
    assert d["Config"]["Labels"]["k"] == "v" and d["HostConfig"]["Memory"] == 64 << 20
    (mount,) = d["Mounts"]
    assert mount["Type"] == "volume" and mount["Name"] == f"{s.name}_data" and mount["Destination"] == "/data"
    net = d["NetworkSettings"]["Networks"][f"{s.name}_default"]
    assert net["IPAddress"].startswith("10.") and "web" in net["Aliases"]
    pid = s("container", "inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
    assert int(pid) == d["State"]["Pid"] > 0 and open(f"/proc/{pid}/comm").read().strip() == "sh"
    out = s("container", "inspect", "--format",
            '{{index .Config.Labels "k"}}|{{range .Mounts}}{{.Destination}} {{end}}|{{.Name}}|'
            '{{if eq .State.Status "running"}}up{{else}}down{{end}}|{{json .HostConfig.RestartPolicy}}', name).stdout
    assert out == f'v|/data |/{name}|up|{{"Name":"no","MaximumRetryCount":0}}\n'
    assert json.loads(s("container", "inspect", "-f", "{{json .Config}}", name).stdout)["Cmd"][:2] == ["sh", "-c"]
    bad = s("container", "inspect", "-f", "{{.State.Nope}}", name, check=False)
    assert bad.returncode == 1 and 'map has no entry for key "Nope"' in bad.stderr and bad.stdout == ""
    bad = s("container", "inspect", "-f", "{{.Name", name, check=False)
    assert bad.returncode == 1 and "unclosed action" in bad.stderr
    vol = s("volume", "inspect", "-f", "{{.Mountpoint}} {{.Driver}} {{index .Labels \"composer.project\"}}",
            f"{s.name}_data").stdout
    assert vol == f"{mount['Source']} local {s.name}\n" and f"{s.name}_data" in s("volume", "ls", "-q").stdout.split()
    nets = json.loads(s("network", "inspect", "-f", "json", f"{s.name}_default").stdout)
    assert nets[0]["Containers"][d["Id"]]["Name"] == name


def test_cp_both_ways_running_and_stopped(tstack, tmp_path):
    s = tstack(STACK)
    s("up", "-d", "web")
    host = tmp_path / "host"
    (host / "tree" / "sub").mkdir(parents=True)
    (host / "tree" / "sub" / "f.txt").write_text("in a tree\n")
    (host / "one.txt").write_text("one\n")
    # into the running container: a file into a volume, a tree into the root
    s("cp", str(host / "one.txt"), "web:/data/")
    s("cp", str(host / "tree"), "web:/srv")
    assert s("exec", "-T", "web", "cat", "/data/one.txt", "/srv/sub/f.txt").stdout == "one\nin a tree\n"
    assert s("exec", "-T", "web", "stat", "-c", "%u", "/srv/sub/f.txt").stdout.strip() == "0"  # root's, as docker
    # out of it: a file to a new name, a directory's content into an existing dir
    s("cp", "web:/etc/passwd", str(host / "passwd"))
    assert (host / "passwd").read_text().startswith("root:")
    (host / "out").mkdir()
    s("cp", "web:/srv/.", str(host / "out"))
    assert (host / "out" / "sub" / "f.txt").read_text() == "in a tree\n"
    # stopped: the same both ways, through its overlay and volume, then seen once started again
    s("stop", "-t", "1", "web")
    s("cp", str(host / "one.txt"), "web:/stopped.txt")
    s("cp", "web:/data/one.txt", str(host / "from-stopped.txt"))
    assert (host / "from-stopped.txt").read_text() == "one\n"
    s("start", "web")
    assert s("exec", "-T", "web", "cat", "/stopped.txt").stdout == "one\n"
    # -L follows a symlink given as SRC; -a keeps owners; `-` is a tar on stdout / stdin
    s("cp", "web:/bin/sh", str(host / "sh-link"))
    s("cp", "-L", "web:/bin/sh", str(host / "sh-file"))
    assert (host / "sh-link").is_symlink() and not (host / "sh-file").is_symlink()
    os.chown(host / "one.txt", 1234, 1234)
    s("cp", "-a", str(host / "one.txt"), "web:/kept.txt")
    assert s("exec", "-T", "web", "stat", "-c", "%u:%g", "/kept.txt").stdout.strip() == "1234:1234"
    tar = subprocess.run([*CLI, "-p", s.name, "cp", "web:/etc/passwd", "-"], cwd=s.dir, env=s.env,
                         capture_output=True, timeout=30, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        assert t.getnames() == ["passwd"] and t.extractfile("passwd").read().startswith(b"root:")
    subprocess.run([*CLI, "-p", s.name, "cp", "-", "web:/root"], input=tar, cwd=s.dir, env=s.env, timeout=30,
                   check=True, capture_output=True)
    assert s("exec", "-T", "web", "head", "-c", "5", "/root/passwd").stdout == "root:"
    missing = s("cp", "web:/no/such", str(host / "x"), check=False)
    assert missing.returncode != 0 and "no such file" in missing.stderr
    both = s("cp", str(host / "one.txt"), str(host / "two.txt"), check=False)
    assert both.returncode == 1 and "one side in a container" in both.stderr


def test_stats_no_stream_shows_the_memory_limit(tstack):
    s = tstack(STACK)
    s("up", "-d", "web")
    table = s("stats", "--no-stream").stdout.splitlines()
    assert table[0].split()[:3] == ["CONTAINER", "ID", "NAME"] and "MEM USAGE / LIMIT" in table[0]
    (row,) = [line for line in table[1:] if f"{s.name}-web-1" in line]
    assert "/ 64MiB" in row
    (doc,) = [json.loads(x) for x in s("stats", "--no-stream", "--format", "json", "web").stdout.splitlines()]
    assert doc["Name"] == f"{s.name}-web-1" and doc["MemUsage"].endswith("/ 64MiB") and int(doc["PIDs"]) >= 2
    assert doc["CPUPerc"].endswith("%") and " / " in doc["NetIO"] and " / " in doc["BlockIO"]
    line = s("stats", "--no-stream", "--format", "{{.Name}} {{.MemPerc}}", "web").stdout
    assert line.startswith(f"{s.name}-web-1 ") and line.strip().endswith("%")
    # CPU % is over the time between two readings: a busy loop held to half a core shows about 50%
    s("up", "-d", "spin")
    try:
        (spin,) = [json.loads(x) for x in s("stats", "--no-stream", "--format", "json", "spin").stdout.splitlines()]
        assert 5.0 < float(spin["CPUPerc"].rstrip("%")) < 75.0, spin
    finally:
        s("kill", "spin")
    # the same --format on the listing verbs
    assert s("ps", "--format", "{{.Service}} {{.State}}").stdout == "web running\n"
    listed = s("container", "ls", "--format", "table {{.Names}}\t{{.State}}").stdout.splitlines()
    assert listed[0].split() == ["NAMES", "STATE"] and listed[1].split() == [f"{s.name}-web-1", "running"]
    # the live table into a pipe: a screen a second, until interrupted
    live = subprocess.Popen([*CLI, "-p", s.name, "stats", "--format", "{{.Name}} {{.PIDs}}"], cwd=s.dir, env=s.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        screens = [live.stdout.readline() for _ in range(2)]
    finally:
        live.send_signal(2)
        live.wait(timeout=10)
    assert all(x.startswith(f"{s.name}-web-1 ") for x in screens) and live.returncode == 0


def test_attach_follows_output_and_returns_the_exit_code(tstack):
    s = tstack(STACK)
    s("up", "-d", "talker")
    t0 = time.monotonic()
    attached = subprocess.run([*CLI, "-p", s.name, "attach", "talker"], cwd=s.dir, env=s.env, capture_output=True,
                              text=True, timeout=30)
    assert attached.stdout == "attached-line\n" and attached.stderr == "to-stderr\n"
    assert attached.returncode == 3 and time.monotonic() - t0 < 10
    stopped = s("attach", "talker", check=False)
    assert stopped.returncode != 0 and "start it first" in stopped.stderr


def test_export_writes_the_file_system_without_volumes(tstack, tmp_path):
    s = tstack(STACK)
    s("up", "-d", "web")
    s("exec", "-T", "web", "sh", "-c", "echo mine > /root/mine.txt; echo vol > /data/vol.txt")
    out = tmp_path / "web.tar"
    s("export", "web", "-o", str(out))
    with tarfile.open(out) as t:
        names = set(t.getnames())
        assert t.extractfile("root/mine.txt").read() == b"mine\n"
    assert "bin/busybox" in names and "data/vol.txt" not in names and not any(n.startswith("proc/") for n in names)
    s("stop", "-t", "1", "web")
    piped = subprocess.run([*CLI, "-p", s.name, "export", "web"], cwd=s.dir, env=s.env, capture_output=True,
                           timeout=60)
    assert piped.returncode == 0 and b"root/mine.txt" in piped.stdout
