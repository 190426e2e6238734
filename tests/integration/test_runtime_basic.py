"""The runtime on a real kernel: exit codes, output, environment, user, confinement checked from
inside the container, limits, and cleanup. Runs as root (namespaces, cgroups, overlay)."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from composer.errors import ConflictError, ContainerError, NotFoundError
from composer.runtime.spec import Mount, Resources
from tests import hostobjects

pytestmark = pytest.mark.root


def run_to_end(runtime, spec):
    runtime.create(spec)
    runtime.start(spec.id)
    info = runtime.wait(spec.id, timeout=30)
    logs = list(runtime.logs(spec.id))
    out = "".join(r.line for r in logs if r.stream == "stdout")
    err = "".join(r.line for r in logs if r.stream == "stderr")
    return info, out, err


@pytest.mark.parametrize("script,code", [("true", 0), ("exit 3", 3)])
def test_exit_codes(runtime, make_spec, script, code):
    info, _, _ = run_to_end(runtime, make_spec("sh", "-c", script))
    assert info.status == "exited"
    assert info.exit_code == code


def test_command_not_found_is_127_and_leaves_nothing(runtime, make_spec):
    spec = make_spec("no-such-command")
    with pytest.raises(ContainerError) as err:
        runtime.run(spec)
    assert err.value.exit_code == 127
    assert "executable file not found" in str(err.value)
    with pytest.raises(NotFoundError):
        runtime.get(spec.id)
    assert not os.path.exists(runtime.paths(spec.id).data)
    assert not any(spec.id in c for c in hostobjects.cgroups())


def test_sigkill_is_137(runtime, make_spec):
    spec = make_spec("sleep", "60")
    runtime.run(spec)
    assert runtime.get(spec.id).status == "running"
    runtime.kill(spec.id, signal.SIGKILL)
    info = runtime.wait(spec.id, timeout=10)
    assert info.exit_code == 137


def test_output_streams_and_env_cwd_user_hostname(runtime, make_spec):
    spec = make_spec("sh", "-c", 'echo "$FOO $HOSTNAME"; pwd; id -u; id -g; hostname; echo oops >&2',
                     env=(("PATH", "/bin:/usr/bin"), ("FOO", "bar")), cwd="/tmp/work", user="65534:65534",
                     hostname="myhost")
    info, out, err = run_to_end(runtime, spec)
    assert info.exit_code == 0, err
    assert out.splitlines() == ["bar myhost", "/tmp/work", "65534", "65534", "myhost"]
    assert err == "oops\n"


def test_unknown_user_is_an_error(runtime, make_spec):
    spec = make_spec("true", user="nosuchuser")
    with pytest.raises(ContainerError, match="unable to find user nosuchuser"):
        runtime.run(spec)
    with pytest.raises(NotFoundError):
        runtime.get(spec.id)


CONFINEMENT = r"""
grep -E '^Cap(Eff|Bnd)' /proc/self/status
mount -t tmpfs none /mnt 2>/dev/null && echo MOUNT_OK || echo MOUNT_FAILED
hostname evil 2>/dev/null && echo HOSTNAME_OK || echo HOSTNAME_FAILED
dmesg >/dev/null 2>&1 && echo DMESG_OK || echo DMESG_FAILED
(echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo SYSCTL_OK || echo SYSCTL_FAILED
(echo b > /proc/sysrq-trigger) 2>/dev/null && echo SYSRQ_OK || echo SYSRQ_FAILED
for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do [ -e $f ] && echo "MASKED $f $(cat $f | wc -c)"; done
ls /sys/firmware | wc -l | sed 's/^/FIRMWARE /' 
mkdir /sys/fs/cgroup/x 2>/dev/null && echo CGROUP_OK || echo CGROUP_FAILED
(echo 1 > /sys/kernel/profiling) 2>/dev/null && echo SYS_OK || echo SYS_FAILED
ls /dev | tr '\n' ' '; echo
"""

FORBIDDEN = {"SYS_ADMIN": 21, "NET_ADMIN": 12, "SYS_TIME": 25, "SYS_MODULE": 16, "SYS_PTRACE": 19,
             "DAC_READ_SEARCH": 2, "SYS_RAWIO": 17, "SYSLOG": 34}


def test_only_fds_0_1_2_reach_the_command(runtime, make_spec):
    leak = os.open("/etc/hostname", os.O_RDONLY)  # inheritable: must still not leak in
    os.set_inheritable(leak, True)
    try:
        info = runtime.run(make_spec("sleep", "30"))
    finally:
        os.close(leak)
    assert sorted(os.listdir(f"/proc/{info.pid}/fd")) == ["0", "1", "2"]


def test_confinement_from_inside(runtime, make_spec):
    info, out, err = run_to_end(runtime, make_spec("sh", "-c", CONFINEMENT))
    assert info.exit_code == 0, err
    lines = out.splitlines()
    for line in lines[:2]:
        mask = int(line.split()[1], 16)
        for name, bit in FORBIDDEN.items():
            assert not mask & (1 << bit), f"{line.split(':')[0]} has {name}"
        assert mask & (1 << 0)  # CHOWN is in docker's default set
    for word in ("MOUNT", "HOSTNAME", "DMESG", "SYSCTL", "SYSRQ", "CGROUP", "SYS"):
        assert f"{word}_FAILED" in lines, out
    masked = [line.split() for line in lines if line.startswith("MASKED")]
    assert masked, out  # this kernel has at least /proc/keys or /proc/timer_list
    assert all(m[2] == "0" for m in masked), out
    assert "FIRMWARE 0" in lines, out
    devs = lines[-1].split()
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd", "stdin"} <= set(devs)
    assert not {"sda", "mem", "kmsg", "vda"} & set(devs)


def test_hostname_and_hosts_files(runtime, make_spec):
    spec = make_spec("sh", "-c", "cat /etc/hostname; grep -c localhost /etc/hosts; cat /etc/resolv.conf",
                     hostname="box1", hosts=(("10.9.9.9", ("peer", "peer-alias")),))
    info, out, _ = run_to_end(runtime, spec)
    assert out.splitlines()[0] == "box1"
    assert "nameserver" in out


def test_set_hosts_rewrites_in_place(runtime, make_spec):
    spec = make_spec("sleep", "30")
    runtime.run(spec)
    runtime.set_hosts(spec.id, [("10.1.2.3", ("newpeer",))])
    code = runtime.exec(spec.id, ["grep", "-q", "newpeer", "/etc/hosts"])
    assert code == 0


def test_bind_mount_ro_and_rw(runtime, make_spec, tmp_path):
    (tmp_path / "in.txt").write_text("hello\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    spec = make_spec("sh", "-c", "cat /data/in.txt; touch /data/x 2>/dev/null || echo RO; echo w > /out/f",
                     mounts=(Mount("/data", "bind", str(tmp_path), read_only=True), Mount("/out", "bind", str(out_dir))))
    info, out, err = run_to_end(runtime, spec)
    assert info.exit_code == 0, err
    assert out.splitlines() == ["hello", "RO"]
    assert (out_dir / "f").read_text() == "w\n"


def test_missing_bind_source_leaves_nothing(runtime, make_spec):
    spec = make_spec("true", mounts=(Mount("/data", "bind", "/nonexistent/composer-test"),))
    with pytest.raises(ContainerError, match="bind source path does not exist"):
        runtime.create(spec)
    assert not os.path.exists(runtime.paths(spec.id).data)


def test_oom_kill_is_reported(runtime, make_spec):
    spec = make_spec("sh", "-c", "head -c 200m /dev/zero | tail > /dev/null", name="hog",
                     resources=Resources(memory=32 << 20, memory_swap=32 << 20))
    info, _, _ = run_to_end(runtime, spec)
    assert info.exit_code == 137
    assert info.oom_killed
    assert info.error == "container hog was killed: out of memory (limit 32 MiB)"


def test_pids_limit(runtime, make_spec):
    from composer.runtime.cgroups import base as cgroups

    spec = make_spec("sleep", "60", resources=Resources(pids=10))
    runtime.run(spec)
    code = runtime.exec(spec.id, ["sh", "-c", "for i in $(seq 1 15); do sleep 30 & done; echo ALL"])
    assert code != 0  # the shell could not fork all 15
    state = json.load(open(os.path.join(runtime.paths(spec.id).state, "state.json")))
    paths = cgroups.CgroupPaths.from_dict(state["cgroup"])
    assert 2 <= len(cgroups.driver_for(paths).pids(paths)) <= 10


def test_stop_uses_grace_then_sigkill(runtime, make_spec):
    spec = make_spec("sleep", "60", stop_timeout=0.5)  # sleep as PID 1 ignores SIGTERM
    runtime.run(spec)
    t = time.monotonic()
    info = runtime.stop(spec.id)
    assert 0.4 < time.monotonic() - t < 5
    assert info.status == "exited"
    assert info.exit_code == 137


def test_init_forwards_sigterm(runtime, make_spec):
    spec = make_spec("sleep", "60", init=True)
    runtime.run(spec)
    t = time.monotonic()
    info = runtime.stop(spec.id, timeout=10)
    assert time.monotonic() - t < 5
    assert info.exit_code == 143


def test_exec_and_user(runtime, make_spec, capfd):
    spec = make_spec("sleep", "30")
    runtime.run(spec)
    assert runtime.exec(spec.id, ["sh", "-c", "exit 5"]) == 5
    assert runtime.exec(spec.id, ["no-such"]) == 127
    assert runtime.exec(spec.id, ["sh", "-c", "id -u; echo $X; pwd"], env=[("X", "y")], user="nobody", cwd="/tmp") == 0
    out = capfd.readouterr().out
    assert "65534\ny\n/tmp\n" in out


def test_pause_unpause(runtime, make_spec):
    spec = make_spec("sleep", "30")
    runtime.run(spec)
    runtime.pause(spec.id)
    assert runtime.get(spec.id).status == "paused"
    runtime.unpause(spec.id)
    assert runtime.get(spec.id).status == "running"


def test_name_conflict_and_remove_running(runtime, make_spec):
    a = make_spec("sleep", "30", name="dup")
    runtime.run(a)
    with pytest.raises(ConflictError):
        runtime.create(make_spec("true", name="dup"))
    with pytest.raises(ConflictError):
        runtime.remove("dup")
    runtime.remove("dup", force=True)
    with pytest.raises(NotFoundError):
        runtime.get("dup")


def test_kill_9_monitor_then_rm_cleans_everything(runtime, make_spec):
    before = hostobjects.snapshot()
    spec = make_spec("sleep", "60", resources=Resources(memory=64 << 20))
    runtime.run(spec)
    state = json.load(open(os.path.join(runtime.paths(spec.id).state, "state.json")))
    os.kill(state["monitor_pid"], signal.SIGKILL)
    time.sleep(0.1)
    assert runtime.get(spec.id).status == "running"  # PID 1 lives on without its monitor
    runtime.remove(spec.id, force=True)
    assert not os.path.exists(f"/proc/{state['pid']}") or open(f"/proc/{state['pid']}/stat").read().split()[2] == "Z"
    assert hostobjects.leaked(before) == {}
    assert not os.path.exists(runtime.paths(spec.id).data)
    assert not os.path.exists(runtime.paths(spec.id).state)


def test_rm_leaves_no_host_objects(runtime, make_spec):
    before = hostobjects.snapshot()
    spec = make_spec("sleep", "30", resources=Resources(memory=64 << 20, pids=50, cpus=0.5))
    runtime.run(spec)
    assert any(spec.id in c for c in hostobjects.cgroups())
    runtime.remove(spec.id, force=True)
    assert hostobjects.leaked(before) == {}
    assert runtime.list(all=True) == [] or spec.id not in [i.id for i in runtime.list(all=True)]


def test_monitor_name_and_survives_state(runtime, make_spec):
    spec = make_spec("sleep", "30")
    info = runtime.run(spec)
    assert open(f"/proc/{info.monitor_pid}/comm").read().strip() == f"cmp-mon-{spec.id[:7]}"
