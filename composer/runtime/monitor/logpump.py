"""A monitor's log writing: PID 1's stdout/stderr as docker json-file lines (16 KiB partial
records), json-file rotation (max-size, max-file), and JSON through the C module alone. Lean like
the monitor that imports it (no json, re or typing: they would cost every monitor its own pages).
cmp-pump.c writes byte-for-byte the same records (tests/unit/test_cmp_pump.py)."""

from __future__ import annotations

import _json
import os
import time

PARTIAL_MAX = 16 * 1024  # docker's json-file splits lines longer than 16 KiB
READ_SIZE = 65536
STATE_FILE, LOCK_FILE = "state.json", "lock"  # as runtime.container.state (not imported: typing, json)


# ---------------------------------------------------------------- JSON through _json alone


class _Ctx:
    strict = True
    object_hook = object_pairs_hook = None
    parse_float, parse_int, parse_constant = float, int, float


def _no_default(o: object) -> object:
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


_scan = _json.make_scanner(_Ctx())
_encode = _json.make_encoder(None, _no_default, _json.encode_basestring_ascii, None, ": ", ", ", True, False, True)


def loads(text: str) -> object:
    try:
        return _scan(text, 0)[0]
    except (StopIteration, SystemError):  # the bare C scanner on a truncated document: no JSONDecodeError
        raise ValueError("invalid JSON") from None


def dumps(obj: object) -> str:
    return "".join(_encode(obj, 0))


def _timestamp(t: float) -> str:
    ns = int((t % 1) * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ns:09d}Z"


class _Pump:
    """Copies one pipe to the log (json lines, as docker's json-file) and the attached fd."""

    buffer: bytearray | None = None  # one per monitor, shared by its pumps (one reads at a time)

    def __init__(self, fd: int, stream: str, log_fd: "_LogFile | None", out_fd: int | None) -> None:
        self.fd, self.stream, self.log_fd, self.out_fd = fd, stream, log_fd, out_fd
        self.buf = b""

    def read(self) -> bool:
        if _Pump.buffer is None:
            _Pump.buffer = bytearray(READ_SIZE)
        try:
            n = os.readv(self.fd, [_Pump.buffer])
        except BlockingIOError:
            return True
        except OSError:  # EIO: a pty master once every slave is closed
            n = 0
        if not n:
            self.flush(final=True)
            return False
        data = bytes(memoryview(_Pump.buffer)[:n])
        if self.out_fd is not None:
            try:
                os.write(self.out_fd, data)
            except OSError:
                self.out_fd = None
        self.buf += data
        self.flush()
        return True

    def flush(self, final: bool = False) -> None:
        if self.log_fd is None:
            self.buf = b""
            return
        records = []
        t = _timestamp(time.time())
        while True:
            nl = self.buf.find(b"\n")
            if nl < 0 and len(self.buf) < PARTIAL_MAX and not (final and self.buf):
                break
            cut = nl + 1 if nl >= 0 else min(len(self.buf), PARTIAL_MAX)
            line, self.buf = self.buf[:cut], self.buf[cut:]
            text = _json.encode_basestring_ascii(line.decode("utf-8", "replace"))
            records.append(f'{{"log": {text}, "stream": "{self.stream}", "time": "{t}"}}')
            if not self.buf:
                break
        if records:
            self.log_fd.write(("\n".join(records) + "\n").encode())


class _LogFile:
    """container.log with docker json-file's rotation: past max_size it becomes .1 (.1 becomes .2,
    ... up to max_file - 1 kept); with max_file 1 it is truncated. Shared by a monitor's pumps."""

    def __init__(self, path: str, max_size: int | None, max_file: int) -> None:
        self.path, self.max_size, self.max_file = path, max_size, max(1, int(max_file))
        self.fd: int | None = None
        self.size = 0
        self._open()

    def _open(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size

    def write(self, data: bytes) -> None:
        """data: whole json lines. Rotation happens between lines, never inside one."""
        if self.fd is None:
            return
        if self.max_size and self.size + len(data) > self.max_size:
            start = 0
            while start < len(data):  # as many whole lines as fit, then rotate
                end = start
                while True:
                    nl = data.find(b"\n", end) + 1 or len(data)
                    if end > start and self.size + nl - start > self.max_size:
                        break
                    end = nl
                    if end >= len(data):
                        break
                if self.size and self.size + end - start > self.max_size:
                    self._rotate()
                os.write(self.fd, data[start:end])
                self.size += end - start
                start = end
            return
        os.write(self.fd, data)
        self.size += len(data)

    def _rotate(self) -> None:
        if self.max_file == 1:
            os.ftruncate(self.fd, 0)
            self.size = 0
            return
        os.close(self.fd)
        for n in range(self.max_file - 1, 0, -1):
            src = self.path if n == 1 else f"{self.path}.{n - 1}"
            try:
                os.rename(src, f"{self.path}.{n}")
            except FileNotFoundError:
                pass
        self._open()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
