"""The resolved model as a file `docker stack deploy` takes: compose file format 3.9, the newest that
Debian's docker 20.10 reads, with everything the swarm's own loader cannot do already done here
(interpolation, extends, include, profiles, env_file, links) and every key a swarm would ignore or
refuse reported as an `Unmapped` item instead of being passed on to be dropped silently.

Works on the canonical dict of `composer config` (config.serialize), so a key added to the model is
reported as unmapped until this module learns it, never lost."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from composer.config import model as m
from composer.config.serialize import project_dict

VERSION = "3.9"

# Service keys a swarm service honours, passed through as composer normalised them.
_PASS = frozenset({
    "cap_add", "cap_drop", "command", "dns", "dns_search", "entrypoint", "expose", "extra_hosts",
    "hostname", "image", "init", "labels", "logging", "read_only", "stop_grace_period", "stop_signal",
    "sysctls", "tmpfs", "tty", "stdin_open", "ulimits", "user", "working_dir",
})
# Handled below (translated or folded into another key).
_TRANSLATED = frozenset({
    "build", "restart", "scale", "mem_limit", "mem_reservation", "cpus", "pids_limit", "deploy", "ports",
    "volumes", "networks", "healthcheck", "environment", "env_file", "configs", "secrets", "links",
    "depends_on", "profiles", "pull_policy",
})
# Why a swarm cannot honour a key (what `docker stack deploy` would print "Ignoring unsupported" for,
# or refuse, or that only one engine can do).
_REASONS = {
    "container_name": "a swarm names task containers itself",
    "network_mode": "swarm services join networks; use an overlay network",
    "privileged": "swarm services cannot be privileged",
    "devices": "swarm services cannot map devices",
    "device_cgroup_rules": "swarm services cannot map devices",
    "ipc": "swarm services cannot share an IPC namespace",
    "pid": "swarm services cannot share a PID namespace",
    "security_opt": "swarm services take no security options",
    "shm_size": "not settable on a swarm service",
    "userns_mode": "not settable on a swarm service",
    "cgroup_parent": "the swarm node chooses the cgroup",
    "cgroup": "not settable on a swarm service",
    "domainname": "not settable on a swarm service",
    "mac_address": "a swarm assigns addresses",
    "external_links": "containers outside the stack are not on its networks",
    "volumes_from": "share a named volume instead",
    "memswap_limit": "not settable on a swarm service",
    "cpu_shares": "use deploy.resources",
    "cpuset": "use deploy.resources",
    "oom_kill_disable": "not settable on a swarm service",
    "oom_score_adj": "not settable on a swarm service",
    "dns_opt": "not in the swarm's file format",
    "group_add": "not in the swarm's file format",
    "platform": "use deploy.placement.constraints (node.platform.arch)",
}


@dataclass(frozen=True)
class Unmapped:
    """A key the swarm will not honour: reported before anything is deployed."""

    service: str | None  # None: a top-level object
    key: str
    reason: str

    def __str__(self) -> str:
        where = f"service {self.service}" if self.service else "stack"
        return f"{where}: {self.key}: {self.reason}"


@dataclass(frozen=True)
class SwarmOptions:
    """Choices the compose file cannot express for a swarm."""

    publish_mode: str | None = None   # host | ingress: overrides every port's mode
    endpoint_mode: str | None = None  # vip | dnsrr: for services that do not set it
    images: Mapping[str, str] | None = None  # service -> pinned reference (pushed images)


def swarm_document(project: m.Project, opts: SwarmOptions = SwarmOptions()) -> tuple[dict, list[Unmapped]]:
    """(the stack file as a dict, what the swarm will not honour)."""
    canon = project_dict(project)
    notes: list[Unmapped] = []
    aliases = _link_aliases(project)
    services = {name: _service(name, body, project, opts, aliases.get(name, {}), notes)
                for name, body in canon["services"].items()}
    doc: dict[str, Any] = {"version": VERSION, "services": services}
    if nets := _networks(canon.get("networks", {}), project.name, notes):
        doc["networks"] = nets
    if vols := canon.get("volumes"):
        doc["volumes"] = {k: {x: y for x, y in v.items() if x in ("name", "driver", "driver_opts", "external", "labels")
                              and not (x == "name" and y == f"{project.name}_{k}" and not v.get("external"))}
                          for k, v in vols.items()}
    for kind in ("configs", "secrets"):
        if objs := canon.get(kind):
            doc[kind] = {k: _file_object(kind, k, v, notes) for k, v in objs.items()}
    return doc, notes


def _service(name: str, body: dict, project: m.Project, opts: SwarmOptions, aliases: dict[str, list[str]],
             notes: list[Unmapped]) -> dict:
    svc = project.services[name]
    out: dict[str, Any] = {k: v for k, v in body.items() if k in _PASS or k.startswith("x-")}
    for key in body:
        if key not in _PASS and key not in _TRANSLATED and not key.startswith("x-"):
            notes.append(Unmapped(name, key, _REASONS.get(key, "not in the swarm's file format")))
    image = (opts.images or {}).get(name) or svc.image
    if image:
        out["image"] = image
    if svc.environment:
        out["environment"] = {k: ("" if v is None else v) for k, v in svc.environment}
    deploy = _deploy(name, body.get("deploy") or {}, svc, opts, notes)
    if deploy:
        out["deploy"] = deploy
    if svc.healthcheck is not None:
        out["healthcheck"] = _healthcheck(name, body["healthcheck"], notes)
    if body.get("ports"):
        out["ports"] = [_port(name, p, opts, notes) for p in body["ports"]]
    if body.get("volumes"):
        out["volumes"] = [_mount(name, v, notes) for v in body["volumes"]]
    out["networks"] = _service_networks(body.get("networks") or {"default": None}, aliases)
    for kind in ("configs", "secrets"):
        if body.get(kind):
            out[kind] = [{k: v for k, v in ref.items() if k in ("source", "target", "uid", "gid", "mode")}
                         for ref in body[kind]]
    if svc.depends_on:
        # a swarm starts every service at once; a task that fails early is restarted by its policy
        waits = ", ".join(f"{dep} {d.condition.removeprefix('service_')}" for dep, d in sorted(svc.depends_on.items()))
        notes.append(Unmapped(name, "depends_on", f"a swarm starts all services at once, without waiting for {waits}"))
    if svc.pull_policy not in (None, "missing", "always"):
        notes.append(Unmapped(name, "pull_policy", "a swarm node pulls what it lacks"))
    return out


_RESTART = {"no": "none", "always": "any", "unless-stopped": "any", "on-failure": "on-failure"}


def _deploy(name: str, deploy: dict, svc: m.Service, opts: SwarmOptions, notes: list[Unmapped]) -> dict:
    out = {k: v for k, v in deploy.items()
           if k in ("mode", "replicas", "labels", "placement", "update_config", "rollback_config",
                    "restart_policy", "endpoint_mode", "resources")}
    for key in deploy:
        if key not in out:
            notes.append(Unmapped(name, f"deploy.{key}", "not in the swarm's file format"))
    if svc.scale is not None and "replicas" not in out:
        out["replicas"] = svc.scale
    if "restart_policy" not in out and svc.restart:
        policy, _, tries = svc.restart.partition(":")
        rp: dict[str, Any] = {"condition": _RESTART.get(policy, "any")}
        if tries:
            rp["max_attempts"] = int(tries)
        out["restart_policy"] = rp
        if policy == "unless-stopped":
            notes.append(Unmapped(name, "restart", "unless-stopped becomes condition any: a swarm restarts "
                                  "a task stopped by hand"))
    res = {k: dict(v) for k, v in (out.get("resources") or {}).items()}
    limits, reservations = res.setdefault("limits", {}), res.setdefault("reservations", {})
    if svc.mem_limit is not None:
        limits.setdefault("memory", svc.mem_limit)
    if svc.cpus is not None:
        limits.setdefault("cpus", svc.cpus)
    if svc.pids_limit is not None:
        limits.setdefault("pids", svc.pids_limit)
    if svc.mem_reservation is not None:
        reservations.setdefault("memory", svc.mem_reservation)
    for part in (limits, reservations):
        if "cpus" in part:
            part["cpus"] = _cpus(part["cpus"])  # 3.9 wants a string
    res = {k: v for k, v in res.items() if v}
    if res:
        out["resources"] = res
    else:
        out.pop("resources", None)
    if opts.endpoint_mode and "endpoint_mode" not in out:
        out["endpoint_mode"] = opts.endpoint_mode
    return out


def _cpus(value: Any) -> str:
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _healthcheck(name: str, hc: dict, notes: list[Unmapped]) -> dict:
    if "start_interval" in hc:
        notes.append(Unmapped(name, "healthcheck.start_interval", "not in the swarm's file format: "
                              "probes run every interval from the start"))
    return {k: v for k, v in hc.items() if k in ("test", "interval", "timeout", "retries", "start_period", "disable")}


def _port(name: str, port: dict, opts: SwarmOptions, notes: list[Unmapped]) -> dict:
    out = {k: v for k, v in port.items() if k in ("target", "published", "protocol", "mode")}
    if port.get("host_ip") not in (None, "", "0.0.0.0", "::"):
        notes.append(Unmapped(name, "ports.host_ip", f"a swarm publishes on every address, not only "
                              f"{port['host_ip']}"))
    if isinstance(out.get("published"), str):
        if "-" in out["published"]:
            notes.append(Unmapped(name, "ports.published", f"a range ({out['published']}) cannot be published "
                                  "by a swarm; the first port is used"))
        out["published"] = int(str(out["published"]).split("-")[0])
    if opts.publish_mode:
        out["mode"] = opts.publish_mode
    return out


def _mount(name: str, vol: dict, notes: list[Unmapped]) -> dict:
    keep = {"type", "source", "target", "read_only", "consistency"}
    out = {k: v for k, v in vol.items() if k in keep}
    if vol.get("type") == "bind":
        notes.append(Unmapped(name, "volumes", f"bind mount of {vol.get('source')}: the path must exist on "
                              "every node that may run the service"))
        if prop := (vol.get("bind") or {}).get("propagation"):
            out["bind"] = {"propagation": prop}
    elif vol.get("type") == "volume" and (vol.get("volume") or {}).get("nocopy"):
        out["volume"] = {"nocopy": True}
    elif vol.get("type") == "tmpfs" and (vol.get("tmpfs") or {}).get("size"):
        out["tmpfs"] = {"size": vol["tmpfs"]["size"]}
    return out


def _link_aliases(project: m.Project) -> dict[str, dict[str, list[str]]]:
    """Fig-style `links: [app:backend]`: a swarm has no links, so `backend` becomes a network alias of
    app on every network it shares with the linking service."""
    out: dict[str, dict[str, list[str]]] = {}
    for svc in project.services.values():
        for target, alias in svc.links:
            if alias == target or target not in project.services:
                continue
            shared = [n for n in svc.networks if n in project.services[target].networks] or ["default"]
            for net in shared:
                names = out.setdefault(target, {}).setdefault(net, [])
                if alias not in names:
                    names.append(alias)
    return out


def _service_networks(nets: dict, aliases: dict[str, list[str]]) -> dict:
    out: dict[str, Any] = {}
    for key, opts in nets.items():
        entry = {k: v for k, v in (opts or {}).items() if k in ("aliases", "ipv4_address", "ipv6_address")}
        extra = [a for a in aliases.get(key, []) if a not in entry.get("aliases", [])]
        if extra:
            entry["aliases"] = [*entry.get("aliases", []), *extra]
        out[key] = entry or None
    return out


def _networks(nets: dict, project_name: str, notes: list[Unmapped]) -> dict:
    out = {}
    for key, net in nets.items():
        entry = {k: v for k, v in net.items()
                 if k in ("name", "driver", "driver_opts", "internal", "external", "attachable", "ipam", "labels")}
        if not entry.get("external") and entry.get("name") == f"{project_name}_{key}":
            entry.pop("name")  # the swarm prefixes the stack's name itself
        if entry.get("driver") in ("bridge", "host", "none"):
            notes.append(Unmapped(None, f"networks.{key}.driver",
                                  f"{entry['driver']} is local to one machine: the swarm makes an overlay network"))
            entry.pop("driver")
            entry.pop("driver_opts", None)
        if net.get("enable_ipv6"):
            notes.append(Unmapped(None, f"networks.{key}.enable_ipv6", "not in the swarm's file format"))
        out[key] = entry
    return out


def _file_object(kind: str, key: str, obj: dict, notes: list[Unmapped]) -> dict:
    out = {k: v for k, v in obj.items() if k in ("name", "file", "external", "labels")}
    for source in ("environment", "content"):
        if source in obj:
            # the 3.9 format reads secrets and configs from files: deploy writes these to one
            # (swarm.py) and the stack file names it
            out["x-composer-" + source] = obj[source]
    if "template_driver" in obj:
        notes.append(Unmapped(None, f"{kind}.{key}.template_driver", "templates are not rendered"))
    return out


_DNS1123 = re.compile(r"[^a-z0-9-]")


def stack_name(project_name: str) -> str:
    """The swarm stack's name: the project's, as a swarm accepts it (lower case, no underscores)."""
    return _DNS1123.sub("-", project_name.lower()).strip("-") or "stack"
