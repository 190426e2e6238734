"""Sizes and durations as docker and the compose spec write them. Shared by the CLI flags
(`-m 32m`), the stack file (`mem_limit: 1g`, `interval: 1m30s`) and the runtime's messages."""

from __future__ import annotations

from composer.errors import UsageError

# Patterns compiled where they are used (re caches them): `ps` formats durations and must not pay
# for importing re (~7 ms), nor signal (enum) for parse_signal.
_SIZE_RE = r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$"
_SIZE_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

_DUR_RE = r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)"
_DUR_MULT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_size(value: str | int | float, *, what: str = "size") -> int:
    """'32m', '1g', '512k', '1024', '1.5GiB' -> bytes (binary multiples, as docker)."""
    if isinstance(value, bool):
        raise UsageError(f"invalid {what}: {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise UsageError(f"invalid {what}: {value!r} (must not be negative)")
        return int(value)
    import re

    m = re.match(_SIZE_RE, str(value), re.IGNORECASE)
    if not m:
        raise UsageError(f"invalid {what}: {value!r} (expected a number with an optional unit b, k, m, g)")
    number, unit, _ = m.groups()
    return int(float(number) * _SIZE_MULT[unit.lower()])


def parse_duration(value: str | int | float, *, what: str = "duration") -> float:
    """'1m30s', '10s', '500ms', 5 -> seconds. A bare number means seconds."""
    if isinstance(value, bool):
        raise UsageError(f"invalid {what}: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    import re

    for m in re.finditer(_DUR_RE, text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DUR_MULT[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise UsageError(f"invalid {what}: {value!r} (expected e.g. 10s, 1m30s, 500ms)")
    return total


def format_size(n: int) -> str:
    """Bytes -> '32 MiB' for messages."""
    for unit, mult in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= mult and n % (mult // 1024 or 1) == 0 or n >= mult * 10:
            value = n / mult
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"


def format_duration(seconds: float) -> str:
    """Seconds -> 'About a minute' style used in `ps` status, as docker prints it."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s < 60:
        return f"{s} second{'s' if s != 1 else ''}"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    return f"{h // 24} days"


def parse_signal(name: str | int | None) -> int:
    """'SIGTERM', 'term', '15', None (= SIGTERM) -> the signal number, as docker reads stop signals."""
    import signal

    if name is None or name == "":
        return int(signal.SIGTERM)
    text = str(name).upper()
    if text.isdigit():
        return int(text)
    try:
        return int(getattr(signal, text if text.startswith("SIG") else "SIG" + text))
    except AttributeError:
        raise UsageError(f"invalid signal: {name}") from None
