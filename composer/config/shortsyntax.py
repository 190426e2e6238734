"""Short syntax -> long syntax for ports and volumes. Raises ValueError with a short message;
the normaliser adds the location."""

from __future__ import annotations

import os
from typing import Any

from composer.config.model import ServicePort, ServiceVolume

_PROTOCOLS = ("tcp", "udp", "sctp")
_PROPAGATION = frozenset({"shared", "rshared", "slave", "rslave", "private", "rprivate"})


def _port_range(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise ValueError(f"invalid port {text!r}") from None
    for n in (a, b):
        if not 1 <= n <= 65535:
            raise ValueError(f"port {n} out of range (1-65535)")
    if b < a:
        raise ValueError(f"invalid port range {text!r}")
    return a, b


def parse_port(value: Any) -> list[ServicePort]:
    """'127.0.0.1:8080:80/udp', '8000-8010:8000-8010', 3000, '[::1]:6001:6001', or the long form."""
    if isinstance(value, dict):
        return [_long_port(value)]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"invalid port {value!r}")
    text = str(value).strip()
    spec, _, protocol = text.partition("/")
    protocol = protocol or "tcp"
    if protocol not in _PROTOCOLS:
        raise ValueError(f"invalid protocol {protocol!r} in port {text!r}")
    host_ip = None
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0 or spec[end + 1:end + 2] != ":":
            raise ValueError(f"invalid port {text!r}")
        host_ip, spec = spec[1:end], spec[end + 2:]
        parts = spec.split(":")
        if len(parts) == 1:
            parts = ["", parts[0]]
    else:
        parts = spec.split(":")
        if len(parts) > 3:  # an unbracketed IPv6 address: the last two fields are ports
            host_ip, parts = ":".join(parts[:-2]), parts[-2:]
        elif len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
    if host_ip == "":
        host_ip = None
    published = parts[0] if len(parts) == 2 else ""
    t_lo, t_hi = _port_range(parts[-1])
    if not published:
        return [ServicePort(target=t, host_ip=host_ip, protocol=protocol) for t in range(t_lo, t_hi + 1)]
    p_lo, p_hi = _port_range(published)
    if t_lo == t_hi:
        return [ServicePort(target=t_lo, published=published, host_ip=host_ip, protocol=protocol)]
    if p_hi - p_lo != t_hi - t_lo:
        raise ValueError(f"port ranges in {text!r} differ in length")
    return [ServicePort(target=t_lo + i, published=str(p_lo + i), host_ip=host_ip, protocol=protocol)
            for i in range(t_hi - t_lo + 1)]


def _long_port(d: dict) -> ServicePort:
    target = d.get("target")
    try:
        target_n = int(target)
    except (TypeError, ValueError):
        raise ValueError(f"invalid port target {target!r}") from None
    if not 1 <= target_n <= 65535:
        raise ValueError(f"port {target_n} out of range (1-65535)")
    published = d.get("published")
    if published is not None and published != "":
        published = str(published)
        _port_range(published)
    else:
        published = None
    protocol = d.get("protocol") or "tcp"
    if protocol not in _PROTOCOLS:
        raise ValueError(f"invalid protocol {protocol!r}")
    return ServicePort(target=target_n, published=published, host_ip=d.get("host_ip") or None,
                       protocol=protocol, mode=d.get("mode") or "ingress", name=d.get("name"),
                       app_protocol=d.get("app_protocol"))


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or (len(source) > 1 and source[1] == ":" and source[0].isalpha())


def absolute(path: str, base: str | None) -> str:
    """Relative to the project dir, with `~` expanded; base None: as written (`--no-path-resolution`)."""
    if base is None:
        return path
    path = os.path.expanduser(path)
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))


def parse_volume(value: Any, base: str) -> ServiceVolume:
    """'./data:/srv:ro', 'named:/data', '/anon', '~/x:/x:z', or the long form."""
    if isinstance(value, dict):
        return _long_volume(value, base)
    if not isinstance(value, str) or not value:
        raise ValueError(f"invalid volume {value!r}")
    parts = value.split(":")
    if len(parts) > 1 and len(parts[0]) == 1 and parts[0].isalpha():  # C:\...
        parts = [parts[0] + ":" + parts[1]] + parts[2:]
    if len(parts) == 1:
        return ServiceVolume(type="volume", target=clean_target(parts[0]))
    if len(parts) > 3:
        raise ValueError(f"invalid volume {value!r}: too many colons")
    source, target = parts[0], parts[1]
    if not target.startswith("/"):
        raise ValueError(f"invalid volume {value!r}: the target must be an absolute path")
    opts = parts[2].split(",") if len(parts) == 3 else []
    read_only, selinux, nocopy, propagation = False, None, False, None
    for opt in opts:
        if opt == "ro":
            read_only = True
        elif opt == "rw":
            read_only = False
        elif opt in ("z", "Z"):
            selinux = opt
        elif opt == "nocopy":
            nocopy = True
        elif opt in _PROPAGATION:
            propagation = opt
        elif opt not in ("", "consistent", "cached", "delegated"):
            raise ValueError(f"invalid volume mode {opt!r} in {value!r}")
    target = clean_target(target)
    if _is_path(source):  # the short syntax creates a missing source directory, as docker always did
        return ServiceVolume(type="bind", source=absolute(source, base), target=target, read_only=read_only,
                             selinux=selinux, propagation=propagation, create_host_path=True)
    return ServiceVolume(type="volume", source=source, target=target, read_only=read_only, nocopy=nocopy,
                         selinux=selinux)


def clean_target(target: str) -> str:
    """`/data/` and `/data` are one mount point (merges compare them: a later file's replaces the earlier)."""
    import posixpath

    return posixpath.normpath(target) if target.startswith("/") else target


def _long_volume(d: dict, base: str) -> ServiceVolume:
    from composer.units import parse_size

    vtype = d.get("type") or "volume"
    target = d.get("target")
    if not isinstance(target, str) or not target:
        raise ValueError("a volume needs a target")
    source = d.get("source")
    if vtype == "bind":
        if not source:
            raise ValueError("a bind mount needs a source")
        source = absolute(str(source), base)
    bind = d.get("bind") or {}
    vol = d.get("volume") or {}
    tmpfs = d.get("tmpfs") or {}
    size = tmpfs.get("size")
    mode = tmpfs.get("mode")
    return ServiceVolume(
        type=vtype, target=clean_target(target), source=source if source else None,
        read_only=bool(d.get("read_only", False)), consistency=d.get("consistency"),
        # the long syntax refuses a missing source unless asked to create it (compose's default: false)
        create_host_path=bool(bind.get("create_host_path", False)), propagation=bind.get("propagation"),
        selinux=bind.get("selinux"), nocopy=bool(vol.get("nocopy", False)), subpath=vol.get("subpath"),
        tmpfs_size=parse_size(size, what="tmpfs size") if size is not None else None,
        tmpfs_mode=int(str(mode), 8) if isinstance(mode, str) else mode,
    )
