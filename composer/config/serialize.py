"""The model -> the canonical document `docker compose config` prints (long syntax, sorted), and the
per-service config hash the orchestrator uses to decide what to recreate."""

from __future__ import annotations

import json
from typing import Any

from composer.config import model as m

# Fields that change how many containers or in which order, not what a container is.
# (`develop` drives `watch` and `attach` the attached display: changing either recreates nothing.)
_HASH_EXCLUDE = frozenset({"scale", "depends_on", "profiles", "build", "extensions", "develop", "attach"})


def _fmt_duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    out, rest = "", ns
    for unit, size in (("h", 3600 * 10**9), ("m", 60 * 10**9)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    if rest:
        if rest % 10**9 == 0:
            out += f"{rest // 10**9}s"
        elif rest >= 10**9:
            out += f"{rest / 1e9:g}s"
        elif rest % 10**6 == 0:
            out += f"{rest // 10**6}ms"
        else:
            out += f"{rest / 1e6:g}ms"
    return out


def _clean(d: dict) -> dict:
    """Drop None, empty collections and False flags, as compose's omitempty does."""
    return {k: v for k, v in d.items() if v is not None and v is not False and v != () and v != {} and v != []}


def _map(fm: Any) -> dict:
    return {k: v for k, v in fm.items()}


def port_dict(p: m.ServicePort) -> dict:
    return _clean({"mode": p.mode, "host_ip": p.host_ip, "target": p.target, "published": p.published,
                   "protocol": p.protocol, "name": p.name, "app_protocol": p.app_protocol})


def volume_dict(v: m.ServiceVolume) -> dict:
    d: dict[str, Any] = {"type": v.type, "source": v.source, "target": v.target, "read_only": v.read_only,
                         "consistency": v.consistency}
    if v.type == "bind":
        d["bind"] = _clean({"propagation": v.propagation, "create_host_path": v.create_host_path,
                            "selinux": v.selinux})
    elif v.type == "volume":
        d["volume"] = _clean({"nocopy": v.nocopy, "subpath": v.subpath})
        if v.selinux:  # `data:/data:z`: compose keeps the relabel option under `bind` for named volumes too
            d["bind"] = {"selinux": v.selinux}
    elif v.type == "tmpfs":
        d["tmpfs"] = _clean({"size": v.tmpfs_size, "mode": v.tmpfs_mode})
    return _clean(d)


def service_dict(s: m.Service) -> dict:
    d: dict[str, Any] = {}
    for f in m.Service.__dataclass_fields__:
        if f in ("name", "extensions"):
            continue
        v = getattr(s, f)
        if f == "environment":
            v = {k: val for k, val in v}
        elif f == "ports":
            v = [port_dict(p) for p in v]
        elif f == "volumes":
            v = [volume_dict(x) for x in v]
        elif f == "depends_on":
            v = {k: _clean({"condition": d_.condition, "required": d_.required, "restart": d_.restart})
                 | {"required": d_.required} for k, d_ in v.items()}
        elif f == "networks":
            v = {k: (_clean(_net(n)) or None) for k, n in v.items()}
        elif f == "links":
            v = [a if a == b else f"{a}:{b}" for a, b in v]
        elif f in ("stop_grace_period",):
            v = _fmt_duration(v)
        elif f == "healthcheck" and v is not None:
            v = _clean({"test": list(v.test), "interval": _fmt_duration(v.interval),
                        "timeout": _fmt_duration(v.timeout), "start_period": _fmt_duration(v.start_period),
                        "start_interval": _fmt_duration(v.start_interval), "retries": v.retries,
                        "disable": v.disable})
        elif f == "develop" and v is not None:  # `where` is for messages, not the file
            v = {"watch": [_watch_rule(r) for r in v.watch]}
        elif f == "deploy" and v is not None:
            v = _deploy(v)
        elif f == "build" and v is not None:
            v = _clean({k: _plain(getattr(v, k)) if k not in ("ulimits", "secrets") else
                        (_ulimits(getattr(v, k)) if k == "ulimits" else
                         [_clean({"source": r.source, "target": r.target, "uid": r.uid, "gid": r.gid, "mode": r.mode})
                          for r in v.secrets])
                        for k in m.Build.__dataclass_fields__ if k != "extensions"}) \
                | {k: m.thaw(x) for k, x in v.extensions.items()}
        elif f in ("configs", "secrets"):
            v = [_clean({"source": r.source, "target": r.target, "uid": r.uid, "gid": r.gid, "mode": r.mode})
                 for r in v]
        elif f == "ulimits":
            v = _ulimits(v)
        elif f == "attach":
            v = None if v else False  # printed only when false, as compose does
        elif f in ("post_start", "pre_stop"):
            v = [_clean({"command": list(h.command), "user": h.user, "privileged": h.privileged,
                         "working_dir": h.working_dir, "environment": m.thaw(h.environment)}) for h in v]
        else:
            v = _plain(v)
        d[f] = v
    out = _clean(d)
    if s.attach is False:
        out["attach"] = False
    if "networks" in out:
        out["networks"] = {k: v for k, v in out["networks"].items()}
    elif s.networks:  # networks with no options still print: `networks: {default: null}`
        out["networks"] = {k: None for k in s.networks}
    out.update({k: m.thaw(v) for k, v in s.extensions.items()})
    return out


def _watch_rule(r: m.WatchRule) -> dict:
    d = {k: x for k, x in _plain(r).items() if k != "where"}
    if r.exec is not None and r.exec.environment:
        d["exec"]["environment"] = dict(r.exec.environment)
    return d


def _ulimits(v: Any) -> dict:
    return {k: (u.soft if u.soft == u.hard else {"soft": u.soft, "hard": u.hard}) for k, u in v.items()}


def _net(n: m.ServiceNetwork) -> dict:
    return {"aliases": list(n.aliases), "ipv4_address": n.ipv4_address, "ipv6_address": n.ipv6_address,
            "mac_address": n.mac_address, "priority": n.priority, "link_local_ips": list(n.link_local_ips),
            "driver_opts": m.thaw(n.driver_opts), "gw_priority": n.gw_priority, "interface_name": n.interface_name}


def _deploy(dp: m.Deploy) -> dict:
    def spec(r: m.ResourceSpec | None) -> dict | None:
        if r is None:
            return None
        return _clean({"cpus": r.cpus, "memory": r.memory, "pids": r.pids, "devices": m.thaw(r.devices),
                       "generic_resources": m.thaw(r.generic_resources)})
    rp = dp.restart_policy
    return _clean({
        "mode": dp.mode, "replicas": dp.replicas,
        "resources": _clean({"limits": spec(dp.limits), "reservations": spec(dp.reservations)}),
        "restart_policy": None if rp is None else _clean({
            "condition": rp.condition, "delay": _fmt_duration(rp.delay), "max_attempts": rp.max_attempts,
            "window": _fmt_duration(rp.window)}),
        "labels": _map(dp.labels), **m.thaw(dp.extras)})


def _plain(v: Any) -> Any:
    if isinstance(v, m.FrozenMap):
        return m.thaw(v)
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if hasattr(v, "__dataclass_fields__"):
        return _clean({k: _plain(getattr(v, k)) for k in v.__dataclass_fields__})
    return v


def _printed(d: dict) -> dict:
    """What `config` prints of a service: env files are already read into `environment` (compose drops the
    key too; printing an optional missing one would make the output refuse to load)."""
    d.pop("env_file", None)
    hc = d.get("healthcheck")
    if isinstance(hc, dict) and hc.get("test") == ["NONE"]:
        hc.pop("disable", None)  # `test: [NONE]` says it already, as compose prints it
    # the schema wants deploy's memory as a string (digits of bytes, as compose prints it); the config hash
    # keeps the number, so containers made before this change are not recreated for it
    for spec in ((d.get("deploy") or {}).get("resources") or {}).values():
        if isinstance(spec, dict) and isinstance(spec.get("memory"), int):
            spec["memory"] = str(spec["memory"])
    return d


def project_dict(p: m.Project) -> dict:
    out: dict[str, Any] = {"name": p.name, "services": {n: _printed(service_dict(s)) for n, s in sorted(p.services.items())}}
    nets = {}
    for k, n in p.networks.items():
        nets[k] = _clean({"name": n.name, "driver": n.driver, "driver_opts": _map(n.driver_opts),
                          "internal": n.internal, "external": n.external, "attachable": n.attachable,
                          "enable_ipv6": n.enable_ipv6,
                          "ipam": _clean({"driver": n.ipam_driver, "config": [_plain(c) for c in n.ipam]}),
                          "labels": _map(n.labels)}) | m.thaw(n.extensions)
        if n.enable_ipv4 is not None:  # printed when given, false included
            nets[k]["enable_ipv4"] = n.enable_ipv4
    vols = {k: _clean({"name": v.name, "driver": v.driver, "driver_opts": _map(v.driver_opts),
                       "external": v.external, "labels": _map(v.labels)}) | m.thaw(v.extensions)
            for k, v in p.volumes.items()}
    for key, objs in (("networks", nets), ("volumes", vols)):
        if objs:
            out[key] = objs
    for key, objs in (("configs", p.configs), ("secrets", p.secrets)):
        if objs:
            out[key] = {k: _plain(o) for k, o in objs.items()}
            for v in out[key].values():
                v.pop("key", None)
    if p.models:
        out["models"] = {k: m.thaw(v) for k, v in p.models.items()}
    out.update(m.thaw(p.extensions))
    return out


def escape_dollars(value: Any) -> Any:
    """Every `$` of an interpolated document written as `$$`, so that printed output loads again with the
    same meaning (`sh -c "echo $$HOSTNAME"` stays a literal `$HOSTNAME`), as docker compose prints it."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_dollars(v) for v in value]
    return value


def config_hash(service: m.Service) -> str:
    """sha256 of the normalised service without scale/replicas, depends_on, profiles and build:
    stable across runs, key order and file layout."""
    blob = json.dumps(_hashed(service), sort_keys=True, separators=(",", ":"), default=str)
    import hashlib  # here: `down` and `ps` hash nothing (~2 ms of imports)

    return hashlib.sha256(blob.encode()).hexdigest()


def config_key_hashes(service: m.Service) -> str:
    """What config_hash covers, key by key: "command:1a2b3c4d environment:..." (8 hex digits of
    each key's sha256), so that a later `up` can say which keys changed (changed_keys). No `,` or
    `=`: docker's label listings join `k=v` pairs with commas."""
    import hashlib

    def short(value: object) -> str:
        blob = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:8]

    return " ".join(f"{k}:{short(v)}" for k, v in sorted(_hashed(service).items()))


def changed_keys(before: str, service: m.Service) -> list[str]:
    """The top-level keys whose hash differs from `before` (a config_key_hashes text; [] when it is
    not one: then nothing can be said key by key)."""
    if not all(":" in item and "=" not in item for item in before.split()):
        return []
    old = dict(item.partition(":")[::2] for item in before.split())
    new = dict(item.partition(":")[::2] for item in config_key_hashes(service).split())
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def _hashed(service: m.Service) -> dict:
    d = service_dict(service)
    for k in _HASH_EXCLUDE:
        d.pop(k, None)
    if isinstance(d.get("deploy"), dict):
        d["deploy"] = {k: v for k, v in d["deploy"].items() if k != "replicas"}
    d["name"] = service.name
    return d
