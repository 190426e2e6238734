"""ContainerSpec: everything the runtime needs to run one container, and nothing about where it
came from (no YAML, services or projects). Plain frozen dataclasses that round-trip through JSON,
so the spec stored at create time is exactly what a later `start` (from any shell) runs."""

from __future__ import annotations

import dataclasses
import json
import signal
from dataclasses import dataclass, field

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from typing import Any


@dataclass(frozen=True)
class Mount:
    """A mount inside the container. type: 'bind' (source is a host path; named volumes are
    bind mounts of their data dir) or 'tmpfs' (source unused)."""

    target: str
    type: str = "bind"
    source: str = ""
    read_only: bool = False
    options: tuple[str, ...] = ()  # tmpfs: "size=64m", "mode=1777"; bind: "rprivate", ...


@dataclass(frozen=True)
class Resources:
    """cgroup limits; None means unlimited / kernel default."""

    memory: int | None = None  # bytes
    memory_swap: int | None = None  # bytes, memory+swap as docker; -1 unlimited
    memory_reservation: int | None = None
    cpus: float | None = None  # CFS quota = cpus * period
    cpu_shares: int | None = None
    cpuset: str | None = None
    pids: int | None = None
    oom_kill_disable: bool = False
    oom_score_adj: int | None = None
    # device cgroup rules added to docker's default allow list ("c 189:* rwm"; privileged: "a")
    device_rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortMapping:
    """Publish container_port on host_ip:host_port (host_port 0 = pick a free one)."""

    container_port: int
    host_port: int = 0
    host_ip: str = ""  # "" = all addresses (0.0.0.0)
    protocol: str = "tcp"


@dataclass(frozen=True)
class NetworkAttachment:
    """Attach to a runtime network (see runtime.net.network) by its network name."""

    network: str
    ipv4_address: str | None = None
    mac_address: str | None = None
    aliases: tuple[str, ...] = ()
    interface: str = ""  # name inside the container; default eth0, eth1, ...


@dataclass(frozen=True)
class Device:
    """A host device given to the container (compose `devices`, run --device): the node made at
    `target` inside, and what the container's device policy lets it do with it."""

    target: str
    kind: str  # "c" | "b"
    major: int
    minor: int
    access: str = "rwm"
    mode: int = 0o660  # the node's permission bits and owner, as on the host
    uid: int = 0
    gid: int = 0

    @property
    def rule(self) -> str:
        return f"{self.kind} {self.major}:{self.minor} {self.access}"


@dataclass(frozen=True)
class Ulimit:
    """A resource limit (setrlimit) for the container's processes."""

    name: str  # "nofile", "nproc", ... (RLIMIT_ without prefix, lower case)
    soft: int
    hard: int


@dataclass(frozen=True)
class RestartPolicy:
    """What the monitor does when PID 1 exits."""

    name: str = "no"  # no | always | on-failure | unless-stopped
    max_retries: int = 0  # on-failure:N; 0 = unlimited


@dataclass(frozen=True)
class Healthcheck:
    """test: argv to exec inside the container (CMD-SHELL already turned into sh -c)."""

    test: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0
    start_interval: float = 5.0


@dataclass(frozen=True)
class LogConfig:
    """Where the container's output goes, and when its log file rotates."""

    driver: str = "json-file"  # json-file | none
    max_size: int | None = None  # bytes per file before rotation
    max_file: int = 1


@dataclass(frozen=True)
class ContainerSpec:
    """Everything the runtime needs to create and run one container."""

    id: str  # 64 hex chars, like docker
    name: str
    image: str  # the reference the user gave (for display)
    image_id: str  # digest of the image config
    layers: tuple[str, ...]  # extracted layer dirs, bottom-most first (manifest order)
    argv: tuple[str, ...]  # entrypoint + cmd, resolved
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = "/"
    user: str = ""  # "uid[:gid]" or "name[:group]", resolved inside the rootfs; "" = root
    hostname: str = ""
    domainname: str = ""
    # /etc/hosts lines beyond localhost: (address, (name, alias, ...))
    hosts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dns: tuple[str, ...] = ()  # nameservers for resolv.conf; () = host's, minus loopback ones
    dns_search: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    resources: Resources = field(default_factory=Resources)
    network_mode: str = "bridge"  # none | bridge (networks below) | host | container:<id>
    networks: tuple[NetworkAttachment, ...] = ()
    ports: tuple[PortMapping, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: int = int(signal.SIGTERM)
    stop_timeout: float = 10.0
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    cgroupns: str = ""  # "host" | "private"; "" = docker's default: private on cgroup v2, host on v1
    devices: tuple[Device, ...] = ()
    read_only: bool = False
    no_new_privileges: bool = False
    seccomp: str = ""  # "" docker's default profile, "unconfined", or a docker-format profile's JSON
    init: bool = False
    tty: bool = False
    stdin_open: bool = False
    ulimits: tuple[Ulimit, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    shm_size: int | None = None
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    healthcheck: Healthcheck | None = None
    log: LogConfig = field(default_factory=LogConfig)
    auto_remove: bool = False  # --rm

    def label(self, key: str, default: str | None = None) -> str | None:
        return dict(self.labels).get(key, default)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ContainerSpec":
        return _build(cls, json.loads(text))

    @classmethod
    def from_dict(cls, data: dict) -> "ContainerSpec":
        return _build(cls, data)


_NESTED: dict[str, Any] = {
    "mounts": Mount,
    "networks": NetworkAttachment,
    "ports": PortMapping,
    "ulimits": Ulimit,
    "devices": Device,
}
_SINGLE: dict[str, Any] = {
    "resources": Resources,
    "restart": RestartPolicy,
    "healthcheck": Healthcheck,
    "log": LogConfig,
}


def _tuplify(value: Any) -> Any:
    # recursion only into nested lists: `ps` builds every container's spec (env, argv, labels...)
    if type(value) is list:
        return tuple([_tuplify(v) if type(v) is list else v for v in value])
    return value


_FIELDS: dict[Any, frozenset[str]] = {}


def _build(cls: Any, data: dict[str, Any]) -> Any:
    known = _FIELDS.get(cls)
    if known is None:
        known = _FIELDS[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            continue  # written by a newer version: ignore rather than refuse to start
        if cls is ContainerSpec and key in _NESTED:
            value = tuple(_build(_NESTED[key], v) for v in value)
        elif cls is ContainerSpec and key in _SINGLE:
            value = None if value is None else _build(_SINGLE[key], value)
        else:
            value = _tuplify(value)
        kwargs[key] = value
    return cls(**kwargs)


def attachments(spec: ContainerSpec) -> tuple[NetworkAttachment, ...]:
    """The networks a container joins: its own list, or the default one on a plain bridge."""
    if spec.network_mode != "bridge":
        return ()
    return spec.networks or (NetworkAttachment("bridge"),)
