"""Loading a seccomp BPF program (built by seccomp_bpf / seccomp_profile) into the current process.

Imported by the container child, hence by the lean launcher: ctypes (loaded there already) and os
only, no dataclasses or struct. The program arrives as bytes, built once in the CLI."""

from __future__ import annotations

import os

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


def install(program: bytes) -> None:
    """Load the filter into this process (inherited across fork and exec). Needs no_new_privs or
    CAP_SYS_ADMIN: the caller orders it with the capability drop. Raises OSError. (ctypes here,
    not at import: the CLI imports this module for program_for alone.)"""
    import ctypes

    class _SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    if not program or len(program) % 8:
        raise OSError(22, "seccomp: malformed filter program")
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog),
                  ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: cannot install the filter: {os.strerror(err)}")


# ------------------------------------------------------------------ cached programs (in the CLI)

_BUILDERS = ("seccomp_bpf.py", "seccomp_profile.py", "seccomp_tables.py")


def program_for(state_dir: str, profile: str, cap_add: tuple[str, ...], cap_drop: tuple[str, ...],
                privileged: bool) -> bytes | None:
    """A container's BPF program, None when unconfined (privileged too, as docker). Built once per
    (profile, capabilities, arch, kernel, builder code) and kept in the state dir: a cache hit costs
    a stat and a read instead of importing the builder (~6 ms) and building (~2 ms)."""
    if privileged or profile == "unconfined":
        return None
    from composer.runtime.security import caps

    mask = caps.resolve(cap_add, cap_drop, privileged)
    here = os.path.dirname(__file__)
    stamps = [os.stat(os.path.join(here, name)) for name in _BUILDERS]
    key = "\0".join([os.uname().machine, os.uname().release, str(mask), profile]
                    + [f"{s.st_mtime_ns}:{s.st_size}" for s in stamps]).encode()
    # The file holds its whole key before the program, so the name needs no cryptographic hash
    # (hashlib would load OpenSSL: ~3 ms of every `container run`): a collision only misses.
    header = len(key).to_bytes(4, "big") + key
    path = os.path.join(state_dir, "seccomp", f"{_fnv1a(key):016x}.bpf")
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data.startswith(header) and len(data) > len(header):
            return data[len(header):]
    except OSError:
        pass
    from composer.runtime.security import seccomp_profile

    program = seccomp_profile.program(profile, mask)
    assert program is not None
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(header + program)
        os.replace(tmp, path)  # readers see a whole program or none
    except OSError:
        pass  # a cache that cannot be written only costs time
    return program


def _fnv1a(data: bytes) -> int:
    """64-bit FNV-1a: a file name for a key, not a proof of it."""
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h
