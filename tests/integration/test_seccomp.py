"""Seccomp on a real kernel: docker's default filter on PID 1 and on exec'd processes, absent with
seccomp=unconfined or privileged, syscalls checked from inside the container (busybox applets, and the
test's own Python interpreter bind-mounted in to call keyctl, bpf, clone3 ... by number)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from composer.errors import ContainerError, NotFoundError
from composer.runtime.spec import Mount, Ulimit
from tests import hostobjects

pytestmark = pytest.mark.root

STATUS = "grep Seccomp: /proc/self/status"
# Allowed by the kernel to a process without capabilities, refused by docker's default filter.
PROBE = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return 0 if r >= 0 else ctypes.get_errno()
print("keyctl", call(250, 0, -3, 0))       # KEYCTL_GET_KEYRING_ID session
print("add_key", call(248, 0, 0, 0, 0, 0))
print("unshare_user", call(272, 0x10000000))
print("clone3", call(435, 0, 0))
print("personality", call(135, 0x0040000))  # ADDR_NO_RANDOMIZE
print("getpid", call(39))
print("ptrace", call(101, 3, 999999, 0, 0))  # PEEKUSER of no process: ESRCH when allowed
"""


def _run(runtime, spec):
    runtime.create(spec)
    runtime.start(spec.id)
    info = runtime.wait(spec.id, timeout=30)
    logs = list(runtime.logs(spec.id))
    return (info, "".join(r.line for r in logs if r.stream == "stdout"),
            "".join(r.line for r in logs if r.stream == "stderr"))


def interpreter_mounts(prefix: str, exe: str) -> list[tuple[str, str]]:
    """What the interpreter needs beyond /usr/lib: its prefix (a pyenv or /usr/local build), or, for a
    distribution's /usr/bin/python3 (prefix /usr), the binary alone: mounting all of /usr would
    shadow busybox's applets with the host's util-linux."""
    prefix = os.path.normpath(prefix)
    if prefix in ("/usr", "/"):
        return [(exe, exe)]
    if prefix == "/usr/lib" or prefix.startswith("/usr/lib/"):
        return []
    return [(prefix, prefix)] + ([] if exe.startswith(prefix + "/") else [(exe, exe)])


def test_interpreter_mounts_never_cover_usr():
    assert interpreter_mounts("/usr", "/usr/bin/python3.11") == [("/usr/bin/python3.11", "/usr/bin/python3.11")]
    assert interpreter_mounts("/usr/local", "/usr/local/bin/python3.11") == [("/usr/local", "/usr/local")]
    assert interpreter_mounts("/root/.pyenv/versions/3.11.7", "/root/.pyenv/versions/3.11.7/bin/python3.11") == [
        ("/root/.pyenv/versions/3.11.7", "/root/.pyenv/versions/3.11.7")]


def _python_mounts() -> tuple[tuple[Mount, ...], str]:
    """The test's interpreter and the host's libraries, read-only at the same paths."""
    if not sys.platform.startswith("linux") or os.uname().machine != "x86_64":
        pytest.fail("the syscall numbers in PROBE are x86_64's")
    exe = os.path.realpath(sys.executable)
    pairs = [("/usr/lib", "/usr/lib"), ("/usr/lib", "/lib"), ("/usr/lib64", "/lib64")]
    pairs += interpreter_mounts(sys.base_prefix, exe)
    mounts = tuple(Mount(target=dst, source=os.path.realpath(src), read_only=True)
                   for src, dst in pairs if os.path.exists(src))
    return mounts, exe


def test_default_filter_blocks_what_docker_blocks(runtime, make_spec):
    mounts, exe = _python_mounts()
    spec = make_spec("sh", "-c", f"{STATUS}; {exe} -S -c '{PROBE}'; "
                     "unshare -n true || echo UNSHARE_FAILED; mkdir -p /mnt; mount -t tmpfs x /mnt || echo MOUNT_FAILED; "
                     "nsenter -t 1 -n true || echo NSENTER_FAILED; echo DONE", mounts=mounts)
    info, out, err = _run(runtime, spec)
    assert info.exit_code == 0, err
    assert "Seccomp:\t2" in out, (out, err)
    got = dict(line.split() for line in out.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit())
    assert got.get("keyctl") == "1" and got["add_key"] == "1", (out, err)  # EPERM
    assert got["unshare_user"] == "1"
    assert got["clone3"] == "38"  # ENOSYS: libc falls back to clone
    assert got["personality"] == "1"
    assert got["getpid"] == "0"
    assert got["ptrace"] != "1"  # docker allows ptrace (kernel >= 4.8)
    for word in ("UNSHARE_FAILED", "MOUNT_FAILED", "NSENTER_FAILED", "DONE"):
        assert word in out
    assert "unshare(0x40000000): Operation not permitted" in err and "mount: permission denied" in err


def test_unconfined_has_no_filter(runtime, make_spec):
    mounts, exe = _python_mounts()
    info, out, err = _run(runtime, make_spec("sh", "-c", f"{STATUS}; {exe} -S -c '{PROBE}'", mounts=mounts,
                                             seccomp="unconfined"))
    assert info.exit_code == 0, err
    assert "Seccomp:\t0" in out
    got = dict(line.split() for line in out.splitlines() if line.split()[0] in ("keyctl", "unshare_user", "clone3"))
    assert got["unshare_user"] == "0"  # the kernel allows an unprivileged user namespace
    assert got["clone3"] != "38"


@pytest.mark.parametrize("nnp", [False, True])
def test_filter_with_user_and_no_new_privileges(runtime, make_spec, nnp):
    info, out, err = _run(runtime, make_spec("sh", "-c", f"{STATUS}; grep NoNewPrivs /proc/self/status; id -u",
                                             user="nobody", no_new_privileges=nnp))
    assert info.exit_code == 0, err
    assert "Seccomp:\t2" in out
    assert f"NoNewPrivs:\t{int(nnp)}" in out
    assert out.strip().endswith("65534")


def test_cap_sys_admin_opens_mount(runtime, make_spec):
    info, out, err = _run(runtime, make_spec("sh", "-c", f"{STATUS}; mkdir -p /mnt; mount -t tmpfs x /mnt && echo MOUNTED",
                                             cap_add=("SYS_ADMIN",)))
    assert info.exit_code == 0, err
    assert "Seccomp:\t2" in out and "MOUNTED" in out


def test_init_mode_is_filtered_too(runtime, make_spec):
    info, out, err = _run(runtime, make_spec("sh", "-c", "grep Seccomp: /proc/1/status /proc/self/status",
                                             init=True))
    assert info.exit_code == 0, err
    assert out.count("Seccomp:\t2") == 2


def test_exec_gets_filter_and_ulimits(runtime, make_spec, capfd):
    spec = make_spec("sleep", "30", ulimits=(Ulimit("nofile", 100, 200),))
    runtime.run(spec)
    assert runtime.exec(spec.id, ["sh", "-c", f"{STATUS}; ulimit -n; ulimit -Hn"]) == 0
    assert runtime.exec(spec.id, ["sh", "-c", "unshare -n true"]) != 0
    out = capfd.readouterr().out
    assert "Seccomp:\t2\n100\n200\n" in out
    loose = make_spec("sleep", "30", seccomp="unconfined")
    runtime.run(loose)
    assert runtime.exec(loose.id, ["sh", "-c", STATUS]) == 0
    assert "Seccomp:\t0" in capfd.readouterr().out


def test_custom_profile(runtime, make_spec, tmp_path):
    from composer.runtime.security import seccomp_profile

    (tmp_path / "p.json").write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}))
    text = seccomp_profile.load_option("p.json", str(tmp_path))
    info, out, err = _run(runtime, make_spec("sh", "-c", f"{STATUS}; mkdir /tmp/x || echo MKDIR_FAILED",
                                             seccomp=text))
    assert info.exit_code == 0, err
    assert "Seccomp:\t2" in out and "MKDIR_FAILED" in out
    assert "Permission denied" in err


def test_unbuildable_profile_fails_start_with_125(runtime, make_spec):
    # more argument rules than the kernel's 4096 instructions: refused before anything runs
    many = [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": i}, {"index": 1, "op": "SCMP_CMP_EQ", "value": i}]}
            for i in range(600)]
    spec = make_spec("true", seccomp=json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": many}))
    with pytest.raises(ContainerError) as err:
        runtime.run(spec)
    assert err.value.exit_code == 125
    assert "seccomp" in str(err.value)
    with pytest.raises(NotFoundError):
        runtime.get(spec.id)
    assert not any(spec.id in c for c in hostobjects.cgroups())
