"""The entry of `composer convert`: `convert(project, options)` walks the selected services of a loaded
model and returns the Kubernetes objects (plain dicts) and what could not be mapped. Which workload a
service becomes: a DaemonSet for deploy.mode global; a Job for a one-shot service (restart "no" or
on-failure, or deploy.restart_policy none/on-failure); a StatefulSet for one replica with a named
volume; else a Deployment. `push_built_images` puts the images built here where a cluster pulls them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from composer.config.model import Project, Service
from composer.convert import network, pods
from composer.convert.naming import dns_label, is_label
from composer.convert.report import Report, Unmapped
from composer.errors import ConfigError, UsageError

SERVICE_TYPES = ("LoadBalancer", "NodePort")
WAIT_IMAGE = "busybox:1.36"
_ORDER = ("Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Secret", "PersistentVolumeClaim",
          "Service", "Deployment", "StatefulSet", "DaemonSet", "Job")


@dataclass(frozen=True)
class ConvertOptions:
    services: tuple[str, ...] = ()  # these and what they depend on; all when empty
    namespace: str | None = None
    k8s_version: str = "1.30"
    service_type: str = "LoadBalancer"
    images: Mapping[str, str] = field(default_factory=dict)  # service -> image pinned by digest (--push)
    wait_image: str = WAIT_IMAGE  # runs the init containers that wait for a dependency's Service


@dataclass(frozen=True)
class Conversion:
    objects: tuple[dict[str, Any], ...]
    unmapped: tuple[Unmapped, ...]
    external: frozenset[tuple[str, str]]  # (kind, name) referenced, expected to exist in the cluster


def parse_version(text: str) -> tuple[int, int]:
    parts = text.removeprefix("v").split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]) or (int(parts[0]), int(parts[1])) < (1, 25):
        raise UsageError(f"--k8s-version {text!r}: expected a version like 1.30 (1.25 or later)")
    return int(parts[0]), int(parts[1])


class Ctx:
    """What the mapping of one project shares: the model, the options, the objects made so far
    (by kind and name, in order), the report, and per-service decisions (name, workload kind)."""

    def __init__(self, project: Project, options: ConvertOptions) -> None:
        self.project, self.options = project, options
        self.report = Report()
        self.version = parse_version(options.k8s_version)
        if options.service_type not in SERVICE_TYPES:
            raise UsageError(f"--service-type {options.service_type!r}: expected LoadBalancer or NodePort")
        if options.namespace is not None and not is_label(options.namespace):
            raise UsageError(f"--namespace {options.namespace!r} is not a DNS-1123 label (lowercase, digits, '-')")
        self.kubectl_image = f"registry.k8s.io/kubectl:v{self.version[0]}.{self.version[1]}.0"
        self.wait_image = options.wait_image
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.external: set[tuple[str, str]] = set()
        self.instance = dns_label(project.name)
        self.selected = _select(project, options.services)
        self._cnames: dict[str, str] = {}
        for name in self.selected:
            cname = dns_label(name, 52)
            cname = cname if cname[0].isalpha() else f"s-{cname}"[:52]
            if cname in self._cnames.values():
                other = next(k for k, v in self._cnames.items() if v == cname)
                raise ConfigError(f"services {other!r} and {name!r} both become {cname!r} in Kubernetes",
                                  service=name, hint="rename one of them")
            self._cnames[name] = cname
        self._ports: dict[str, list[network.ContainerPort]] = {}
        self._kinds = {n: self._decide_kind(project.services[n]) for n in self.selected}

    # ---- names and objects

    def cname(self, service: str) -> str:
        return self._cnames.get(service) or dns_label(service, 52)

    def name(self, text: str) -> str:
        return dns_label(text, 253)

    def volume_name(self, text: str) -> str:
        return dns_label(text, 63)

    def selector(self, service: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.cname(service), "app.kubernetes.io/instance": self.instance}

    def meta(self, name: str, service: str | None, extra_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        labels = {**(extra_labels or {}), "app.kubernetes.io/part-of": self.instance,
                  "app.kubernetes.io/managed-by": "composer"}
        if service is not None:
            labels.update(self.selector(service))
        meta: dict[str, Any] = {"name": name, "labels": labels}
        if self.options.namespace:
            meta["namespace"] = self.options.namespace
        return meta

    def has(self, kind: str, name: str) -> bool:
        return (kind, name) in self.objects

    def add(self, obj: dict[str, Any]) -> None:
        key = (obj["kind"], obj["metadata"]["name"])
        old = self.objects.get(key)
        if old is not None and old != obj:
            raise ConfigError(f"two {key[0]}s would be named {key[1]!r}", service=obj["metadata"]["labels"].get(
                "app.kubernetes.io/name"), hint="rename a service, alias or volume so their names differ")
        self.objects[key] = obj

    # ---- per-service decisions

    def image_for(self, svc: Service) -> str:
        return self.options.images.get(svc.name) or svc.image or f"{self.project.name}-{svc.name}"

    def container_ports(self, svc: Service) -> list[network.ContainerPort]:
        if svc.name not in self._ports:
            self._ports[svc.name] = network.container_ports(self, svc)
        return self._ports[svc.name]

    def job_restart(self, svc: Service) -> str | None:
        """"no" / "on-failure" for a one-shot service, None for a long-running one."""
        if svc.restart:
            return "no" if svc.restart == "no" else "on-failure" if svc.restart.startswith("on-failure") else None
        rp = svc.deploy.restart_policy if svc.deploy is not None else None
        if rp is not None and rp.condition in ("none", "on-failure"):
            return "no" if rp.condition == "none" else "on-failure"
        return None

    def _decide_kind(self, svc: Service) -> str:
        mode = svc.deploy.mode if svc.deploy is not None else None
        if mode in ("global", "global-job"):
            return "DaemonSet" if mode == "global" else "Job"
        if mode == "replicated-job" or self.job_restart(svc):
            return "Job"
        if svc.replicas == 1 and any(v.type == "volume" and v.source for v in svc.volumes):
            return "StatefulSet"
        return "Deployment"

    def kind(self, service: str) -> str:
        return self._kinds[service]

    def headless(self, service: str) -> bool:
        svc = self.project.services[service]
        mode = svc.deploy.extras.get("endpoint_mode") if svc.deploy is not None else None
        return self._kinds.get(service) == "StatefulSet" or mode == "dnsrr" or not self.container_ports(svc)

    def volume_users(self, key: str) -> list[str]:
        return [n for n in self.selected if any(v.type == "volume" and v.source == key
                                                 for v in self.project.services[n].volumes)]

    def volume_shared(self, key: str) -> bool:
        users = self.volume_users(key)
        return len(users) > 1 or any(self._kinds[u] == "Deployment" and self.project.services[u].replicas > 1
                                     for u in users)

    def job_waiter(self) -> str:
        """A ServiceAccount allowed to read Jobs, for the init containers that wait for one."""
        name = self.name(f"{self.instance}-job-waiter")
        if not self.has("ServiceAccount", name):
            self.add({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": self.meta(name, None)})
            self.add({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": self.meta(name, None),
                      "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]}]})
            self.add({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                      "metadata": self.meta(name, None),
                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                      "subjects": [{"kind": "ServiceAccount", "name": name,
                                    **({"namespace": self.options.namespace} if self.options.namespace else {})}]})
        return name


def _select(project: Project, names: Sequence[str]) -> list[str]:
    for n in names:
        if n not in project.services:
            raise UsageError(f"no such service: {n}")
    if not names:
        return list(project.services)
    chosen, todo = set(), list(names)
    while todo:
        n = todo.pop()
        if n not in chosen:
            chosen.add(n)
            todo += [d for d in project.services[n].depends_on if d in project.services]
    return [n for n in project.services if n in chosen]


def _service_names(ctx: Ctx) -> dict[str, list[str]]:
    """service -> the Service names that select its pods: its own (when it has ports, is a
    StatefulSet, or is linked or waited for by name), then link and network aliases."""
    project = ctx.project
    wanted = set()
    aliases: dict[str, str] = {}  # alias -> service
    for n in ctx.selected:
        svc = project.services[n]
        for dep, d in svc.depends_on.items():
            if d.condition != "service_completed_successfully":
                wanted.add(dep)
        for dep, alias in svc.links:
            wanted.add(dep)
            if alias and alias != dep:
                aliases.setdefault(alias, dep)
        for net in svc.networks.values():
            for alias in net.aliases:
                aliases.setdefault(alias, n)
    out: dict[str, list[str]] = {}
    taken = {ctx.cname(n): n for n in ctx.selected}
    for n in ctx.selected:
        svc = project.services[n]
        if ctx.container_ports(svc) or ctx.kind(n) == "StatefulSet" or n in wanted:
            out[n] = [ctx.cname(n)]
    for alias, target in aliases.items():
        if target not in ctx.selected or alias == target:
            continue
        name = alias.lower()
        if not (is_label(name) and name[0].isalpha()):
            ctx.report.unmapped(target, f"aliases.{alias}", "not a valid Service name (DNS-1035 label): this "
                                "hostname will not resolve")
            continue
        if name in taken and taken[name] != target:
            ctx.report.unmapped(target, f"aliases.{alias}", f"the name is service {taken[name]}'s already")
            continue
        taken[name] = target
        names = out.setdefault(target, [ctx.cname(target)])
        if name not in names:
            names.append(name)
    return out


def _workload(ctx: Ctx, svc: Service) -> dict[str, Any]:
    cname, kind = ctx.cname(svc.name), ctx.kind(svc.name)
    selector = ctx.selector(svc.name)
    template = pods.template(ctx, svc, cname, selector, kind)
    labels, annotations = pods.split_labels(svc.deploy.labels if svc.deploy is not None else {})
    meta = ctx.meta(cname, svc.name, labels)
    if annotations:
        meta["annotations"] = annotations
    api = "batch/v1" if kind == "Job" else "apps/v1"
    spec: dict[str, Any] = {}
    if kind == "Job":
        if svc.replicas != 1:
            spec["completions"] = spec["parallelism"] = svc.replicas
        rp = svc.deploy.restart_policy if svc.deploy is not None else None
        restart = svc.restart or ""
        if rp is not None and rp.max_attempts is not None:
            spec["backoffLimit"] = rp.max_attempts
        elif restart.startswith("on-failure:"):
            spec["backoffLimit"] = int(restart.split(":", 1)[1])
        elif ctx.job_restart(svc) == "no":
            spec["backoffLimit"] = 0
    else:
        spec["selector"] = {"matchLabels": selector}
        if kind != "DaemonSet":
            spec["replicas"] = svc.replicas
        elif svc.replicas != 1:
            ctx.report.unmapped(svc.name, "deploy.replicas", "a DaemonSet runs one pod per node")
        if kind == "StatefulSet":
            spec["serviceName"] = cname
    spec["template"] = template
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec}


def convert(project: Project, options: ConvertOptions = ConvertOptions()) -> Conversion:
    """The Kubernetes objects for the project's selected services (see the module's docstring)."""
    ctx = Ctx(project, options)
    if options.namespace:
        ctx.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": options.namespace, "labels": {
            "app.kubernetes.io/part-of": ctx.instance, "app.kubernetes.io/managed-by": "composer"}}})
    names = _service_names(ctx)
    for n in ctx.selected:
        svc = project.services[n]
        workload = _workload(ctx, svc)
        if n in names:
            network.services(ctx, svc, ctx.cname(n), ctx.selector(n), headless=ctx.headless(n), names=names[n])
        ctx.add(workload)
    for key, net in project.networks.items():
        if net.external or net.internal or (net.driver not in (None, "bridge")):
            ctx.report.unmapped("", f"networks.{key}", "a cluster has one pod network (external, internal and "
                                "drivers do not carry over; a NetworkPolicy can isolate)")
    order = {k: i for i, k in enumerate(_ORDER)}
    objects = sorted(ctx.objects.values(), key=lambda o: (order.get(o["kind"], 99), o["metadata"]["name"]))
    return Conversion(tuple(objects), tuple(ctx.report.items), frozenset(ctx.external))


def push_built_images(project: Project, store: Any, registry: str, services: Sequence[str] = (),
                      progress: Callable[[Any], None] | None = None) -> dict[str, str]:
    """Push each selected service that has `build:` (its image from the store) into `registry`;
    returns service -> the reference pinned by digest that the manifests name."""
    from composer.errors import NotFoundError
    from composer.images.push import push_to_registry
    from composer.project.builds import image_ref

    out = {}
    for name in _select(project, services):
        svc = project.services[name]
        if svc.build is None:
            continue
        ref = image_ref(project, svc)
        if not store.exists(ref):
            raise NotFoundError(f"service {name}: image {ref} is not built", hint="run `composer build` first")
        out[name] = push_to_registry(store, ref, registry, progress=progress)
    return out
