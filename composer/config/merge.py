"""Merging stack files (several `-f`, the override file, `extends`) by the compose specification:
mappings merge recursively, sequences append, a few keys replace, some sequences de-duplicate by
their target, `environment`/`labels`/... merge key by key in either list or map form, and the
`!reset` / `!override` tags remove or replace what came before."""

from __future__ import annotations

from typing import Any

from composer.config.yamlsrc import Override, Reset

# Keys of a service whose value replaces, never merges.
_REPLACE = frozenset({"command", "entrypoint", "image", "build.context"})
# Service keys given as a list of KEY=VALUE or a map: merged key by key.
_KV = frozenset({"environment", "labels", "sysctls", "annotations", "build.args", "build.labels",
                 "deploy.labels", "logging.options", "driver_opts"})
# Sequences de-duplicated by a derived key (the later file's entry wins).
_UNIQUE = {
    "ports": lambda p: _port_key(p),
    "expose": lambda v: str(v),
    "volumes": lambda v: _volume_target(v),
    "secrets": lambda v: _ref_key(v),
    "configs": lambda v: _ref_key(v),
    "dns": lambda v: v,
    "extra_hosts": lambda v: v,
    "dns_search": lambda v: v,
    "dns_opt": lambda v: v,
    "cap_add": lambda v: v,
    "cap_drop": lambda v: v,
    "security_opt": lambda v: v,
    "profiles": lambda v: v,
    "tmpfs": lambda v: v,
    "devices": lambda v: v if isinstance(v, str) else repr(v),
    "volumes_from": lambda v: v,
    "links": lambda v: v,
    "external_links": lambda v: v,
    "env_file": lambda v: v if isinstance(v, str) else (v.get("path") if isinstance(v, dict) else repr(v)),
}


def merge_services(base: Any, over: Any) -> Any:
    """Merge one service definition over another."""
    return _merge(base, over, "")


def merge_documents(base: dict, over: dict) -> dict:
    """Merge a whole later document over an earlier one."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Reset):
            out.pop(key, None)
        elif isinstance(value, Override):
            out[key] = value.value
        elif key == "services" and isinstance(value, dict) and isinstance(out.get(key), dict):
            services = dict(out[key])
            for name, svc in value.items():
                if isinstance(svc, Reset):
                    services.pop(name, None)
                elif isinstance(svc, Override) or name not in services:
                    services[name] = svc.value if isinstance(svc, Override) else svc
                else:
                    services[name] = merge_services(services[name], svc)
            out[key] = services
        elif key in ("networks", "volumes", "configs", "secrets") and isinstance(value, dict) \
                and isinstance(out.get(key), dict):
            objs = dict(out[key])
            for name, obj in value.items():
                objs[name] = _merge(objs.get(name), obj, "object") if name in objs else obj
            out[key] = objs
        elif key in out:
            out[key] = _merge(out[key], value, "")
        else:
            out[key] = value
    return out


def _merge(base: Any, over: Any, path: str) -> Any:
    if isinstance(over, Reset):
        return None
    if isinstance(over, Override):
        return over.value
    if base is None or path in _REPLACE:
        return over
    key = path.rsplit(".", 1)[-1] if path else ""
    if path in _KV or key in ("labels", "environment", "args", "options", "driver_opts"):
        if _is_kv(base) and _is_kv(over):
            return _merge_kv(base, over)
    if path == "depends_on":
        return _merge_dicts(_depends_map(base), _depends_map(over), path)
    if path == "networks" and (isinstance(base, list) or isinstance(over, list)):
        return _merge_dicts(_list_to_map(base), _list_to_map(over), path)
    if path == "healthcheck.test" or path == "ulimits" and not isinstance(over, dict):
        return over
    if path == "build" and (isinstance(base, str) or isinstance(over, str)):
        base = {"context": base} if isinstance(base, str) else base
        over = {"context": over} if isinstance(over, str) else over
    if path == "env_file" or path in _UNIQUE:
        base = [base] if isinstance(base, (str, dict)) else base
        over = [over] if isinstance(over, (str, dict)) else over
    if isinstance(base, dict) and isinstance(over, dict):
        return _merge_dicts(base, over, path)
    if isinstance(base, list) and isinstance(over, list):
        if path in _UNIQUE:
            return _merge_unique(base, over, _UNIQUE[path])
        return base + [v for v in over if not isinstance(v, Reset)]
    return over


def _merge_dicts(base: dict, over: dict, path: str) -> dict:
    out = dict(base)
    for k, v in over.items():
        sub = f"{path}.{k}" if path else k
        if path in ("depends_on", "networks", "ulimits", "object"):
            sub = {"depends_on": "depends_on.*", "networks": "networks.*", "ulimits": "ulimits.*",
                   "object": k}[path]
        if isinstance(v, Reset):
            out.pop(k, None)
        elif k in out:
            out[k] = _merge(out[k], v, sub)
        else:
            out[k] = v.value if isinstance(v, Override) else v
    return out


def _merge_unique(base: list, over: list, keyfn) -> list:
    out: dict[Any, Any] = {}
    for item in base + over:
        if isinstance(item, Reset):
            continue
        try:
            k = keyfn(item)
        except Exception:  # malformed entries are the validator's business, keep them all
            k = ("#", len(out))
        if isinstance(k, (dict, list)):
            k = repr(k)
        out[k] = item  # a later entry for the same target takes the earlier one's place, as compose does
    return list(out.values())


def _is_kv(v: Any) -> bool:
    return isinstance(v, (dict, list))


def kv_to_dict(v: Any) -> dict:
    """`[A=1, B]` or `{A: 1, B: null}` -> {"A": "1", "B": None}."""
    if isinstance(v, dict):
        return dict(v)
    out: dict[str, Any] = {}
    for item in v or []:
        s = str(item)
        k, sep, val = s.partition("=")
        out[k] = val if sep else None
    return out


def _merge_kv(base: Any, over: Any) -> dict:
    out = kv_to_dict(base)
    for k, v in kv_to_dict(over).items():
        if isinstance(v, Reset):
            out.pop(k, None)
        else:
            out[k] = v
    return out


def _depends_map(v: Any) -> dict:
    if isinstance(v, list):
        return {str(s): {"condition": "service_started", "required": True} for s in v}
    return v if isinstance(v, dict) else {}


def _list_to_map(v: Any) -> dict:
    if isinstance(v, list):
        return {str(s): None for s in v}
    return v if isinstance(v, dict) else {}


def _port_key(p: Any) -> Any:
    if isinstance(p, dict):
        return (p.get("host_ip"), str(p.get("published")), str(p.get("target")), p.get("protocol", "tcp"))
    return str(p)


def _volume_target(v: Any) -> Any:
    from composer.config.shortsyntax import clean_target

    if isinstance(v, dict):
        t = v.get("target")
        return clean_target(t) if isinstance(t, str) else t
    return clean_target(_short_target(v))


def _short_target(v: Any) -> str:
    parts = str(v).split(":")
    if len(parts) >= 2 and len(parts[0]) == 1 and parts[0].isalpha():  # a Windows drive: C:\...
        parts = [parts[0] + ":" + parts[1]] + parts[2:]
    return parts[1] if len(parts) >= 2 else parts[0]


def _ref_key(v: Any) -> Any:
    if isinstance(v, dict):
        return v.get("target") or v.get("source")
    return v
