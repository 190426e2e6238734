"""What a schema cannot check in a set of manifests: names in DNS-1123/1035 syntax, selectors that
match their pod templates, Services whose target ports the selected containers declare, and every
ConfigMap, Secret, claim, ServiceAccount and Service referenced made (or declared external). The
tests run it over every conversion; it returns problems, one line each."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from composer.convert.naming import PORT_NAME_RE, is_label, is_label_value, is_qualified_key, is_subdomain

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
_WAIT_RE = re.compile(r"until (?:nslookup|nc -w 2) ([a-z0-9-]+)")


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]


def check(objects: Sequence[dict[str, Any]], external: Iterable[tuple[str, str]] = ()) -> list[str]:
    problems: list[str] = []
    have = {(o["kind"], o["metadata"]["name"]) for o in objects} | set(external)

    def need(kind: str, name: str, where: str) -> None:
        if (kind, name) not in have:
            problems.append(f"{where}: {kind} {name!r} does not exist")

    for o in objects:
        kind, name = o["kind"], o["metadata"]["name"]
        where = f"{kind}/{name}"
        ok = (is_label(name) and name[0].isalpha()) if kind in ("Service", "Namespace") else is_subdomain(name)
        if kind in ("StatefulSet", "Job", "DaemonSet", "Deployment") and not is_label(name):
            ok = False  # their pods' hostnames and labels carry the name
        if not ok:
            problems.append(f"{where}: invalid name")
        for key, value in o["metadata"].get("labels", {}).items():
            if not (is_qualified_key(key) and is_label_value(value)):
                problems.append(f"{where}: invalid label {key}={value!r}")
        if kind in WORKLOADS:
            problems += _check_workload(o, where, need)
        if kind == "Service":
            problems += _check_service(o, where, objects)
        if kind == "ConfigMap":
            keys = list(o.get("data", {})) + list(o.get("binaryData", {}))
            if len(keys) != len(set(keys)):
                problems.append(f"{where}: a key is in both data and binaryData")
    return problems


def _check_workload(o: dict[str, Any], where: str, need: Any) -> list[str]:
    problems = []
    template = _pod(o)
    labels = template["metadata"].get("labels", {})
    selector = o["spec"].get("selector", {}).get("matchLabels")
    if o["kind"] != "Job":
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            problems.append(f"{where}: selector {selector} does not match the template's labels {labels}")
    if o["kind"] == "StatefulSet":
        need("Service", o["spec"]["serviceName"], where)
    spec = template["spec"]
    if spec.get("serviceAccountName"):
        need("ServiceAccount", spec["serviceAccountName"], where)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    if len(volumes) != len(spec.get("volumes", [])):
        problems.append(f"{where}: two volumes share a name")
    for v in volumes.values():
        if not is_label(v["name"]):
            problems.append(f"{where}: invalid volume name {v['name']!r}")
        if "configMap" in v:
            need("ConfigMap", v["configMap"]["name"], where)
        if "secret" in v:
            need("Secret", v["secret"]["secretName"], where)
        if "persistentVolumeClaim" in v:
            need("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"], where)
    containers = spec["containers"] + spec.get("initContainers", [])
    names = [c["name"] for c in containers]
    if len(names) != len(set(names)):
        problems.append(f"{where}: two containers share a name")
    for c in containers:
        if not is_label(c["name"]):
            problems.append(f"{where}: invalid container name {c['name']!r}")
        paths = [m["mountPath"] for m in c.get("volumeMounts", [])]
        if len(paths) != len(set(paths)):
            problems.append(f"{where}: container {c['name']} mounts two volumes at one path")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problems.append(f"{where}: container {c['name']} mounts undeclared volume {m['name']!r}")
        for ref in c.get("envFrom", []):
            if "configMapRef" in ref:
                need("ConfigMap", ref["configMapRef"]["name"], where)
        ports = [p.get("name") for p in c.get("ports", [])]
        for p in ports:
            if p is not None and not (len(p) <= 15 and PORT_NAME_RE.match(p)):
                problems.append(f"{where}: invalid port name {p!r}")
        if len(ports) != len(set(ports)):
            problems.append(f"{where}: two ports share a name")
        command = " ".join(c.get("command", []))
        for target in _WAIT_RE.findall(command):
            need("Service", target, f"{where} (init container {c['name']})")
        if command.startswith("kubectl wait"):
            need("Job", command.split("job/")[1].split()[0], f"{where} (init container {c['name']})")
    return problems


def _check_service(o: dict[str, Any], where: str, objects: Sequence[dict[str, Any]]) -> list[str]:
    problems = []
    selector = o["spec"].get("selector") or {}
    chosen = [w for w in objects if w["kind"] in WORKLOADS and selector
              and all(_pod(w)["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())]
    if not chosen:
        return [f"{where}: its selector {selector} matches no workload's pods"]
    ports = o["spec"].get("ports", [])
    if not ports and o["spec"].get("clusterIP") != "None":
        problems.append(f"{where}: no ports and not headless")
    for p in ports:
        for w in chosen:
            declared = {(q.get("name"), q["containerPort"], q.get("protocol", "TCP"))
                        for c in _pod(w)["spec"]["containers"] for q in c.get("ports", [])}
            target = p.get("targetPort", p["port"])
            if not any((target == n if isinstance(target, str) else target == num) and proto == p.get("protocol", "TCP")
                       for n, num, proto in declared):
                problems.append(f"{where}: port {p['port']} targets {target!r}, which {w['kind']}/"
                                f"{w['metadata']['name']} does not declare")
    return problems
