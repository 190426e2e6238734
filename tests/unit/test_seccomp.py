"""The seccomp BPF builder: programs are decoded and run in a tiny classic-BPF interpreter here, so
every decision (arch, x32, syscall ranges, 64-bit argument checks, capabilities) is checked without
installing anything."""

from __future__ import annotations

import json
import struct
import time

import pytest

from composer.runtime.security import caps
from composer.runtime.security import seccomp_bpf as bpf
from composer.runtime.security import seccomp_profile as sp
from composer.runtime.security.seccomp_tables import table

X86 = table("x86_64")
ARM = table("aarch64")
EPERM = bpf.RET_ERRNO | 1
ENOSYS = bpf.RET_ERRNO | 38
CLONE_NEWNET, CLONE_NEWUSER, SIGCHLD = 0x40000000, 0x10000000, 17
THREAD_FLAGS = 0x3D0F00  # CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID


def run(program: bytes, nr: int, args=(0,) * 6, arch: str = "x86_64", audit: int | None = None) -> int:
    """Execute a seccomp program on one struct seccomp_data; checks every jump stays inside."""
    prog = bpf.decode(program)
    data = struct.pack("<iIQ6Q", nr if nr < 2 ** 31 else nr - 2 ** 32,
                       audit if audit is not None else bpf.AUDIT_ARCH[arch], 0, *(list(args) + [0] * 6)[:6])
    a, pc = 0, 0
    while True:
        assert 0 <= pc < len(prog), "jump out of the program"
        code, jt, jf, k = prog[pc]
        if code == bpf.LD_W_ABS:
            a = struct.unpack_from("<I", data, k)[0]
        elif code == bpf.ALU_AND_K:
            a &= k
        elif code == bpf.RET_K:
            return k
        elif code == bpf.JMP_JA:
            pc += k
        elif code in (bpf.JMP_JEQ, bpf.JMP_JGT, bpf.JMP_JGE):
            hit = a == k if code == bpf.JMP_JEQ else a > k if code == bpf.JMP_JGT else a >= k
            pc += jt if hit else jf
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1


@pytest.fixture(scope="module")
def default():
    return sp.program("", caps.resolve(), "x86_64")


def test_structure_and_size(default):
    prog = bpf.decode(default)
    assert 50 < len(prog) < 400
    assert prog[0] == (bpf.LD_W_ABS, 0, 0, 4)  # arch first
    for i, (code, jt, jf, k) in enumerate(prog):  # every jump lands inside
        if code in (bpf.JMP_JEQ, bpf.JMP_JGT, bpf.JMP_JGE):
            assert i + 1 + max(jt, jf) < len(prog)
        if code == bpf.JMP_JA:
            assert i + 1 + k < len(prog)
    assert prog[-1][0] == bpf.RET_K


@pytest.mark.parametrize("name", [
    "mount", "umount2", "unshare", "setns", "bpf", "keyctl", "add_key", "request_key", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "acct",
    "clock_settime", "settimeofday", "iopl", "ioperm", "kcmp", "lookup_dcookie",
    "open_by_handle_at", "perf_event_open", "pivot_root", "quotactl", "syslog", "userfaultfd", "uselib",
    "ustat", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "create_module",
    "get_kernel_syms", "nfsservctl", "sethostname", "vhangup", "mbind", "pidfd_getfd",
])
def test_blocked_with_default_caps(default, name):
    assert run(default, X86[name]) == EPERM


@pytest.mark.parametrize("name", [
    "read", "write", "openat", "execve", "exit_group", "mmap", "futex", "rt_sigaction", "capset", "setuid",
    "prctl", "chdir", "close_range", "ptrace", "process_vm_readv", "arch_prctl", "name_to_handle_at",
    "chroot", "io_uring_setup", "seccomp", "clock_adjtime", "wait4", "rseq", "statx", "fork", "vfork",
])
def test_allowed_with_default_caps(default, name):
    assert run(default, X86[name]) == bpf.RET_ALLOW


def test_argument_rules(default):
    clone = X86["clone"]
    assert run(default, clone, (SIGCHLD,)) == bpf.RET_ALLOW
    assert run(default, clone, (THREAD_FLAGS,)) == bpf.RET_ALLOW
    assert run(default, clone, (SIGCHLD | CLONE_NEWNET,)) == EPERM
    assert run(default, clone, (SIGCHLD | CLONE_NEWUSER,)) == EPERM
    assert run(default, clone, (SIGCHLD | (1 << 40),)) == bpf.RET_ALLOW  # high word is not masked
    assert run(default, X86["clone3"]) == ENOSYS  # libc falls back to clone
    pers = X86["personality"]
    for ok in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert run(default, pers, (ok,)) == bpf.RET_ALLOW
    assert run(default, pers, (0x0040000,)) == EPERM  # ADDR_NO_RANDOMIZE
    assert run(default, pers, (0xFFFFFFFF | 1 << 32,)) == EPERM  # 64-bit compare, not 32
    assert run(default, X86["socket"], (2, 1, 0)) == bpf.RET_ALLOW
    assert run(default, X86["socket"], (40, 1, 0)) == EPERM  # AF_VSOCK


def test_arch_and_x32(default):
    assert run(default, X86["read"], audit=0x40000003) == bpf.RET_KILL_PROCESS  # i386
    assert run(default, X86["read"], audit=bpf.AUDIT_ARCH["aarch64"]) == bpf.RET_KILL_PROCESS
    assert run(default, 0x40000000 | X86["read"]) == bpf.RET_KILL_PROCESS  # x32 ABI
    assert run(default, 0xFFFFFFFF) == EPERM  # -1: no syscall, not x32
    assert run(default, 5000) == EPERM  # unknown numbers: docker's default action
    assert run(default, 0x3FFFFFFF) == EPERM


def test_capabilities_open_the_gates():
    admin = sp.program("", caps.resolve(cap_add=("SYS_ADMIN",)), "x86_64")
    assert run(admin, X86["mount"]) == bpf.RET_ALLOW
    assert run(admin, X86["unshare"]) == bpf.RET_ALLOW
    assert run(admin, X86["clone"], (CLONE_NEWNET,)) == bpf.RET_ALLOW
    assert run(admin, X86["clone3"]) == bpf.RET_ALLOW
    assert run(admin, X86["keyctl"]) == EPERM  # no capability opens keyctl
    more = sp.program("", caps.resolve(cap_add=("SYS_TIME", "SYS_PTRACE", "SYS_MODULE")), "x86_64")
    assert run(more, X86["settimeofday"]) == bpf.RET_ALLOW
    assert run(more, X86["kcmp"]) == bpf.RET_ALLOW
    assert run(more, X86["finit_module"]) == bpf.RET_ALLOW
    dropped = sp.program("", caps.resolve(cap_drop=("SYS_CHROOT",)), "x86_64")
    assert run(dropped, X86["chroot"]) == EPERM


def test_privileged_and_unconfined_have_no_program():
    assert sp.for_container("", (), (), True) is None
    assert sp.for_container("unconfined", (), (), False) is None
    assert sp.for_container("", (), (), False) == sp.program("", caps.resolve())


def test_aarch64_program():
    prog = sp.program("", caps.resolve(), "aarch64")
    assert run(prog, ARM["mount"], arch="aarch64") == EPERM
    assert run(prog, ARM["openat"], arch="aarch64") == bpf.RET_ALLOW
    assert run(prog, ARM["clone"], (CLONE_NEWNET,), arch="aarch64") == EPERM
    assert run(prog, ARM["openat"], arch="x86_64") == bpf.RET_KILL_PROCESS
    assert run(prog, 0x40000000 | ARM["openat"], arch="aarch64") == EPERM  # no x32 on arm64


def test_x86_64_numbers_match_this_hosts_headers():
    import os
    import re

    header = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"
    if not os.path.exists(header):
        pytest.skip("no x86_64 kernel headers here")
    with open(header) as f:
        found = dict((n, int(v)) for n, v in re.findall(r"#define __NR_(\w+) (\d+)", f.read()))
    assert {n: X86[n] for n in found} == found


@pytest.mark.parametrize("op,value,value_two,cases", [
    ("SCMP_CMP_EQ", 1 << 33 | 5, 0, [(1 << 33 | 5, True), (5, False), (1 << 33, False)]),
    ("SCMP_CMP_NE", 1 << 33 | 5, 0, [(1 << 33 | 5, False), (5, True), (1 << 32 | 5, True)]),
    ("SCMP_CMP_GT", 1 << 32 | 10, 0, [(1 << 32 | 11, True), (1 << 32 | 10, False), (2 << 32, True), (11, False)]),
    ("SCMP_CMP_GE", 1 << 32 | 10, 0, [(1 << 32 | 10, True), (1 << 32 | 9, False), (2 << 32, True), (11, False)]),
    ("SCMP_CMP_LT", 1 << 32 | 10, 0, [(1 << 32 | 9, True), (1 << 32 | 10, False), (99, True), (2 << 32, False)]),
    ("SCMP_CMP_LE", 1 << 32 | 10, 0, [(1 << 32 | 10, True), (1 << 32 | 11, False), (99, True), (2 << 32, False)]),
    ("SCMP_CMP_MASKED_EQ", 0xF0 | 1 << 40, 0x30, [(0x3F, True), (0x4F, False), (0x30 | 1 << 40, False)]),
])
def test_comparisons(op, value, value_two, cases):
    f = bpf.Filter("x86_64", EPERM, ((7, (bpf.Rule(bpf.RET_ALLOW, (bpf.Arg(2, op, value, value_two),)),)),))
    prog = bpf.to_bytes(bpf.assemble(f))
    for arg, allowed in cases:
        assert run(prog, 7, (0, 0, arg)) == (bpf.RET_ALLOW if allowed else EPERM), (op, hex(arg))
    assert run(prog, 6, (0, 0, cases[0][0])) == EPERM


def test_far_subtrees_jump_through_ja():
    # 300 syscalls each with an argument rule: subtrees far beyond an 8-bit jump
    rules = tuple((nr, (bpf.Rule(bpf.RET_ALLOW, (bpf.Arg(0, "SCMP_CMP_EQ", nr),)),)) for nr in range(0, 600, 2))
    prog = bpf.to_bytes(bpf.assemble(bpf.Filter("x86_64", EPERM, rules)))
    assert any(c == bpf.JMP_JA for c, *_ in bpf.decode(prog))
    for nr in (0, 2, 298, 300, 598):
        assert run(prog, nr, (nr,)) == bpf.RET_ALLOW
        assert run(prog, nr, (nr + 1,)) == EPERM
        assert run(prog, nr + 1, (nr + 1,)) == EPERM


def test_custom_profile_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat", "no_such_call"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                     {"name": "chmod", "action": "SCMP_ACT_KILL_PROCESS"}]}))
    text = sp.load_option("p.json", str(tmp_path))
    prog = sp.program(text, caps.resolve(), "x86_64")
    assert run(prog, X86["mkdirat"]) == bpf.RET_ERRNO | 13
    assert run(prog, X86["chmod"]) == bpf.RET_KILL_PROCESS
    assert run(prog, X86["mount"]) == bpf.RET_ALLOW
    assert sp.load_option("unconfined") == "unconfined"
    assert sp.load_option("builtin") == ""


@pytest.mark.parametrize("content,needle", [
    ("{not json", "not valid JSON"),
    (json.dumps({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}), "not supported"),
    (json.dumps({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                               "args": [{"index": 0, "op": "SCMP_CMP_XX", "value": 1}]}]}), "comparison"),
    (json.dumps({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                               "args": [{"index": 9, "op": "SCMP_CMP_EQ", "value": 1}]}]}), "index"),
    (json.dumps([1, 2]), "JSON object"),
])
def test_bad_profiles_are_one_clear_error(tmp_path, content, needle):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(ValueError, match=needle):
        sp.load_option("bad.json", str(tmp_path))
    with pytest.raises(ValueError, match="cannot read"):
        sp.load_option("missing.json", str(tmp_path))


def test_build_once_then_cached():
    sp.program.cache_clear()
    t0 = time.perf_counter()
    first = sp.program("", caps.resolve(cap_add=("NET_ADMIN",)), "x86_64")
    t1 = time.perf_counter()
    again = sp.program("", caps.resolve(cap_add=("NET_ADMIN",)), "x86_64")
    t2 = time.perf_counter()
    assert first == again
    assert t1 - t0 < 0.05 and t2 - t1 < 0.001


def test_compose_security_opt(tmp_path):
    from types import SimpleNamespace

    from composer.errors import ConfigError
    from composer.service import keys as K

    (tmp_path / "prof.json").write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW"}))
    svc = lambda *opts: SimpleNamespace(name="web", security_opt=list(opts))  # noqa: E731
    warn: list[str] = []
    assert K.security_for(svc("seccomp:unconfined", "no-new-privileges"), warn, str(tmp_path)) == (True, "unconfined")
    assert K.security_for(svc("seccomp=./prof.json"), warn, str(tmp_path))[1] == '{"defaultAction":"SCMP_ACT_ALLOW"}'
    assert K.security_for(svc("apparmor=unconfined"), warn, str(tmp_path)) == (False, "")
    assert warn == ["service web: security_opt 'apparmor=unconfined' is not supported, ignored"]
    with pytest.raises(ConfigError, match="cannot read seccomp profile nope.json"):
        K.security_for(svc("seccomp=nope.json"), warn, str(tmp_path))


def test_run_security_opt(tmp_path):
    from composer.errors import UsageError
    from composer.service import runspec

    assert runspec.security(("seccomp=unconfined",), "/") == {"no_new_privileges": False, "seccomp": "unconfined"}
    assert runspec.security(("no-new-privileges",), "/") == {"no_new_privileges": True, "seccomp": ""}
    with pytest.raises(UsageError, match="invalid --security-opt 'label=disable'"):
        runspec.security(("label=disable",), "/")
    with pytest.raises(UsageError, match="not valid JSON"):
        (tmp_path / "x.json").write_text("{")
        runspec.security(("seccomp=x.json",), str(tmp_path))


def test_programs_are_cached_in_the_state_dir(tmp_path, monkeypatch):
    from composer.runtime.security import seccomp

    assert seccomp.program_for(str(tmp_path), "unconfined", (), (), False) is None
    assert seccomp.program_for(str(tmp_path), "", (), (), True) is None
    first = seccomp.program_for(str(tmp_path), "", (), (), False)
    assert first == sp.program("", caps.resolve())
    assert len(list((tmp_path / "seccomp").iterdir())) == 1

    def boom(*a):
        raise AssertionError("rebuilt despite the cache")

    monkeypatch.setattr(sp, "program", boom)
    t = time.perf_counter()
    assert seccomp.program_for(str(tmp_path), "", (), (), False) == first
    assert time.perf_counter() - t < 0.005
    with pytest.raises(AssertionError):  # other capabilities: another program
        seccomp.program_for(str(tmp_path), "", ("SYS_ADMIN",), (), False)
