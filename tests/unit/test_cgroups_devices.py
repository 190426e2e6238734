"""The cgroup v2 device program, without root: rule parsing and the assembled eBPF run through a
small interpreter of the instructions assemble() emits, against docker's default policy."""

from __future__ import annotations

import struct

import pytest

from composer.errors import ContainerError
from composer.runtime.cgroups import devices as cd
from composer.runtime.cgroups.limits import validate
from composer.runtime.spec import Resources

M, R, W = cd.ACC_MKNOD, cd.ACC_READ, cd.ACC_WRITE
C, B = cd.DEV_CHAR, cd.DEV_BLOCK


def run(code: bytes, kind: int, access: int, major: int, minor: int) -> int:
    """Interpret the program on one bpf_cgroup_dev_ctx (access_type = access << 16 | kind)."""
    ctx = struct.pack("<III", access << 16 | kind, major, minor)
    insns = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
    reg = [0] * 11
    pc = 0
    while True:
        op, regs, off, imm = insns[pc]
        dst, src = regs & 0xF, regs >> 4
        pc += 1
        if op == 0x61:
            reg[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif op == 0x54:
            reg[dst] = reg[dst] & imm & 0xFFFFFFFF
        elif op == 0x74:
            reg[dst] = (reg[dst] & 0xFFFFFFFF) >> imm
        elif op == 0xB4:
            reg[dst] = imm & 0xFFFFFFFF
        elif op == 0xBC:
            reg[dst] = reg[src] & 0xFFFFFFFF
        elif op == 0x55:
            if reg[dst] != imm & 0xFFFFFFFFFFFFFFFF:
                pc += off
        elif op == 0x5D:
            if reg[dst] != reg[src]:
                pc += off
        elif op == 0x95:
            return reg[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")


DEFAULT = cd.assemble(cd.rules_for())


@pytest.mark.parametrize("kind,access,major,minor,allowed", [
    (C, R | W, 1, 3, 1),  # /dev/null
    (C, R, 1, 9, 1),  # urandom
    (C, R | W, 136, 7, 1),  # a pts
    (C, R | W, 5, 2, 1),  # ptmx
    (B, M, 8, 0, 1),  # mknod of a disk: allowed, as docker
    (C, M, 1, 1, 1),  # mknod of /dev/mem
    (B, R, 8, 0, 0),  # opening a disk
    (B, R | W, 254, 0, 0),  # a virtio disk
    (C, R, 1, 1, 0),  # /dev/mem
    (C, R, 1, 2, 0),  # /dev/kmem
    (C, R | W, 10, 232, 0),  # /dev/kvm
    (C, R, 4, 1, 0),  # a host tty
    (C, R | M, 8, 0, 0),  # mknod bit alone does not open anything
])
def test_default_policy(kind, access, major, minor, allowed):
    assert run(DEFAULT, kind, access, major, minor) == allowed


def test_extra_rules_and_everything():
    code = cd.assemble(cd.rules_for(("b 8:* r", "c 4095:1048575 rw")))
    assert run(code, B, R, 8, 3) == 1
    assert run(code, B, R | W, 8, 3) == 0  # write was not granted
    assert run(code, C, W, 4095, 1048575) == 1  # the largest major and minor
    everything = cd.assemble(cd.rules_for(("a",)))
    assert run(everything, B, R | W, 254, 0) == 1
    # it ends with the "a" rule's allow: the final deny after it would be unreachable, which kernel 6.1's verifier
    # refuses ("unreachable insn"; newer kernels accept it)
    assert int.from_bytes(everything[-16 + 4:-8], "little") == 1
    assert run(cd.assemble(()), C, R, 1, 3) == 0  # no rule: deny


def test_a_rule_that_allows_everything_ends_the_program():
    # what follows it would be unreachable, and the verifier refuses unreachable instructions
    # (kernel 6.1: "unreachable insn"; a privileged container failed to start in the v2 VM)
    code = cd.assemble((cd.parse_rule("a"),) + cd.rules_for())
    assert len(code) == 8 * 8  # 6 loads + "return 1"
    assert run(code, B, R | W, 254, 0) == 1


@pytest.mark.parametrize("text", ["x 1:3 r", "c 1 r", "c 1:3", "c 1:3 rx", "c a:3 r", "c 1:3 rr", "", "c -1:3 r",
                                  "c 4096:0 r", "c 1:1048576 r"])
def test_bad_rules_are_refused_by_name(text):
    with pytest.raises(ContainerError, match="invalid device cgroup rule"):
        cd.parse_rule(text)


def test_rules_round_trip_and_reach_limits():
    assert [str(r) for r in cd.rules_for()] == list(cd.DEFAULT_RULES)
    assert str(cd.parse_rule("c 189:* mwr")) == "c 189:* rwm"
    lim = validate(Resources(device_rules=("c 189:* rwm",)))
    assert lim.devices[-1] == cd.DeviceRule("c", 189, None, "rwm")
    with pytest.raises(ContainerError):
        validate(Resources(device_rules=("nonsense",)))


def test_a_spec_with_devices_round_trips_through_json():
    from composer.runtime.spec import ContainerSpec, Device

    spec = ContainerSpec(id="a" * 64, name="x", image="i", image_id="t", layers=("/l",), argv=("true",),
                         devices=(Device("/dev/x", "c", 60, 7, "r", 0o640, 0, 5),), cgroupns="private",
                         resources=Resources(device_rules=("c 60:* r",)))
    assert ContainerSpec.from_json(spec.to_json()) == spec
    assert spec.devices[0].rule == "c 60:7 r"
