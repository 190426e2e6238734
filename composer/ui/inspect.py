"""`inspect` output in docker's JSON shape (moby's api/types: ContainerJSON, ImageInspect, network
Inspect, volume Volume), filled from composer's records, and `-f/--format` applied to it.

Objects are duck-typed (runtime ContainerInfo, images ImageRecord, net NetworkInfo/Endpoint, volume
VolumeInfo). What composer does not record is given docker's empty value for it (`""`, `0`, `null`,
`[]`), so a template naming a field docker has evaluates instead of failing. Known gaps, written
down once: `Config.Entrypoint` is null and `Config.Cmd` the resolved argv (the spec keeps only
entrypoint+cmd joined); `NetworkID`/`EndpointID` are empty (no such ids here); exposed but
unpublished ports are not listed."""

from __future__ import annotations

import json
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable

ZERO_TIME = "0001-01-01T00:00:00Z"
_NS = 1_000_000_000


def rfc3339(t: float | None) -> str:
    """docker's time.Time in JSON: RFC 3339 with nanoseconds, UTC."""
    if not t:
        return ZERO_TIME
    whole = int(t)
    frac = f"{round((t - whole) * _NS):09d}".rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + (f".{frac}" if frac else "") + "Z"


def _signal_name(num: int) -> str:
    import signal

    try:
        return signal.Signals(num).name
    except ValueError:
        return str(num)


# ------------------------------------------------------------------ containers

def container(info: Any, *, volumes_root: str = "", files: dict[str, str] | None = None) -> dict[str, Any]:
    """docker's ContainerJSON for one container. volumes_root: the named volumes' directory (a bind
    of `<root>/<name>/_data` is a volume mount); files: paths of its hosts/resolv.conf/hostname/log."""
    spec = info.spec
    files = files or {}
    argv = list(spec.argv)
    status = info.status
    return {
        "Id": info.id,
        "Created": rfc3339(info.created_at),
        "Path": argv[0] if argv else "",
        "Args": argv[1:],
        "State": _state(info),
        "Image": spec.image_id if spec.image_id.startswith("sha256:") or not spec.image_id
        else f"sha256:{spec.image_id}",
        "ResolvConfPath": files.get("resolv.conf", ""),
        "HostnamePath": files.get("hostname", ""),
        "HostsPath": files.get("hosts", ""),
        "LogPath": files.get("log", ""),
        "Name": "/" + info.name,
        "RestartCount": info.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": _host_config(spec, volumes_root),
        "GraphDriver": {"Data": {"LowerDir": ":".join(reversed(spec.layers)),
                                 "UpperDir": files.get("upper", ""), "WorkDir": files.get("work", "")},
                        "Name": "overlay"},
        "Mounts": [_mount(m, volumes_root) for m in spec.mounts],
        "Config": _config(spec),
        "NetworkSettings": _network_settings(info, running=status in ("running", "paused")),
    }


def _state(info: Any) -> dict[str, Any]:
    status = info.status
    state: dict[str, Any] = {
        "Status": status,
        "Running": status in ("running", "paused", "restarting"),
        "Paused": status == "paused",
        "Restarting": status == "restarting",
        "OOMKilled": bool(info.oom_killed),
        "Dead": status == "dead",
        "Pid": info.pid or 0,
        "ExitCode": info.exit_code or 0,
        "Error": info.error or info.monitor_error or "",
        "StartedAt": rfc3339(info.started_at),
        "FinishedAt": rfc3339(info.finished_at),
    }
    if info.spec.healthcheck is not None:
        log = [dict(entry) for entry in info.health_log]
        streak = 0
        for entry in reversed(log):
            if entry.get("ExitCode") == 0:
                break
            streak += 1
        state["Health"] = {"Status": info.health or ("starting" if not log else
                                                      ("healthy" if streak == 0 else "unhealthy")),
                           "FailingStreak": streak, "Log": log}
    return state


def _is_volume(m: Any, volumes_root: str) -> str:
    """The volume's name when the mount's source is a named volume's _data dir, else ""."""
    if m.type != "bind" or not volumes_root:
        return ""
    parent, base = os.path.split(os.path.normpath(m.source))
    if base == "_data" and os.path.dirname(parent) == os.path.normpath(volumes_root):
        return os.path.basename(parent)
    return ""


def _mount(m: Any, volumes_root: str) -> dict[str, Any]:
    name = _is_volume(m, volumes_root)
    propagation = next((o for o in m.options if o.lstrip("r") in ("private", "shared", "slave")), "")
    if name:
        return {"Type": "volume", "Name": name, "Source": m.source, "Destination": m.target, "Driver": "local",
                "Mode": "ro" if m.read_only else "z", "RW": not m.read_only, "Propagation": ""}
    return {"Type": m.type, "Source": m.source if m.type == "bind" else "", "Destination": m.target,
            "Mode": "ro" if m.read_only else "", "RW": not m.read_only,
            "Propagation": propagation or ("rprivate" if m.type == "bind" else "")}


def _port_key(p: Any) -> str:
    return f"{p.container_port}/{p.protocol}"


def _bindings(ports: Iterable[Any]) -> dict[str, Any]:
    out: dict[str, list] = {}
    for p in ports:
        out.setdefault(_port_key(p), []).append({"HostIp": p.host_ip, "HostPort": str(p.host_port or "")})
    return out


def _host_config(spec: Any, volumes_root: str) -> dict[str, Any]:
    r = spec.resources
    binds = []
    for m in spec.mounts:
        if m.type == "bind":
            src = _is_volume(m, volumes_root) or m.source
            binds.append(f"{src}:{m.target}" + (":ro" if m.read_only else ""))
    security = (["no-new-privileges:true"] if spec.no_new_privileges else []) + \
        (["seccomp=unconfined"] if spec.seccomp == "unconfined" else [])
    log_opts = {}
    if spec.log.max_size:
        log_opts["max-size"] = str(spec.log.max_size)
    if spec.log.max_file and spec.log.max_file != 1:
        log_opts["max-file"] = str(spec.log.max_file)
    return {
        "Binds": binds or None,
        "LogConfig": {"Type": spec.log.driver, "Config": log_opts},
        "NetworkMode": _network_mode(spec),
        "PortBindings": _bindings(spec.ports),
        "RestartPolicy": {"Name": spec.restart.name, "MaximumRetryCount": spec.restart.max_retries},
        "AutoRemove": spec.auto_remove,
        "CapAdd": list(spec.cap_add) or None,
        "CapDrop": list(spec.cap_drop) or None,
        "CgroupnsMode": spec.cgroupns or "",
        "Dns": list(spec.dns),
        "DnsOptions": [],
        "DnsSearch": list(spec.dns_search),
        "ExtraHosts": None,
        "OomScoreAdj": r.oom_score_adj or 0,
        "Privileged": spec.privileged,
        "ReadonlyRootfs": spec.read_only,
        "SecurityOpt": security or None,
        "ShmSize": spec.shm_size or 67108864,
        "Runtime": "composer",
        "Init": True if spec.init else None,
        "CpuShares": r.cpu_shares or 0,
        "Memory": r.memory or 0,
        "NanoCpus": int(round(r.cpus * _NS)) if r.cpus else 0,
        "CpusetCpus": r.cpuset or "",
        "Devices": [{"PathOnHost": d.target, "PathInContainer": d.target, "CgroupPermissions": d.access}
                    for d in spec.devices],
        "DeviceCgroupRules": list(r.device_rules) or None,
        "MemoryReservation": r.memory_reservation or 0,
        "MemorySwap": r.memory_swap or 0,
        "OomKillDisable": r.oom_kill_disable,
        "PidsLimit": r.pids,
        "Ulimits": [{"Name": u.name, "Hard": u.hard, "Soft": u.soft} for u in spec.ulimits],
        "Sysctls": dict(spec.sysctls) if spec.sysctls else None,
        # what composer has no setting for, with docker's value for "not set"
        "ContainerIDFile": "", "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "GroupAdd": None,
        "IpcMode": "private", "Cgroup": "", "Links": None, "PidMode": "", "PublishAllPorts": False, "UTSMode": "",
        "UsernsMode": "", "Isolation": "", "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetMems": "",
        "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0, "MemorySwappiness": None,
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "MaskedPaths": None, "ReadonlyPaths": None,
    }


def _network_mode(spec: Any) -> str:
    if spec.network_mode == "bridge" and spec.networks:
        return spec.networks[0].network
    return spec.network_mode


def _config(spec: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "Hostname": spec.hostname or spec.id[:12],
        "Domainname": spec.domainname,
        "User": spec.user,
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": spec.tty,
        "OpenStdin": spec.stdin_open,
        "StdinOnce": False,
        "Env": [f"{k}={v}" for k, v in spec.env],
        "Cmd": list(spec.argv),
        "Image": spec.image,
        "Volumes": None,
        "WorkingDir": spec.cwd if spec.cwd != "/" else "",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": dict(sorted(spec.labels)),
        "StopSignal": _signal_name(spec.stop_signal),
    }
    if spec.ports:
        config["ExposedPorts"] = {_port_key(p): {} for p in spec.ports}
    if spec.stop_timeout != 10:
        config["StopTimeout"] = int(spec.stop_timeout)
    hc = spec.healthcheck
    if hc is not None:
        config["Healthcheck"] = {"Test": ["CMD", *hc.test], "Interval": int(hc.interval * _NS),
                                 "Timeout": int(hc.timeout * _NS), "StartPeriod": int(hc.start_period * _NS),
                                 "StartInterval": int(hc.start_interval * _NS), "Retries": hc.retries}
    return config


def _endpoint_json(ep: Any | None, aliases: list[str], attachment: Any | None, dns_names: list[str]) -> dict:
    static = getattr(attachment, "ipv4_address", None)
    return {
        "IPAMConfig": {"IPv4Address": static} if static else None,
        "Links": None,
        "Aliases": aliases or None,
        "MacAddress": ep.mac_address if ep else "",
        "DriverOpts": None,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": ep.gateway if ep else "",
        "IPAddress": ep.ipv4_address if ep else "",
        "IPPrefixLen": ep.prefixlen if ep else 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": dns_names or None,
    }


def _network_settings(info: Any, running: bool) -> dict[str, Any]:
    spec = info.spec
    eps = {ep.network: ep for ep in info.endpoints}
    networks: dict[str, Any] = {}
    if spec.network_mode == "bridge":
        service = info.label("composer.service")
        for att in spec.networks or ():
            # as docker compose lists them: the container's name and the service's, then its own
            aliases = list(dict.fromkeys([info.name, service, *att.aliases] if service else att.aliases))
            names = [*aliases, info.id[:12]] if att.network != "bridge" else []
            networks[att.network] = _endpoint_json(eps.get(att.network), aliases, att, names)
        for name, ep in eps.items():  # the default network (spec.networks empty) and late connects
            networks.setdefault(name, _endpoint_json(ep, [], None, []))
    elif not spec.network_mode.startswith("container:"):
        networks[spec.network_mode] = _endpoint_json(None, [], None, [])
    default = eps.get("bridge")
    return {
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": f"/proc/{info.pid}/ns/net" if running and info.pid else "",
        "Ports": _bindings(info.ports) if running else {},
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": "",
        "Gateway": default.gateway if default else "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": default.ipv4_address if default else "",
        "IPPrefixLen": default.prefixlen if default else 0,
        "IPv6Gateway": "",
        "MacAddress": default.mac_address if default else "",
        "Networks": networks,
    }


# ------------------------------------------------------------------ images, networks, volumes

def image(img: Any, refs: list[str], digests: list[str]) -> dict[str, Any]:
    """docker's ImageInspect; refs/digests already in their familiar spelling."""
    return {
        "Id": img.id,
        "RepoTags": refs,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": "",
        "Created": img.created,
        "DockerVersion": "",
        "Author": "",
        "Config": img.config.to_oci(),
        "Architecture": img.architecture,
        "Os": img.os,
        "Size": img.size,
        "GraphDriver": {"Data": {"LowerDir": ":".join(reversed(img.layers))}, "Name": "overlay"},
        "RootFS": {"Type": "layers", "Layers": list(img.diff_ids)},
        "Metadata": {"LastTagTime": ZERO_TIME},
    }


def network(net: Any, endpoints: Iterable[Any], names: dict[str, str], created: float | None = None) -> dict:
    """docker's network Inspect; names: container id -> name."""
    return {
        "Name": net.name,
        "Id": "",
        "Created": rfc3339(created),
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None,
                 "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]},
        "Internal": bool(net.internal),
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {ep.container_id: {"Name": names.get(ep.container_id, ""), "EndpointID": "",
                                         "MacAddress": ep.mac_address,
                                         "IPv4Address": f"{ep.ipv4_address}/{ep.prefixlen}", "IPv6Address": ""}
                       for ep in endpoints},
        "Options": {"com.docker.network.bridge.name": net.bridge},
        "Labels": dict(net.labels),
    }


def volume(vol: Any, created: float | None = None) -> dict[str, Any]:
    """docker's Volume."""
    return {"CreatedAt": rfc3339(created).split(".")[0].rstrip("Z") + "Z", "Driver": "local",
            "Labels": dict(vol.labels) or None, "Mountpoint": vol.path, "Name": vol.name, "Options": None,
            "Scope": "local"}


# ------------------------------------------------------------------ output

def render(objects: list[dict[str, Any]], fmt: str | None) -> str:
    """What `docker inspect` prints: the indented array; `--format json`: the array on one line;
    any other format: a Go template executed on each object, one line each."""
    if not fmt:
        return json.dumps(objects, indent=4, ensure_ascii=False) + "\n"
    if fmt == "json":
        return json.dumps(objects, separators=(",", ":"), ensure_ascii=False) + "\n"
    from composer.ui.gotemplate import Template

    template = Template(fmt)  # a parse error before any output
    return "".join(template.execute(_as_struct(o)) + "\n" for o in objects)


# Fields docker's JSON leaves out when empty (omitempty) but its templates still see, as the typed
# struct they run on first: `{{if .State.Health}}` is false there, not an error.
_OMITTED = {"State": ("Health",), "Config": ("ExposedPorts", "Healthcheck", "StopTimeout", "StopSignal")}


def _as_struct(obj: dict[str, Any]) -> dict[str, Any]:
    if "State" not in obj or "Config" not in obj:
        return obj
    view = dict(obj)
    for part, keys in _OMITTED.items():
        if isinstance(view.get(part), dict) and any(k not in view[part] for k in keys):
            view[part] = {**{k: None for k in keys}, **view[part]}
    return view
