"""The Services: `<service>` (ClusterIP over every port the container declares, `ports` and `expose`,
named; headless when it has no ports, for a StatefulSet and for deploy.endpoint_mode dnsrr), and
`<service>-published` (LoadBalancer or NodePort, as --service-type says) for published ports; links
and network aliases become more Services over the same pods, so the hostnames the containers
already use keep resolving."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from composer.config.model import Service
from composer.convert.naming import port_name

if TYPE_CHECKING:
    from composer.convert.convert import Ctx

_LOOPBACK = ("127.", "::1", "localhost")
_NODEPORTS = range(30000, 32768)
_RANGE_MAX = 100


@dataclass(frozen=True)
class ContainerPort:
    name: str
    port: int
    protocol: str  # TCP | UDP | SCTP
    published: tuple[int, str | None] | None = None  # (port, host_ip)
    app_protocol: str | None = None


def container_ports(ctx: "Ctx", svc: Service) -> list[ContainerPort]:
    """Every port of `ports` and `expose`, once per (port, protocol), named."""
    seen: dict[tuple[int, str], ContainerPort] = {}
    for p in svc.ports:
        proto = p.protocol.upper()
        published = None
        if p.published:
            if "-" in p.published:
                ctx.report.unmapped(svc.name, f"ports[{p.target}]", f"a published range ({p.published}): a Service "
                                    "publishes single ports")
            elif p.published.isdigit():
                published = (int(p.published), p.host_ip)
        if p.mode == "host" and published:
            ctx.report.note(svc.name, f"ports[{p.target}].mode", "host mode publishes on the node running the "
                            f"container; here the {ctx.options.service_type} Service publishes it")
        old = seen.get((p.target, proto))
        if old is None or (published and not old.published):
            seen[(p.target, proto)] = ContainerPort(port_name(p.target, proto, p.name), p.target, proto, published,
                                                    p.app_protocol)
    for entry in svc.expose:
        num, _, proto = str(entry).partition("/")
        proto = (proto or "tcp").upper()
        low, _, high = num.partition("-")
        ports = range(int(low), int(high or low) + 1)
        if len(ports) > _RANGE_MAX:
            ctx.report.unmapped(svc.name, "expose", f"{entry}: more than {_RANGE_MAX} ports")
            continue
        for port in ports:
            seen.setdefault((port, proto), ContainerPort(port_name(port, proto), port, proto))
    names: dict[str, int] = {}
    out = []
    for cp in seen.values():  # names must be unique in the pod
        if cp.name in names:
            cp = ContainerPort(port_name(cp.port, cp.protocol), cp.port, cp.protocol, cp.published, cp.app_protocol)
        names[cp.name] = cp.port
        out.append(cp)
    return out


def _port(p: ContainerPort, port: int) -> dict[str, Any]:
    out = {"name": p.name, "port": port, "targetPort": p.name, "protocol": p.protocol}
    if p.app_protocol:
        out["appProtocol"] = p.app_protocol
    return out


def _ports(ports: list[ContainerPort]) -> list[dict[str, Any]]:
    return [_port(p, p.port) for p in ports]


def services(ctx: "Ctx", svc: Service, cname: str, selector: dict[str, str], *, headless: bool,
             names: list[str]) -> None:
    """The cluster-internal Service under each of `names` (the service's own, then its aliases), and
    the published one."""
    ports = ctx.container_ports(svc)
    for i, name in enumerate(names):
        spec: dict[str, Any] = {"selector": selector}
        if headless or not ports:
            spec["clusterIP"] = "None"
        if ports:
            spec["ports"] = _ports(ports)
        ctx.add({"apiVersion": "v1", "kind": "Service", "metadata": ctx.meta(name, svc.name), "spec": spec})
    published = [p for p in ports if p.published]
    if not published:
        return
    kind = ctx.options.service_type
    out = []
    for p in published:
        port, host_ip = p.published or (p.port, None)
        entry = _port(p, port)
        if host_ip and host_ip.startswith(_LOOPBACK):
            ctx.report.unmapped(svc.name, f"ports[{p.port}].host_ip", f"published on {host_ip} only (this host), "
                                f"but a {kind} Service is reachable from outside the cluster")
        elif host_ip and host_ip not in ("0.0.0.0", "::"):
            ctx.report.unmapped(svc.name, f"ports[{p.port}].host_ip", f"{host_ip}: a Service has no host address")
        if kind == "NodePort":
            if port in _NODEPORTS:
                entry["nodePort"] = port
            else:
                ctx.report.note(svc.name, f"ports[{p.port}]", f"published port {port} is outside the NodePort range "
                                "30000-32767: the cluster picks the node port")
        out.append(entry)
    ctx.add({"apiVersion": "v1", "kind": "Service", "metadata": ctx.meta(ctx.name(f"{cname}-published"), svc.name),
             "spec": {"type": kind, "selector": selector, "ports": out}})
