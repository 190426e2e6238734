"""Names and quantities in Kubernetes' syntax: DNS-1123 labels and subdomains, IANA port names,
label values, memory in binary units (kompose wrote bytes: its #2042) and CPU in millicores."""

from __future__ import annotations

import math
import re

from composer.errors import ConfigError

LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # DNS-1123 label, max 63
SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # max 253
PORT_NAME_RE = re.compile(r"^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # IANA_SVC_NAME, max 15
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")  # max 63
QUALIFIED_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                              r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
CONFIGMAP_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")


def dns_label(text: str, limit: int = 63) -> str:
    """A compose name as a DNS-1123 label: lowercase, `_` and `.` as `-`, at most `limit` characters."""
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    out = re.sub(r"-{2,}", "-", out)[:limit].strip("-")
    if not out:
        raise ConfigError(f"{text!r} cannot be made a Kubernetes name (no letters or digits)")
    return out


def is_label(text: str) -> bool:
    return len(text) <= 63 and bool(LABEL_RE.match(text))


def is_subdomain(text: str) -> bool:
    return len(text) <= 253 and bool(SUBDOMAIN_RE.match(text))


def is_label_value(text: str) -> bool:
    return len(text) <= 63 and bool(LABEL_VALUE_RE.match(text))


def is_qualified_key(text: str) -> bool:
    prefix, _, name = text.rpartition("/")
    return len(name) <= 63 and len(prefix) <= 253 and bool(QUALIFIED_KEY_RE.match(text))


def port_name(target: int, protocol: str, given: str | None = None) -> str:
    """The port's own name when it is a valid IANA service name, else `<protocol>-<port>`."""
    if given:
        name = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]+", "-", given.lower())).strip("-")[:15].strip("-")
        if PORT_NAME_RE.match(name):
            return name
    return f"{protocol.lower()}-{target}"


def memory(size: int) -> str:
    """Bytes in the largest binary unit that divides them exactly: 536870912 -> 512Mi."""
    for suffix, factor in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{suffix}"
    return str(size)


def cpu(cpus: float) -> str:
    """Cores as Kubernetes writes them: 2 -> "2", 0.5 -> "500m" (millicores, rounded up)."""
    milli = math.ceil(round(cpus * 1000, 6))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def seconds(value: float | None, default: int, minimum: int = 1) -> int:
    """A duration in whole seconds (probes and grace periods count seconds), rounded up."""
    if value is None:
        return default
    return max(minimum, math.ceil(value))
