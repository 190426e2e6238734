"""Where containers' cgroups go, proven on the host the test runs on (never skipped):
- with systemd as PID 1 on cgroup v2 (the VM tier): one delegated transient scope per container,
  composer.slice/composer-<id>.scope/container, the monitor in .../supervisor; the limits stay through
  `daemon-reload` and `set-property`; a stack `up` from a login session and from a service lands in the
  same place with the same limits; it survives `loginctl terminate-session`; `down` leaves no unit;
- without systemd (this machine, CI): cgroupfs, below the starter's own cgroup, as before; the same
  checks where they mean something (same place from another session, survival of the starter's
  session, nothing left after `down`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from composer.runtime.cgroups import base as cg
from tests import hostobjects

pytestmark = pytest.mark.root
PYTHON = sys.executable
MIB = 1024 * 1024
LIMITS = {"memory.max": "33554432", "memory.low": "16777216", "pids.max": "20", "cpu.max": "50000 100000",
          "cpu.weight": "20"}  # 512 shares -> weight 20 (runc's conversion)
STACK = """\
services:
  app:
    image: {image}
    command: ["sleep", "3600"]
    network_mode: none
    mem_limit: 32m
    mem_reservation: 16m
    pids_limit: 20
    cpus: 0.5
    cpu_shares: 512
"""


def _systemd_host() -> bool:
    from composer.runtime.cgroups import systemd

    return cg.default_driver().version == 2 and systemd.running()


SYSTEMD = _systemd_host()


@pytest.fixture
def stacks(cli, busybox_image, tmp_path):
    """Stack files by project name; `down` for each at the end."""
    made: list[str] = []

    def new(project: str) -> list[str]:
        path = tmp_path / f"{project}.yaml"
        path.write_text(STACK.format(image=busybox_image))
        made.append(project)
        return ["-f", str(path), "-p", project]

    yield new
    for project in made:
        cli("-f", str(tmp_path / f"{project}.yaml"), "-p", project, "down", "-t", "0")


def containers(project: str):
    from composer.runtime import Runtime

    return [c for c in Runtime().list() if c.name.startswith(project + "-") or c.name.startswith(project + "_")]


def the_container(project: str):
    found = containers(project)
    assert len(found) == 1, found
    return found[0]


def cgroup_of(pid: int) -> str:
    """The unified (v2) path, or on v1 the memory hierarchy's."""
    lines = open(f"/proc/{pid}/cgroup").read().splitlines()
    for line in lines:
        hid, ctrls, path = line.split(":", 2)
        if (cg.default_driver().version == 2 and hid == "0") or "memory" in ctrls.split(","):
            return path
    raise AssertionError(lines)


def limits_of(pid: int) -> dict[str, str]:
    """The container's limits read back from its cgroup (v1: converted to v2's spelling)."""
    if cg.default_driver().version == 2:
        d = "/sys/fs/cgroup" + cgroup_of(pid)
        return {f: cg.read_file(os.path.join(d, f)) for f in LIMITS}
    own = {ctrl: path for _, ctrls, path in (ln.split(":", 2) for ln in open(f"/proc/{pid}/cgroup").read().splitlines())
           for ctrl in ctrls.split(",")}
    def v1(ctrl: str, f: str) -> str | None:
        return cg.read_file(f"/sys/fs/cgroup/{ctrl}{own[ctrl]}/{f}")
    return {"memory.max": v1("memory", "memory.limit_in_bytes"), "memory.low": v1("memory", "memory.soft_limit_in_bytes"),
            "pids.max": v1("pids", "pids.max"),
            "cpu.max": f"{v1('cpu', 'cpu.cfs_quota_us')} {v1('cpu', 'cpu.cfs_period_us')}",
            "cpu.weight": {"512": "20"}.get(v1("cpu", "cpu.shares") or "", "?")}


def expected_place(cid: str) -> str:
    if SYSTEMD:
        return f"/composer.slice/composer-{cid}.scope/container"
    return os.path.join(cgroup_of(os.getpid()), "composer", cid)  # below the starter's own cgroup (v1: memory's)


def composer(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "composer", *args], env=env, capture_output=True, text=True, timeout=timeout)


def systemctl(*args: str) -> str:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, check=True).stdout


def unit_props(unit: str, *names: str) -> dict[str, str]:
    out = systemctl("show", unit, "-p", ",".join(names))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def composer_units() -> list[str]:
    out = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "composer-*"],
                         capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_system_info_names_the_layout(cli):
    r = cli("system", "info", "--format", "json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    if SYSTEMD:
        assert info["manager"] == "systemd" and info["cgroup_version"] == "2"
        assert info["containers"] == "/sys/fs/cgroup/composer.slice/composer-<id>.scope/container"
        assert "Delegate=yes" in info["delegation"]
    else:
        assert info["manager"] == "cgroupfs"
        assert info["cgroup_version"] == str(cg.default_driver().version)
        assert "/composer/<id>" in info["containers"] and "composer.slice" not in info["containers"]
    forced = composer(dict(cli.env, COMPOSER_CGROUP_MANAGER="cgroupfs"), "system", "info", "--format", "json")
    assert json.loads(forced.stdout)["manager"] == "cgroupfs"


def test_container_cgroup_and_limits_where_the_layout_says(cli, stacks):
    args = stacks("cmpdeleg")
    r = cli(*args, "up", "-d", timeout=120)
    assert r.returncode == 0, r.stderr
    c = the_container("cmpdeleg")
    assert cgroup_of(c.pid) == expected_place(c.id)
    assert limits_of(c.pid) == LIMITS
    if not SYSTEMD:
        assert not os.path.exists("/sys/fs/cgroup/composer.slice")
        return
    unit = f"composer-{c.id}.scope"
    assert cgroup_of(c.monitor_pid) == f"/composer.slice/{unit}/supervisor"  # out of the caller's session
    props = unit_props(unit, "ActiveState", "Delegate", "Slice", "TasksMax", "CPUWeight", "MemoryLow")
    assert props == {"ActiveState": "active", "Delegate": "yes", "Slice": "composer.slice", "TasksMax": "infinity",
                     "CPUWeight": "20", "MemoryLow": "16777216"}
    # systemd re-applies its units' properties on both; below the delegated scope it writes nothing
    systemctl("daemon-reload")
    systemctl("set-property", "--runtime", "composer.slice", "CPUWeight=50", "MemoryMax=1G", "TasksMax=500")
    try:
        time.sleep(0.5)
        assert limits_of(c.pid) == LIMITS
        assert unit_props(unit, "CPUWeight", "MemoryLow") == {"CPUWeight": "20", "MemoryLow": "16777216"}
        assert cg.read_file(f"/sys/fs/cgroup/composer.slice/{unit}/memory.low") == "16777216"
    finally:
        systemctl("set-property", "--runtime", "composer.slice", "CPUWeight=", "MemoryMax=", "TasksMax=")


def test_same_place_and_limits_from_a_service_as_from_here(cli, stacks):
    """`up` from here (a login session or a service in the VM tier; this machine's shell) and from
    another context: a transient systemd service that ends right after `up -d` where systemd runs
    (it kills what is left in its cgroup: the launcher), a separate session elsewhere."""
    here, there = stacks("cmpdelhere"), stacks("cmpdelthere")
    r = cli(*here, "up", "-d", timeout=120)
    assert r.returncode == 0, r.stderr
    env = [f"{k}={v}" for k, v in cli.env.items() if k.startswith("COMPOSER_")]
    if SYSTEMD:
        argv = ["systemd-run", "--wait", "--pipe", "--collect", "--quiet", "-p", f"WorkingDirectory={os.getcwd()}",
                "env", *env, PYTHON, "-m", "composer", *there, "up", "-d"]
    else:
        argv = ["setsid", "env", *env, PYTHON, "-m", "composer", *there, "up", "-d"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    a, b = the_container("cmpdelhere"), the_container("cmpdelthere")
    assert cgroup_of(a.pid) == expected_place(a.id)
    assert cgroup_of(b.pid) == expected_place(b.id)
    assert limits_of(a.pid) == limits_of(b.pid) == LIMITS
    assert b.status == "running" and os.path.exists(f"/proc/{b.monitor_pid}")  # the service ended, the monitor lives


def test_survives_the_end_of_its_login_session(cli, stacks):
    """systemd: `loginctl terminate-session` kills every process of the session that ran `up -d`;
    elsewhere: SIGKILL to the whole session of the shell that ran it."""
    args = stacks("cmpdellogout")
    env = " ".join(f"{k}={v}" for k, v in cli.env.items() if k.startswith("COMPOSER_"))
    script = (f"cd {os.getcwd()} && env {env} {PYTHON} -m composer {' '.join(args)} up -d && "
              "echo up $(grep '^0::' /proc/self/cgroup) && exec sleep 600")
    if SYSTEMD:  # a session of its own: logind nests none in the test's (the VM tier's login phase)
        proc = subprocess.Popen(["systemd-run", "--pipe", "--wait", "--quiet", "--collect",
                                 "runuser", "-l", "root", "-c", script], stdout=subprocess.PIPE, text=True)
    else:
        proc = subprocess.Popen(["setsid", "sh", "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        assert line[:1] == ["up"], line
        c = the_container("cmpdellogout")
        if SYSTEMD:
            assert "/session-" in line[1], line
            session = line[1].rsplit("/session-", 1)[1].removesuffix(".scope")
            subprocess.run(["loginctl", "terminate-session", session], check=True)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    time.sleep(1)
    c2 = the_container("cmpdellogout")
    assert c2.status == "running" and c2.pid == c.pid and os.path.exists(f"/proc/{c.monitor_pid}")
    assert cgroup_of(c.pid) == expected_place(c.id)
    assert limits_of(c.pid) == LIMITS


def test_down_leaves_no_unit_and_reclaims_a_crashed_run(cli, stacks):
    args = stacks("cmpdeldown")
    assert cli(*args, "up", "-d", timeout=120).returncode == 0
    c = the_container("cmpdeldown")
    os.kill(c.monitor_pid, signal.SIGKILL)  # a crashed run: PID 1 and its cgroup (scope) stay
    time.sleep(0.5)
    assert os.path.exists(f"/proc/{c.pid}")
    r = cli(*args, "down", "-t", "0", timeout=120)
    assert r.returncode == 0, r.stderr
    assert not any(c.id in d for d in hostobjects.cgroups())
    if SYSTEMD:
        deadline = time.monotonic() + 5
        while any(c.id in u for u in composer_units()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(c.id in u for u in composer_units()), composer_units()


def test_start_latency_per_manager(cli, busybox_image):
    """Not a budget (the VM's timings mean little): the cost of the scope, printed for the report."""
    managers = ["systemd", "cgroupfs"] if SYSTEMD else ["cgroupfs"]
    for manager in managers:
        env = dict(cli.env, COMPOSER_CGROUP_MANAGER=manager)
        times = []
        for i in range(5):
            t = time.perf_counter()
            r = composer(env, "container", "run", "-d", "--network", "none", "--name", f"cmpdellat{i}", busybox_image,
                         "sleep", "60")
            times.append(time.perf_counter() - t)
            assert r.returncode == 0, r.stderr
            cid = r.stdout.strip()
            place = cgroup_of(the_container_pid(cid))
            assert ("composer.slice" in place) == (manager == "systemd"), place
            assert composer(env, "container", "rm", "-f", cid).returncode == 0
        times.sort()
        print(f"container run -d with {manager}: median {times[2] * 1000:.0f} ms, min {times[0] * 1000:.0f} ms")


def the_container_pid(cid: str) -> int:
    from composer.runtime import Runtime

    return next(c.pid for c in Runtime().list() if c.id.startswith(cid))
