"""The monitor's own work, after the starter has gone: restart policies with docker's backoff,
healthchecks inside the container's namespaces, json-file log rotation."""

from __future__ import annotations

import os
import time

import pytest

from composer.runtime.container import state as st
from composer.runtime.spec import Healthcheck, LogConfig, RestartPolicy
from tests.integration import cgroup_drivers

pytestmark = pytest.mark.root


def wait_for(cond, timeout: float = 10.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def test_restart_always_runs_again_with_a_new_pid_and_stop_is_final(runtime, make_spec):
    spec = make_spec("sh", "-c", "echo run; sleep 0.3; exit 3", restart=RestartPolicy("always"))
    info = runtime.run(spec)
    first = info.pid
    again = wait_for(lambda: (i := runtime.get(spec.id)).restart_count >= 2 and i.status == "running" and i)
    assert again.pid != first
    logs = [r.line for r in runtime.logs(spec.id)]
    assert logs.count("run\n") >= 2  # one log across runs
    stopped = runtime.stop(spec.id, timeout=1)
    assert stopped.status == "exited"
    time.sleep(1.0)  # longer than any backoff so far: nothing comes back
    after = runtime.get(spec.id)
    assert after.status == "exited" and after.monitor_pid is None


def test_on_failure_counts_retries_and_ignores_success(runtime, make_spec):
    failing = make_spec("sh", "-c", "exit 4", restart=RestartPolicy("on-failure", 2))
    runtime.run(failing)
    final = wait_for(lambda: (i := runtime.get(failing.id)).status == "exited" and i.monitor_pid is None and i)
    assert final.restart_count == 2 and final.exit_code == 4
    ok = make_spec("true", restart=RestartPolicy("on-failure"))
    runtime.run(ok)
    done = wait_for(lambda: (i := runtime.get(ok.id)).status == "exited" and i.monitor_pid is None and i)
    assert done.restart_count == 0 and done.exit_code == 0


def test_restarted_container_keeps_its_network_and_cgroup(runtime, make_spec):
    spec = make_spec("sh", "-c", "ip -4 -o addr show eth0; cat /proc/self/cgroup | grep -c composer; sleep 0.3",
                     network_mode="bridge", restart=RestartPolicy("always"))
    runtime.run(spec)
    wait_for(lambda: runtime.get(spec.id).restart_count >= 1, 10)
    time.sleep(0.4)
    lines = [r.line for r in runtime.logs(spec.id) if "inet" in r.line]
    assert len(lines) >= 2 and len(set(line.split()[3] for line in lines)) == 1  # same address each run
    runtime.stop(spec.id, timeout=1)


def test_backoff_keeps_a_crash_loop_cheap(runtime, make_spec):
    spec = make_spec("false", restart=RestartPolicy("always"))
    runtime.run(spec)
    time.sleep(3.0)
    info = runtime.get(spec.id)
    # 100 ms doubling: 0.1+0.2+0.4+0.8+1.6 -> about 5 restarts in 3 s, never hundreds
    assert 3 <= info.restart_count <= 7, info.restart_count
    assert info.status in ("restarting", "running", "exited")
    runtime.stop(spec.id, timeout=1)
    assert runtime.get(spec.id).status == "exited"


def test_healthcheck_turns_healthy_then_unhealthy(runtime, make_spec, tmp_path):
    spec = make_spec("sh", "-c", "touch /tmp/ok; sleep 60",
                     healthcheck=Healthcheck(test=("sh", "-c", "echo probing; test -e /tmp/ok"), interval=0.2,
                                             timeout=2, retries=2))
    runtime.run(spec)
    info = wait_for(lambda: (i := runtime.get(spec.id)).health == "healthy" and i)
    assert info.health_log and info.health_log[-1]["ExitCode"] == 0 and "probing" in info.health_log[-1]["Output"]
    assert runtime.exec(spec.id, ["rm", "/tmp/ok"]) == 0
    info = wait_for(lambda: (i := runtime.get(spec.id)).health == "unhealthy" and i)
    assert info.health_log[-1]["ExitCode"] == 1


def test_healthcheck_timeout_and_start_period(runtime, make_spec):
    spec = make_spec("sleep", "60", healthcheck=Healthcheck(test=("sleep", "5"), interval=0.2, timeout=0.3,
                                                            retries=1, start_period=1.0, start_interval=0.2))
    runtime.run(spec)
    time.sleep(0.8)
    assert runtime.get(spec.id).health == "starting"  # failures in the start period do not count
    info = wait_for(lambda: (i := runtime.get(spec.id)).health == "unhealthy" and i, 5)
    assert info.health_log[-1]["ExitCode"] == -1 and "exceeded timeout" in info.health_log[-1]["Output"]
    runtime.remove(spec.id, force=True)
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p) == "sleep\x005\x00"]


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:
        return ""


def test_log_rotation_keeps_max_file_and_logs_reads_across(runtime, make_spec):
    spec = make_spec("sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done",
                     log=LogConfig(max_size=4096, max_file=3))
    runtime.run(spec)
    wait_for(lambda: runtime.get(spec.id).status == "exited" and runtime.get(spec.id).monitor_pid is None)
    log = runtime.paths(spec.id).log
    assert os.path.exists(log + ".1") and os.path.exists(log + ".2") and not os.path.exists(log + ".3")
    assert all(os.path.getsize(p) <= 4096 for p in (log, log + ".1", log + ".2"))
    lines = [r.line for r in runtime.logs(spec.id)]
    assert lines[-1] == "line-399\n"
    numbers = [int(x.strip().split("-")[1]) for x in lines]
    assert numbers == sorted(numbers) and numbers == list(range(numbers[0], 400))


def test_state_says_restarting_during_backoff(runtime, make_spec):
    spec = make_spec("false", restart=RestartPolicy("always"))
    runtime.run(spec)
    seen = wait_for(lambda: runtime.get(spec.id).status == "restarting", 5, 0.01)
    assert seen
    s = st.read(runtime.paths(spec.id).state)
    assert s.get("restarting") is True
    runtime.remove(spec.id, force=True)


@pytest.mark.parametrize("kind", cgroup_drivers.kinds())
def test_starter_killed_before_go_leaves_no_process(runtime, make_spec, tmp_path, kind, monkeypatch):
    """kill -9 of the CLI in the middle of the start handshake: PID 1 never runs, and neither it nor
    the monitor waits forever (PID 1 used to hold its own end of the sync pipe). With each cgroup
    driver this host has (the v2 driver overrides attach)."""
    import subprocess
    import sys

    from composer.runtime.cgroups import base as cgroups

    monkeypatch.setattr(cgroups, "_DEFAULT", cgroup_drivers.make(kind))  # remove finds its cgroup
    spec = make_spec("sleep", "60")
    runtime.create(spec)
    script = tmp_path / "die.py"
    script.write_text(
        "import os, sys\n"
        "from composer.runtime import Runtime\n"
        "from composer.runtime.cgroups import base as cgroups\n"
        "from tests.integration import cgroup_drivers\n"
        "cgroup_drivers.use_for_runtime(sys.argv[4])\n"
        "type(cgroups.default_driver()).attach = lambda *a: os._exit(9)  # dies right after the monitor's hello\n"
        "Runtime(sys.argv[1], sys.argv[2]).start(sys.argv[3])\n")
    proc = subprocess.run([sys.executable, str(script), runtime.state_dir, runtime.data_dir, spec.id, kind],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 9, proc.stderr

    def ours() -> list[int]:
        out = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        if f.read().strip() == "cmp-mon-" + spec.id[:7]:
                            with open(f"/proc/{pid}/stat") as g:
                                if g.read().rsplit(")", 1)[1].split()[0] != "Z":
                                    out.append(int(pid))
                except OSError:
                    pass
        return out

    wait_for(lambda: not ours(), 5)
    runtime.remove(spec.id, force=True)


def test_privileged_gets_what_the_host_grants(runtime, make_spec):
    """privileged: every capability this host lets composer have (a sandbox may withhold some),
    no seccomp filter, and mounting works; asking for a withheld one by name is a clear error."""
    from composer.errors import ContainerError
    from composer.runtime.security import caps

    spec = make_spec("sh", "-c", "grep -E 'CapEff|Seccomp:' /proc/self/status; mkdir -p /tmp/m; mount -t tmpfs x /tmp/m && echo mounted",
                     privileged=True)
    info = runtime.run(spec)
    runtime.wait(info.id, 10)
    out = "".join(r.line for r in runtime.logs(spec.id))
    assert "mounted" in out and "Seccomp:\t0" in out, out
    eff = int(out.split("CapEff:")[1].split()[0], 16)
    assert eff == caps.resolve(privileged=True)
    missing = [n for i, n in enumerate(caps.NAMES) if i <= caps.last_cap() and not caps.available() & (1 << i)]
    if missing:
        with pytest.raises(ContainerError, match=f"cannot add capability {missing[0]}"):
            runtime.create(make_spec("true", cap_add=(missing[0],)))


def test_idle_monitor_is_cmp_pump_and_comes_back_for_probes(runtime, make_spec):
    """Once probes are >= 5 s apart the monitor execs cmp-pump (same pid), which hands back to the
    Python monitor when the next probe is due; the probe's result lands in the state as before."""
    from composer.runtime.monitor import handoff

    assert handoff.PUMP is not None, "cmp-pump is not built: ./dev setup compiles it"
    spec = make_spec("sh", "-c", "echo hello; sleep 60",
                     healthcheck=Healthcheck(test=("true",), interval=5.5, timeout=2, retries=1, start_period=1.0,
                                             start_interval=0.2))
    info = runtime.run(spec)
    wait_for(lambda: runtime.get(spec.id).health == "healthy", 5)
    exe = lambda: os.readlink(f"/proc/{info.monitor_pid}/exe")  # noqa: E731
    wait_for(lambda: exe() == os.path.realpath(handoff.PUMP), 5)
    probes = len(runtime.get(spec.id).health_log)
    wait_for(lambda: len(runtime.get(spec.id).health_log) > probes, 10)  # the pump woke the monitor
    wait_for(lambda: exe() == os.path.realpath(handoff.PUMP), 5)  # and it went back to sleep
    assert runtime.get(spec.id).monitor_pid == info.monitor_pid
    assert [r.line for r in runtime.logs(spec.id)] == ["hello\n"]
    runtime.stop(spec.id, timeout=1)
    assert runtime.get(spec.id).exit_code == 137 or runtime.get(spec.id).status == "exited"
