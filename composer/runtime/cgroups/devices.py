"""The device policy of a container on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program attached
to its cgroup, the v2 counterpart of v1's devices.allow/devices.deny files.

cgroup v2 has no devices controller: the kernel runs the cgroup's device programs on every mknod
and open of a device node and allows the access only if every program (the cgroup's and, attached
with BPF_F_ALLOW_MULTI, its ancestors') returns 1. Without one, a container with CAP_MKNOD (a
default capability) can mknod the host's disks and open them.

The program is runc's and crun's shape, assembled here by hand: load the access type, major and
minor from `struct bpf_cgroup_dev_ctx` into r2..r5, then one block per allow rule that jumps to the
next block on a mismatch and returns 1 on a match; the end returns 0 (deny). Rules are allow-only
(docker's "deny all, then allow" list), so their order does not matter.

Cost: BPF_PROG_LOAD (the verifier) runs once per process and rule set; each container then costs
one open of its cgroup dir and one BPF_PROG_ATTACH. The attachment holds the program, so our fd
may stay open for reuse (it is O_CLOEXEC); removing the cgroup frees the attachment."""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass

from composer.errors import ContainerError, HostError

# docker's default device rules: mknod of any node, and access to the harmless character devices
# (v1 writes the same list to devices.allow after "devices.deny a").
DEFAULT_RULES = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  # null zero full random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm",  # tty console ptmx pts/*
    "c 10:200 rwm",  # net/tun (creating an interface still needs CAP_NET_ADMIN)
)

# include/uapi/linux/bpf.h
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH, BPF_PROG_QUERY = 5, 8, 9, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type
BPF_F_ALLOW_MULTI = 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4  # BPF_DEVCG_ACC_*
DEV_BLOCK, DEV_CHAR = 1, 2  # BPF_DEVCG_DEV_*
_ACCESS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}
_KIND = {"b": DEV_BLOCK, "c": DEV_CHAR}
_NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}

# eBPF opcodes (class | op | source)
_LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_AND32_K, _RSH32_K, _MOV32_K, _MOV32_X = 0x54, 0x74, 0xB4, 0xBC  # BPF_ALU | op | BPF_K/BPF_X
_JNE_K, _JNE_X = 0x55, 0x5D  # BPF_JMP | BPF_JNE | BPF_K/BPF_X
_EXIT = 0x95


@dataclass(frozen=True)
class DeviceRule:
    """One cgroup device rule as docker's --device-cgroup-rule writes it: "c 1:3 rwm"."""

    kind: str  # "c", "b" or "a" (both)
    major: int | None  # None = any ("*")
    minor: int | None
    access: str  # a subset of "rwm"

    def __str__(self) -> str:
        num = lambda n: "*" if n is None else str(n)  # noqa: E731
        return f"{self.kind} {num(self.major)}:{num(self.minor)} {self.access}"


def parse_rule(text: str) -> DeviceRule:
    """'type major:minor access' (type a|b|c, numbers or *, access a subset of rwm); "a" alone is
    every device. ContainerError names the bad rule."""
    parts = text.split()
    bad = ContainerError(f"invalid device cgroup rule {text!r}: expected 'TYPE MAJOR:MINOR ACCESS', "
                      "e.g. 'c 189:* rwm' (TYPE a, b or c; numbers or *; ACCESS from r, w, m)")
    if len(parts) == 1 and parts[0] == "a":
        return DeviceRule("a", None, None, "rwm")
    if len(parts) != 3 or parts[0] not in ("a", "b", "c") or ":" not in parts[1]:
        raise bad
    access = parts[2]
    if not access or set(access) - set("rwm") or len(set(access)) != len(access):
        raise bad
    nums = []
    for n, limit in zip(parts[1].split(":", 1), (1 << 12, 1 << 20)):  # the kernel's MAJOR/MINOR bits
        if n == "*":
            nums.append(None)
        elif n.isdigit() and int(n) < limit:
            nums.append(int(n))
        else:
            raise bad
    return DeviceRule(parts[0], nums[0], nums[1], "".join(c for c in "rwm" if c in access))


# ---------------------------------------------------------------- the program


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)  # little-endian hosts only


def assemble(rules: tuple[DeviceRule, ...]) -> bytes:
    """The program's instructions: allow an access matching any rule, deny everything else."""
    prog = [
        _insn(_LDX_W, 2, 1, 0),  # r2 = ctx->access_type
        _insn(_AND32_K, 2, imm=0xFFFF),  # r2 = device type (low 16 bits)
        _insn(_LDX_W, 3, 1, 0),
        _insn(_RSH32_K, 3, imm=16),  # r3 = requested access (high 16 bits)
        _insn(_LDX_W, 4, 1, 4),  # r4 = major
        _insn(_LDX_W, 5, 1, 8),  # r5 = minor
    ]
    for rule in rules:
        acc = sum(_ACCESS[c] for c in rule.access)
        # each test: (opcode, dst, src, imm); a mismatch jumps past the block's "return 1"
        tests: list[tuple[int, int, int, int] | None] = []
        if rule.kind != "a":
            tests.append((_JNE_K, 2, 0, _KIND[rule.kind]))
        if acc != ACC_MKNOD | ACC_READ | ACC_WRITE:  # requested must be a subset: (r3 & acc) == r3
            tests += [None, (_JNE_X, 1, 3, 0)]
        if rule.major is not None:
            tests.append((_JNE_K, 4, 0, rule.major))  # < 2**31: the 64-bit compare is exact
        if rule.minor is not None:
            tests.append((_JNE_K, 5, 0, rule.minor))
        block: list[bytes] = []
        n = len(tests) + (1 if None in tests else 0) + 2  # instructions in this block
        for t in tests:
            if t is None:
                block += [_insn(_MOV32_X, 1, 3), _insn(_AND32_K, 1, imm=acc)]  # r1 = r3 & acc
                continue
            code, dst, src, imm = t
            block.append(_insn(code, dst, src, off=n - len(block) - 1, imm=imm))
        block += [_insn(_MOV32_K, 0, imm=1), _insn(_EXIT)]
        assert len(block) == n
        prog += block
        if not tests:  # matches every access: the rest would be unreachable, which kernel 6.1's verifier refuses
            return b"".join(prog)
    prog += [_insn(_MOV32_K, 0, imm=0), _insn(_EXIT)]
    return b"".join(prog)


# ---------------------------------------------------------------- bpf(2)

_LOADED: dict[tuple[DeviceRule, ...], int] = {}  # rules -> program fd, one load per process


def _bpf(cmd: int, attr) -> int:
    import ctypes

    nr = _NR_BPF.get(os.uname().machine)
    if nr is None:
        raise HostError(f"composer does not know the bpf syscall number on {os.uname().machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    res = libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr)))
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return res


def load(rules: tuple[DeviceRule, ...]) -> int:
    """The program fd for `rules`, loaded through the verifier once per process."""
    fd = _LOADED.get(rules)
    if fd is None:
        fd = _LOADED[rules] = _load(assemble(rules))
    return fd


def _load(code: bytes, log_size: int = 0) -> int:
    import ctypes

    insns = ctypes.create_string_buffer(code, len(code))
    license = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = ctypes.create_string_buffer(72)  # bpf_attr up to expected_attach_type
    struct.pack_into("<IIQQIIQII16s", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8,
                     ctypes.addressof(insns), ctypes.addressof(license), 1 if log else 0, log_size,
                     ctypes.addressof(log) if log else 0, 0, 0, b"composer_dev")
    for _ in range(10):  # EAGAIN: the verifier was interrupted by a signal
        try:
            return _bpf(BPF_PROG_LOAD, attr)
        except OSError as e:
            if e.errno == errno.EAGAIN:
                continue
            if e.errno in (errno.ENOSYS, errno.EPERM) or log is not None:
                raise HostError(_load_failure(e, log.value.decode(errors="replace") if log else "")) from None
            return _load(code, 1 << 16)  # again, with the verifier's log
    raise HostError("cannot load the container device policy (BPF_PROG_LOAD): interrupted 10 times")


def _load_failure(e: OSError, log: str) -> str:
    if e.errno == errno.ENOSYS:
        return "cannot confine containers' devices: this kernel has no bpf(2) (CONFIG_BPF_SYSCALL)"
    if e.errno == errno.EPERM:
        return "cannot load the container device policy (BPF_PROG_LOAD): permission denied (composer needs root)"
    if e.errno == errno.EINVAL and not log:
        return ("cannot load the container device policy (BPF_PROG_LOAD): the kernel refused the program type "
                "(a kernel without CONFIG_CGROUP_BPF?)")
    return f"cannot load the container device policy (BPF_PROG_LOAD: {e.strerror}); the verifier said:\n{log.strip()}"


def attach(cgroup_dir: str, rules: tuple[DeviceRule, ...]) -> None:
    """Attach the device program for `rules` to a cgroup v2 directory. BPF_F_ALLOW_MULTI: the
    programs of the ancestors (systemd's, a parent runtime's) still run too, and keep the last say."""
    import ctypes

    prog = load(rules)
    try:
        dfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise HostError(f"cannot open cgroup {cgroup_dir} to set its device policy: {e.strerror}") from None
    try:
        attr = ctypes.create_string_buffer(20)
        struct.pack_into("<IIIII", attr, 0, dfd, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI, 0)
        _bpf(BPF_PROG_ATTACH, attr)
    except OSError as e:
        why = e.strerror
        if e.errno == errno.EPERM:
            why += " (an ancestor cgroup holds a device program attached without BPF_F_ALLOW_MULTI)"
        elif e.errno == errno.EINVAL:
            why += " (a kernel without CONFIG_CGROUP_BPF?)"
        raise HostError(f"cannot set the device policy of cgroup {cgroup_dir} (BPF_PROG_ATTACH): {why}") from None
    finally:
        os.close(dfd)


def attached(cgroup_dir: str) -> int:
    """How many device programs are attached to this cgroup itself (BPF_PROG_QUERY), for checks."""
    import ctypes

    dfd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        attr = ctypes.create_string_buffer(40)
        struct.pack_into("<IIII", attr, 0, dfd, BPF_CGROUP_DEVICE, 0, 0)  # ids NULL, count 0: just count
        _bpf(BPF_PROG_QUERY, attr)
        return struct.unpack_from("<I", attr, 24)[0]
    finally:
        os.close(dfd)


def host_device(text: str):
    """docker's --device / compose `devices` entry, "HOST[:CONTAINER][:PERMISSIONS]", resolved on
    this host (the node's type, numbers, mode and owner are read now, as docker does at create)."""
    import stat

    from composer.runtime.spec import Device

    parts = text.split(":")
    perms = "rwm"
    if len(parts) > 1 and parts[-1] and not set(parts[-1]) - set("rwm"):
        perms = parts.pop()
    if not 1 <= len(parts) <= 2 or not parts[0].startswith("/") or (len(parts) == 2 and not parts[1].startswith("/")):
        raise ContainerError(f"invalid device {text!r}: expected HOST_PATH[:CONTAINER_PATH][:PERMISSIONS] "
                             "with absolute paths and permissions from r, w, m")
    source, target = parts[0], parts[-1]
    try:
        st = os.stat(source)
    except OSError as e:
        raise ContainerError(f"invalid device {text!r}: {source}: {e.strerror}") from None
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise ContainerError(f"invalid device {text!r}: {source} is not a device node")
    return Device(target=os.path.normpath(target), kind="c" if stat.S_ISCHR(st.st_mode) else "b",
                  major=os.major(st.st_rdev), minor=os.minor(st.st_rdev),
                  access="".join(c for c in "rwm" if c in perms), mode=stat.S_IMODE(st.st_mode),
                  uid=st.st_uid, gid=st.st_gid)


def rules_for(extra: tuple[str, ...] = ()) -> tuple[DeviceRule, ...]:
    """The default rules plus a container's own (docker's device_cgroup_rules, `devices:`)."""
    return tuple(parse_rule(r) for r in DEFAULT_RULES + tuple(extra))
