"""Seccomp: a resolved filter (arch, default action, per-syscall rules) -> a classic BPF program.

Built here in Python, no libseccomp: the program is a few hundred 8-byte `struct sock_filter`s.
Shape: check `arch` (a foreign arch, or an x32 call on x86_64, kills the process: a 32-bit program
whose every call failed would spin rather than stop), then a binary search over syscall-number
ranges with the same outcome, so a call costs ~log2(ranges) jumps, not one per syscall; a syscall
whose rules test arguments gets a small block comparing the 64-bit args as two 32-bit words.

Runs where specs are made (the CLI), never in the lean launcher: the child only gets the bytes and
loads them with composer.runtime.security.seccomp.install. Profiles: seccomp_profile; numbers: seccomp_tables."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# linux/seccomp.h return values (the high 16 bits are the action, the low 16 its data)
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
X32_SYSCALL_BIT = 0x40000000

# classic BPF opcodes
LD_W_ABS = 0x20
JMP_JA, JMP_JEQ, JMP_JGT, JMP_JGE = 0x05, 0x15, 0x25, 0x35
ALU_AND_K = 0x54
RET_K = 0x06

# struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6] (little-endian on both arches)
OFF_NR, OFF_ARCH = 0, 4


def _arg_lo(i: int) -> int:
    return 16 + 8 * i


def _arg_hi(i: int) -> int:
    return 20 + 8 * i


OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
       "SCMP_CMP_MASKED_EQ")
MAX_INSNS = 4096  # BPF_MAXINSNS


@dataclass(frozen=True)
class Arg:
    """One comparison of a syscall argument, as docker's profile format: for MASKED_EQ, value is
    the mask and value_two what the masked argument must equal."""

    index: int
    op: str
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class Rule:
    """An action taken when all its argument conditions hold."""

    action: int  # RET_* | data
    args: tuple[Arg, ...] = ()  # all must hold


@dataclass(frozen=True)
class Filter:
    """A seccomp filter: per-syscall rules and a default action."""

    arch: str
    default: int
    syscalls: tuple[tuple[int, tuple[Rule, ...]], ...]  # (nr, rules); nr absent -> default


Insn = tuple[int, int, int, int]  # code, jt, jf, k


def _stmt(code: int, k: int) -> Insn:
    return (code, 0, 0, k & 0xFFFFFFFF)


def _resolve(block: list, fail: int) -> list[Insn]:
    """block: (code, jt, jf, k) where jt/jf may be "S" (success: end of the block) or "F" (fail:
    `fail` instructions past the end of the block) -> concrete relative offsets."""
    n = len(block)
    out = []
    for i, (code, jt, jf, k) in enumerate(block):
        to = [n - i - 1 if j == "S" else n - i - 1 + fail if j == "F" else j for j in (jt, jf)]
        if max(to) > 255:
            raise ValueError("seccomp rule too large for a BPF jump")
        out.append((code, to[0], to[1], k & 0xFFFFFFFF))
    return out


def _check(arg: Arg, fail: int) -> list[Insn]:
    """Instructions falling through when `arg` holds and jumping `fail` past their end otherwise."""
    if not 0 <= arg.index < 6:
        raise ValueError(f"syscall argument index {arg.index} out of range 0-5")
    lo, hi = _arg_lo(arg.index), _arg_hi(arg.index)
    v, v2 = arg.value & (2 ** 64 - 1), arg.value_two & (2 ** 64 - 1)
    vlo, vhi = v & 0xFFFFFFFF, v >> 32
    op = arg.op
    if op == "SCMP_CMP_EQ":
        b = [(LD_W_ABS, 0, 0, hi), (JMP_JEQ, 0, "F", vhi), (LD_W_ABS, 0, 0, lo), (JMP_JEQ, 0, "F", vlo)]
    elif op == "SCMP_CMP_NE":
        b = [(LD_W_ABS, 0, 0, hi), (JMP_JEQ, 0, "S", vhi), (LD_W_ABS, 0, 0, lo), (JMP_JEQ, "F", 0, vlo)]
    elif op == "SCMP_CMP_MASKED_EQ":
        b = [(LD_W_ABS, 0, 0, hi), (ALU_AND_K, 0, 0, vhi), (JMP_JEQ, 0, "F", v2 >> 32),
             (LD_W_ABS, 0, 0, lo), (ALU_AND_K, 0, 0, vlo), (JMP_JEQ, 0, "F", v2 & 0xFFFFFFFF)]
    elif op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):  # hi > vhi, or hi == vhi and lo >(=) vlo
        last = JMP_JGT if op == "SCMP_CMP_GT" else JMP_JGE
        b = [(LD_W_ABS, 0, 0, hi), (JMP_JGT, "S", 0, vhi), (JMP_JEQ, 0, "F", vhi),
             (LD_W_ABS, 0, 0, lo), (last, 0, "F", vlo)]
    elif op in ("SCMP_CMP_LT", "SCMP_CMP_LE"):  # the negations of GE and GT
        last = JMP_JGE if op == "SCMP_CMP_LT" else JMP_JGT
        b = [(LD_W_ABS, 0, 0, hi), (JMP_JGT, "F", 0, vhi), (JMP_JEQ, 0, "S", vhi),
             (LD_W_ABS, 0, 0, lo), (last, "F", 0, vlo)]
    else:
        raise ValueError(f"unknown seccomp comparison {op!r}")
    return _resolve(b, fail)


def _rules_block(rules: tuple[Rule, ...], default: int) -> list[Insn]:
    """A syscall's rules in order, the first whose args all hold decides; none -> default."""
    uncond = next((r for r in rules if not r.args), None)
    if uncond is not None:  # an argument-free rule decides alone (libseccomp's precedence)
        return [_stmt(RET_K, uncond.action)]
    out: list[Insn] = [_stmt(RET_K, default)]
    for rule in reversed(rules):
        body: list[Insn] = [_stmt(RET_K, rule.action)]
        for arg in reversed(rule.args):
            body = _check(arg, len(body)) + body
        out = body + out
    return out


def _tree(ranges: list[tuple[int, list[Insn]]]) -> list[Insn]:
    """ranges: (first nr, leaf code) sorted, covering all numbers from the first one up. A binary
    search on `nr` (in A) with JGE; a subtree too far for an 8-bit jump goes through a JA."""
    if len(ranges) == 1:
        return ranges[0][1]
    mid = len(ranges) // 2
    left, right = _tree(ranges[:mid]), _tree(ranges[mid:])
    if len(left) <= 255:
        return [(JMP_JGE, len(left), 0, ranges[mid][0])] + left + right
    return [(JMP_JGE, 0, 1, ranges[mid][0]), (JMP_JA, 0, 0, len(left))] + left + right


def assemble(f: Filter) -> list[Insn]:
    if f.arch not in AUDIT_ARCH:
        raise ValueError(f"seccomp: unsupported architecture {f.arch}")
    head: list[Insn] = [(LD_W_ABS, 0, 0, OFF_ARCH), (JMP_JEQ, 1, 0, AUDIT_ARCH[f.arch]),
                        _stmt(RET_K, RET_KILL_PROCESS), (LD_W_ABS, 0, 0, OFF_NR)]
    if f.arch == "x86_64":
        # x32 calls share the arch value but set bit 30 of nr; -1 (a tracer skipping a call) is not x32
        head += [(JMP_JGE, 0, 2, X32_SYSCALL_BIT), (JMP_JEQ, 1, 0, 0xFFFFFFFF), _stmt(RET_K, RET_KILL_PROCESS)]
    # Leaves: default-action gaps between syscalls with rules; equal constant neighbours merge.
    leaf_default = [_stmt(RET_K, f.default)]
    points: list[tuple[int, list[Insn]]] = []
    end = 0
    for nr, rules in sorted(f.syscalls):
        if nr > end:
            points.append((end, leaf_default))
        points.append((nr, _rules_block(rules, f.default)))
        end = nr + 1
    points.append((end, leaf_default))
    merged: list[tuple[int, list[Insn]]] = []
    for start, code in points:
        if not (merged and len(code) == 1 and merged[-1][1] == code):
            merged.append((start, code))
    prog = head + _tree(merged)
    if len(prog) > MAX_INSNS:
        raise ValueError(f"seccomp program of {len(prog)} instructions exceeds the kernel's {MAX_INSNS}")
    return prog


def to_bytes(prog: list[Insn]) -> bytes:
    return b"".join(struct.pack("=HBBI", *insn) for insn in prog)


def decode(data: bytes) -> list[Insn]:
    return [struct.unpack_from("=HBBI", data, i) for i in range(0, len(data), 8)]
