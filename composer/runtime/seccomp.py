"""Loading a seccomp BPF program (built by seccomp_bpf / seccomp_profile) into the current process.

Imported by the container child, hence by the lean launcher: ctypes and os only (both loaded there
already), no dataclasses or struct. The program arrives as bytes, built once in the CLI."""

from __future__ import annotations

import ctypes
import os

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: bytes) -> None:
    """Load the filter into this process (inherited across fork and exec). Needs no_new_privs or
    CAP_SYS_ADMIN: the caller orders it with the capability drop. Raises OSError."""
    if not program or len(program) % 8:
        raise OSError(22, "seccomp: malformed filter program")
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog),
                  ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: cannot install the filter: {os.strerror(err)}")
