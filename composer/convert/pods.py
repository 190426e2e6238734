"""One service's pod template: the container (compose's `entrypoint` is Kubernetes' `command`, its
`command` is `args`), resources in Kubernetes units, probes from the healthcheck, the security
context, volumes and mounts, and init containers that wait for what the service depends on."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from composer.config.model import Healthcheck, Service
from composer.convert import files
from composer.convert.naming import cpu, dns_label, is_label_value, is_qualified_key, memory, seconds

if TYPE_CHECKING:
    from composer.convert.convert import Ctx

_PULL = {"always": "Always", "never": "Never", "missing": "IfNotPresent", "if_not_present": "IfNotPresent",
         "build": "IfNotPresent"}
# docker's healthcheck defaults (interval, timeout, start_interval: seconds; retries)
_INTERVAL, _TIMEOUT, _START_INTERVAL, _RETRIES = 30, 30, 5, 3


def split_labels(labels: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Compose labels as Kubernetes labels where key and value are valid as such, else annotations
    (which take any text): nothing is lost."""
    good, other = {}, {}
    for key, value in labels.items():
        (good if is_qualified_key(key) and is_label_value(str(value)) else other)[key] = str(value)
    return good, other


def template(ctx: "Ctx", svc: Service, cname: str, selector: dict[str, str], kind: str) -> dict[str, Any]:
    c: dict[str, Any] = {"name": cname, "image": ctx.image_for(svc)}
    if svc.pull_policy in _PULL:
        c["imagePullPolicy"] = _PULL[svc.pull_policy]
    if svc.entrypoint is not None:
        c["command"] = list(svc.entrypoint)
    if svc.command is not None:
        c["args"] = list(svc.command)
    if svc.working_dir:
        c["workingDir"] = svc.working_dir
    env_from = files.environment(ctx, svc, cname)
    if env_from:
        c["envFrom"] = env_from
    ports = ctx.container_ports(svc)
    if ports:
        c["ports"] = [{"name": p.name, "containerPort": p.port, "protocol": p.protocol} for p in ports]
    if svc.tty:
        c["tty"] = True
    if svc.stdin_open:
        c["stdin"] = True
    resources = _resources(ctx, svc)
    if resources:
        c["resources"] = resources
    c.update(_probes(svc.healthcheck))
    security, pod_security, pod_extra = _security(ctx, svc, cname)
    apparmor = pod_extra.pop("_annotations", {})
    if security:
        c["securityContext"] = security
    volumes, mounts = _volumes(ctx, svc, cname)
    if mounts:
        c["volumeMounts"] = mounts
    spec: dict[str, Any] = {"containers": [c]}
    init = _waits(ctx, svc)
    if init:
        spec["initContainers"] = init
    if volumes:
        spec["volumes"] = volumes
    if pod_security:
        spec["securityContext"] = pod_security
    spec.update(pod_extra)
    if kind == "Job":
        spec["restartPolicy"] = "Never" if ctx.job_restart(svc) == "no" else "OnFailure"
    if svc.stop_grace_period is not None:
        spec["terminationGracePeriodSeconds"] = seconds(svc.stop_grace_period, 30, minimum=0)
    if any(w.get("image") == ctx.kubectl_image for w in init):
        spec["serviceAccountName"] = ctx.job_waiter()
    good, other = split_labels(svc.labels)
    meta: dict[str, Any] = {"labels": {**good, **selector}}
    annotations = {**other, **{k: str(v) for k, v in svc.annotations.items()}, **apparmor}
    if annotations:
        meta["annotations"] = annotations
    _unmapped_keys(ctx, svc)
    return {"metadata": meta, "spec": spec}


def _resources(ctx: "Ctx", svc: Service) -> dict[str, Any]:
    d = svc.deploy
    limits, requests = {}, {}
    lim = d.limits if d is not None else None
    res = d.reservations if d is not None else None
    if (lim and lim.cpus) or svc.cpus:
        limits["cpu"] = cpu((lim.cpus if lim and lim.cpus else svc.cpus) or 0)
    if (lim and lim.memory) or svc.mem_limit:
        limits["memory"] = memory((lim.memory if lim and lim.memory else svc.mem_limit) or 0)
    if res and res.cpus:
        requests["cpu"] = cpu(res.cpus)
    if (res and res.memory) or svc.mem_reservation:
        requests["memory"] = memory((res.memory if res and res.memory else svc.mem_reservation) or 0)
    for where, spec in (("limits", lim), ("reservations", res)):
        if spec is not None and spec.pids:
            ctx.report.unmapped(svc.name, f"deploy.resources.{where}.pids", "a pod's pid limit is the kubelet's "
                                "setting (podPidsLimit), not the pod's")
    if svc.pids_limit:
        ctx.report.unmapped(svc.name, "pids_limit", "a pod's pid limit is the kubelet's setting (podPidsLimit)")
    out = {}
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    return out


def _probes(hc: Healthcheck | None) -> dict[str, Any]:
    """readiness and liveness from the healthcheck; start_period -> a startupProbe that holds them
    off, checking every start_interval, as docker does during the start period."""
    if hc is None or hc.disable or not hc.test or hc.test[0] == "NONE":
        return {}
    if hc.test[0] == "CMD-SHELL":
        argv = ["sh", "-c", " ".join(hc.test[1:])]
    else:
        argv = list(hc.test[1:] if hc.test[0] == "CMD" else hc.test)
    period = seconds(hc.interval, _INTERVAL)
    probe = {"exec": {"command": argv}, "periodSeconds": period, "timeoutSeconds": seconds(hc.timeout, _TIMEOUT),
             "failureThreshold": max(1, hc.retries if hc.retries is not None else _RETRIES)}
    out: dict[str, Any] = {"readinessProbe": probe, "livenessProbe": dict(probe)}
    if hc.start_period:
        every = seconds(hc.start_interval, _START_INTERVAL)
        out["startupProbe"] = {**probe, "periodSeconds": every,
                               "failureThreshold": max(1, math.ceil(hc.start_period / every)) + probe["failureThreshold"]}
    return out


def _security(ctx: "Ctx", svc: Service, cname: str) -> tuple[dict, dict, dict]:
    """(container securityContext, pod securityContext, other pod spec keys)."""
    name, report = svc.name, ctx.report
    c: dict[str, Any] = {}
    pod: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if svc.user:
        user, _, group = svc.user.partition(":")
        user, group = ("0" if user == "root" else user), ("0" if group == "root" else group)
        if user.isdigit() and (not group or group.isdigit()):
            c["runAsUser"] = int(user)
            if group:
                c["runAsGroup"] = int(group)
        else:
            report.unmapped(name, "user", f"{svc.user!r}: Kubernetes takes numeric ids only (runAsUser)")
    caps = {}
    if svc.cap_add:
        caps["add"] = [x.upper().removeprefix("CAP_") for x in svc.cap_add]
    if svc.cap_drop:
        caps["drop"] = [x.upper().removeprefix("CAP_") for x in svc.cap_drop]
    if caps:
        c["capabilities"] = caps
    if svc.privileged:
        c["privileged"] = True
    if svc.read_only:
        c["readOnlyRootFilesystem"] = True
    for opt in svc.security_opt:
        key, _, value = opt.replace("=", ":", 1).partition(":")
        if key == "no-new-privileges":
            c["allowPrivilegeEscalation"] = value == "false"
        elif key == "seccomp" and value == "unconfined":
            c["seccompProfile"] = {"type": "Unconfined"}
        elif key == "apparmor" and value:
            profile = {"type": "Unconfined"} if value == "unconfined" else \
                {"type": "Localhost", "localhostProfile": value}
            if ctx.version >= (1, 30):
                c["appArmorProfile"] = profile
            else:
                extra.setdefault("_annotations", {})[f"container.apparmor.security.beta.kubernetes.io/{cname}"] = \
                    "unconfined" if value == "unconfined" else f"localhost/{value}"
        else:
            report.unmapped(name, "security_opt", f"{opt!r} has no pod equivalent (a seccomp profile must be on the "
                            "nodes: seccompProfile Localhost)")
    if svc.sysctls:
        pod["sysctls"] = [{"name": k, "value": str(v)} for k, v in svc.sysctls.items()]
    groups = [g for g in svc.group_add if str(g).isdigit()]
    if groups:
        pod["supplementalGroups"] = [int(g) for g in groups]
    if len(groups) != len(svc.group_add):
        report.unmapped(name, "group_add", "Kubernetes takes numeric group ids only (supplementalGroups)")
    if svc.hostname:
        extra["hostname"] = dns_label(svc.hostname)
    if svc.domainname:
        report.unmapped(name, "domainname", "a pod's domain comes from its Service (subdomain), not from a setting")
    hosts: dict[str, list[str]] = {}
    for entry in svc.extra_hosts:
        host, sep, ip = entry.replace("=", ":", 1).partition(":") if "=" in entry else entry.partition(":")
        if not sep or ip == "host-gateway":
            report.unmapped(name, "extra_hosts", f"{entry!r}: a cluster has no host gateway address")
            continue
        hosts.setdefault(ip.strip("[]"), []).append(host)
    if hosts:
        extra["hostAliases"] = [{"ip": ip, "hostnames": names} for ip, names in hosts.items()]
    dns: dict[str, Any] = {}
    if svc.dns:
        dns["nameservers"] = list(svc.dns)
    if svc.dns_search:
        dns["searches"] = list(svc.dns_search)
    if svc.dns_opt:
        dns["options"] = [dict(zip(("name", "value"), o.split(":", 1))) for o in svc.dns_opt]
    if dns:
        extra["dnsConfig"] = dns
    if svc.network_mode == "host":
        extra["hostNetwork"] = True
    elif svc.network_mode and svc.network_mode not in ("bridge", "default"):
        report.unmapped(name, "network_mode", f"{svc.network_mode!r}: a pod has its own network namespace (put "
                        "the containers in one pod instead)")
    for key in ("ipc", "pid"):
        value = getattr(svc, key)
        if value == "host":
            extra["hostIPC" if key == "ipc" else "hostPID"] = True
        elif value and value not in ("private", "shareable"):
            report.unmapped(name, key, f"{value!r}: pods do not join each other's namespaces")
    if svc.platform:
        os_, _, arch = svc.platform.partition("/")
        extra["nodeSelector"] = {"kubernetes.io/os": os_, **({"kubernetes.io/arch": arch.split("/")[0]} if arch else {})}
    return c, pod, extra


def _volumes(ctx: "Ctx", svc: Service, cname: str) -> tuple[list[dict], list[dict]]:
    volumes: dict[str, dict] = {}
    mounts: list[dict] = []

    def add(vols: list[dict], ms: list[dict]) -> None:
        for v in vols:
            if volumes.get(v["name"], v) != v:  # same name, other source: rename
                old = v["name"]
                v = {**v, "name": dns_label(f"{old[:55]}-{len(volumes)}")}
                ms = [{**m, "name": v["name"]} if m["name"] == old else m for m in ms]
            volumes[v["name"]] = v
        mounts.extend(ms)

    for i, vol in enumerate(svc.volumes):
        key = f"volumes[{vol.target}]"
        mount: dict[str, Any] = {"mountPath": vol.target}
        if vol.read_only:
            mount["readOnly"] = True
        if vol.subpath:
            mount["subPath"] = vol.subpath
        if vol.propagation:
            ctx.report.unmapped(svc.name, f"{key}.bind.propagation", "mount propagation needs a host path")
        if vol.selinux:
            ctx.report.unmapped(svc.name, f"{key}.bind.selinux", "relabelling is the cluster's (seLinuxOptions)")
        if vol.type == "volume" and vol.source:
            claim = files.claim(ctx, vol.source, ctx.volume_users(vol.source), ctx.volume_shared(vol.source))
            vname = dns_label(f"vol-{vol.source}")
            add([{"name": vname, "persistentVolumeClaim": {"claimName": claim}}], [{"name": vname, **mount}])
        elif vol.type == "volume":
            vname = f"anon-{i}"
            add([{"name": vname, "emptyDir": {}}], [{"name": vname, **mount}])
        elif vol.type == "tmpfs":
            vname = f"tmpfs-{i}"
            src: dict[str, Any] = {"medium": "Memory"}
            if vol.tmpfs_size:
                src["sizeLimit"] = memory(vol.tmpfs_size)
            if vol.tmpfs_mode is not None:
                ctx.report.unmapped(svc.name, f"{key}.tmpfs.mode", "an emptyDir's mode is not settable")
            add([{"name": vname, "emptyDir": src}], [{"name": vname, **mount}])
        elif vol.type == "bind":
            add(*files.bind(ctx, svc, vol, cname))
        else:
            ctx.report.unmapped(svc.name, key, f"volume type {vol.type!r} has no pod equivalent")
    for i, entry in enumerate(svc.tmpfs):
        path, _, opts = entry.partition(":")
        src = {"medium": "Memory"}
        for opt in filter(None, opts.split(",")):
            k, _, v = opt.partition("=")
            if k == "size":
                from composer.units import parse_size

                src["sizeLimit"] = memory(parse_size(v))
            else:
                ctx.report.unmapped(svc.name, "tmpfs", f"option {opt!r} of {path}: an emptyDir takes a size only")
        add([{"name": f"tmpfs-x{i}", "emptyDir": src}], [{"name": f"tmpfs-x{i}", "mountPath": path}])
    if svc.shm_size:
        add([{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": memory(svc.shm_size)}}],
            [{"name": "dshm", "mountPath": "/dev/shm"}])
    for kind, refs in (("configs", svc.configs), ("secrets", svc.secrets)):
        for ref in refs:
            add(*files.file_object(ctx, kind, ref, svc))
    return list(volumes.values()), mounts


def _waits(ctx: "Ctx", svc: Service) -> list[dict]:
    """An init container per dependency: service_started / service_healthy wait until the
    dependency's Service resolves (a headless one only once a pod is ready) or, when it has ports,
    accepts a connection (through kube-proxy: only to a ready pod); service_completed_successfully
    waits for its Job to complete (kubectl, with a ServiceAccount allowed to read Jobs)."""
    out = []
    for dep, d in svc.depends_on.items():
        if dep not in ctx.selected:
            ctx.report.unmapped(svc.name, f"depends_on.{dep}", "the dependency is not among the converted services")
            continue
        dname = ctx.cname(dep)
        if d.restart and dep not in {target for target, _ in svc.links}:  # a link implies it: not the user's
            ctx.report.unmapped(svc.name, f"depends_on.{dep}.restart", "pods are not restarted with their dependencies")
        if d.condition == "service_completed_successfully":
            if ctx.kind(dep) != "Job":
                ctx.report.unmapped(svc.name, f"depends_on.{dep}", "service_completed_successfully on a service that "
                                    "is not one-shot (restart: no/on-failure, a Job here): nothing to wait for")
                continue
            out.append({"name": dns_label(f"wait-for-{dname}"), "image": ctx.kubectl_image,
                        "command": ["kubectl", "wait", "--for=condition=complete", f"job/{dname}", "--timeout=-1s"]})
            continue
        ports = ctx.container_ports(ctx.project.services[dep])
        if d.condition == "service_healthy" and ports and not ctx.headless(dep):
            check = f"nc -w 2 {dname} {ports[0].port} </dev/null >/dev/null 2>&1"  # busybox's small nc has no -z
        else:
            check = f"nslookup {dname} >/dev/null 2>&1"
        out.append({"name": dns_label(f"wait-for-{dname}"), "image": ctx.wait_image,
                    "command": ["sh", "-c", f"until {check}; do echo waiting for {dname}; sleep 2; done"]})
    return out


# Keys with no pod equivalent, and why (checked when set).
_NO_EQUIVALENT = {
    "init": "a pod runs no init process for its container (use an image with tini, or shareProcessNamespace)",
    "container_name": "a controller names its pods",
    "volumes_from": "pods do not share another pod's volumes: mount the same claim",
    "external_links": "there are no containers outside the cluster to link to",
    "devices": "devices are a node's: use a device plugin",
    "device_cgroup_rules": "devices are a node's: use a device plugin",
    "ulimits": "rlimits are the container runtime's setting on each node",
    "cpu_shares": "use deploy.resources.reservations.cpus (requests)",
    "cpuset": "CPU pinning is the kubelet's CPU manager policy",
    "memswap_limit": "swap is a node setting",
    "oom_kill_disable": "not a pod setting",
    "oom_score_adj": "the kubelet sets it from the pod's QoS class",
    "stop_signal": "pods are stopped with SIGTERM (a preStop hook can send another)",
    "cgroup": "not a pod setting",
    "logging": "logs go to the cluster's collector; rotation is the kubelet's (containerLogMaxSize)",
    "mac_address": "addresses are the cluster network's",
}


def _unmapped_keys(ctx: "Ctx", svc: Service) -> None:
    for key, reason in _NO_EQUIVALENT.items():
        value = getattr(svc, key, None)
        if value and not (key == "logging" and value.driver in (None, "json-file") and not value.options):
            ctx.report.unmapped(svc.name, key, reason)
    if svc.build is not None and svc.name not in ctx.options.images:
        ctx.report.unmapped(svc.name, "build", "a cluster pulls images: push the built image with --push REGISTRY "
                            f"(the manifest names {ctx.image_for(svc)})")
    for key, net in svc.networks.items():
        for attr in ("ipv4_address", "ipv6_address", "mac_address"):
            if getattr(net, attr):
                ctx.report.unmapped(svc.name, f"networks.{key}.{attr}", "pod addresses are the cluster network's")
        if net.link_local_ips:
            ctx.report.unmapped(svc.name, f"networks.{key}.link_local_ips", "pod addresses are the cluster network's")
    if len(svc.networks) > 1:
        ctx.report.note(svc.name, "networks", "a cluster has one flat pod network: the networks are merged "
                        "(a NetworkPolicy can separate them)")
    d = svc.deploy
    if d is not None:
        rp = d.restart_policy
        for attr in ("delay", "window"):
            if rp is not None and getattr(rp, attr):
                ctx.report.unmapped(svc.name, f"deploy.restart_policy.{attr}", "the kubelet's back-off decides")
        for key in d.extras:
            if key == "endpoint_mode":
                continue
            ctx.report.unmapped(svc.name, f"deploy.{key}", "a Swarm setting: use the workload's own fields "
                                "(strategy, affinity) in a kustomize patch")
