"""The project model: what a stack file means once files are merged, variables interpolated, short
syntax expanded and everything validated. Frozen dataclasses, tuples and FrozenMap only, so every
value is immutable and hashable (services can be set members, dict keys, compared for changes).

Shaped on the compose specification's canonical long syntax (what `docker compose config` prints):
sizes are bytes, durations are float seconds, paths are absolute, names are the real host names."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V], Generic[K, V]):
    """An immutable, hashable mapping that keeps insertion order (the loader inserts sorted)."""

    __slots__ = ("_d", "_h")

    def __init__(self, data: Mapping[K, V] | Any = (), /) -> None:
        self._d: dict[K, V] = dict(data)
        self._h: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._d[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __hash__(self) -> int:
        if self._h is None:
            self._h = hash(frozenset(self._d.items()))
        return self._h

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._d == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._d!r})"

    def __reduce__(self):
        # never the cached hash: str hashes differ from one process to the next (config.cache pickles models)
        return (type(self), (self._d,))

    def __reduce__(self):  # picklable (the launcher may send models across a fork)
        return (FrozenMap, (self._d,))


EMPTY: FrozenMap = FrozenMap()


def freeze(value: Any) -> Any:
    """Plain YAML data -> immutable equivalent (dict -> FrozenMap, list -> tuple)."""
    if isinstance(value, Mapping):
        return FrozenMap((k, freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of freeze, for serialisation."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


# ---------------------------------------------------------------- service parts


@dataclass(frozen=True, kw_only=True)
class Build:
    """A service's `build:` section."""

    context: str  # absolute path (or a URL, kept as written)
    dockerfile: str | None = None
    dockerfile_inline: str | None = None
    args: FrozenMap[str, str | None] = EMPTY
    target: str | None = None
    labels: FrozenMap[str, str] = EMPTY
    network: str | None = None
    cache_from: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    shm_size: int | None = None  # bytes
    tags: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    no_cache: bool = False
    pull: bool = False
    # carried, not honoured by composer's builder (`config --check-support` and `build` say so)
    additional_contexts: FrozenMap[str, str] = EMPTY
    secrets: tuple["FileRef", ...] = ()
    ssh: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    entitlements: tuple[str, ...] = ()
    isolation: str | None = None
    privileged: bool = False
    provenance: str | None = None  # "true", "false" or attestation options, as written
    sbom: str | None = None
    ulimits: FrozenMap[str, "Ulimit"] = EMPTY
    extensions: FrozenMap[str, Any] = EMPTY


@dataclass(frozen=True, kw_only=True)
class Hook:
    """A `post_start` / `pre_stop` lifecycle hook: a command run in the container."""

    command: tuple[str, ...] = ()
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: FrozenMap[str, str | None] = EMPTY


@dataclass(frozen=True, kw_only=True)
class ServicePort:
    """One entry of a service's `ports:` (long syntax)."""

    target: int
    published: str | None = None  # "8080", a range "8000-8010", or None = not published
    host_ip: str | None = None
    protocol: str = "tcp"
    mode: str = "ingress"
    name: str | None = None
    app_protocol: str | None = None


@dataclass(frozen=True, kw_only=True)
class ServiceVolume:
    """One entry of a service's `volumes:` (long syntax)."""

    type: str  # bind | volume | tmpfs | npipe | cluster
    target: str
    source: str | None = None  # absolute host path (bind), volume key (volume), None (anonymous/tmpfs)
    read_only: bool = False
    consistency: str | None = None
    # bind options
    create_host_path: bool = True
    propagation: str | None = None
    selinux: str | None = None  # "z" | "Z"
    # volume options
    nocopy: bool = False
    subpath: str | None = None
    # tmpfs options
    tmpfs_size: int | None = None  # bytes
    tmpfs_mode: int | None = None


@dataclass(frozen=True, kw_only=True)
class Dependency:
    """One entry of a service's `depends_on:`."""

    condition: str = "service_started"  # service_started | service_healthy | service_completed_successfully
    required: bool = True
    restart: bool = False


@dataclass(frozen=True, kw_only=True)
class ServiceNetwork:
    """A service's attachment to one network (`networks:`)."""

    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    mac_address: str | None = None
    priority: int | None = None
    link_local_ips: tuple[str, ...] = ()
    # carried, not honoured (reported by service/keys.py)
    driver_opts: FrozenMap[str, str] = EMPTY
    gw_priority: int | None = None
    interface_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class Healthcheck:
    """A service's `healthcheck:`."""

    test: tuple[str, ...] = ()  # ("CMD", ...), ("CMD-SHELL", "cmd"), ("NONE",)
    interval: float | None = None  # seconds
    timeout: float | None = None
    start_period: float | None = None
    start_interval: float | None = None
    retries: int | None = None
    disable: bool = False


@dataclass(frozen=True, kw_only=True)
class ResourceSpec:
    """Limits or reservations under `deploy.resources`."""

    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = None
    devices: tuple[FrozenMap[str, Any], ...] = ()  # reservations: GPUs and other device requests
    generic_resources: tuple[FrozenMap[str, Any], ...] = ()


@dataclass(frozen=True, kw_only=True)
class RestartPolicy:
    """`deploy.restart_policy`."""

    condition: str | None = None  # none | on-failure | any
    delay: float | None = None  # seconds
    max_attempts: int | None = None
    window: float | None = None


@dataclass(frozen=True, kw_only=True)
class Deploy:
    """A service's `deploy:` section (the keys a single host honours)."""

    mode: str | None = None
    replicas: int | None = None
    limits: ResourceSpec | None = None
    reservations: ResourceSpec | None = None
    restart_policy: RestartPolicy | None = None
    labels: FrozenMap[str, str] = EMPTY
    extras: FrozenMap[str, Any] = EMPTY  # placement, update_config, ...: kept, not interpreted


@dataclass(frozen=True, kw_only=True)
class Logging:
    """A service's `logging:` driver and options."""

    driver: str | None = None
    options: FrozenMap[str, str] = EMPTY


@dataclass(frozen=True, kw_only=True)
class Ulimit:
    """One `ulimits:` entry: soft and hard limit."""

    soft: int
    hard: int


@dataclass(frozen=True, kw_only=True)
class FileRef:
    """A service's use of a top-level config or secret."""

    source: str
    target: str | None = None
    uid: str | None = None
    gid: str | None = None
    mode: int | None = None


@dataclass(frozen=True, kw_only=True)
class WatchExec:
    """The hook of a `sync+exec` watch rule (the spec's service_hook)."""

    command: tuple[str, ...]
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class WatchRule:
    """One `develop.watch` rule. `where` is "file:line" of the rule, for messages."""

    action: str  # sync | rebuild | restart | sync+restart | sync+exec
    path: str  # absolute host path
    target: str | None = None  # absolute container path (the sync actions)
    ignore: tuple[str, ...] = ()  # .dockerignore syntax, relative to path
    include: tuple[str, ...] = ()
    initial_sync: bool = False
    exec: WatchExec | None = None
    where: str = ""


@dataclass(frozen=True, kw_only=True)
class Develop:
    """A service's `develop:` section."""

    watch: tuple[WatchRule, ...] = ()


# ---------------------------------------------------------------- service


@dataclass(frozen=True, kw_only=True)
class Service:
    """One service of the stack, normalised: every key in its long form."""

    name: str
    image: str | None = None
    build: Build | None = None
    command: tuple[str, ...] | None = None  # None: image default; a string command is shell-split
    entrypoint: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str | None], ...] = ()  # env_file merged in; sorted by key
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    domainname: str | None = None
    container_name: str | None = None
    labels: FrozenMap[str, str] = EMPTY
    ports: tuple[ServicePort, ...] = ()
    expose: tuple[str, ...] = ()
    volumes: tuple[ServiceVolume, ...] = ()
    volumes_from: tuple[str, ...] = ()  # "service[:ro]" or "container:name[:ro]"
    tmpfs: tuple[str, ...] = ()
    depends_on: FrozenMap[str, Dependency] = EMPTY  # includes implicit links/volumes_from/network_mode deps
    links: tuple[tuple[str, str], ...] = ()  # (service, alias)
    external_links: tuple[str, ...] = ()
    networks: FrozenMap[str, ServiceNetwork] = EMPTY  # keyed by the network's key in the file
    network_mode: str | None = None
    extra_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_opt: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    restart: str | None = None  # no | always | on-failure[:N] | unless-stopped
    deploy: Deploy | None = None
    scale: int | None = None
    profiles: tuple[str, ...] = ()
    stop_signal: str | None = None
    stop_grace_period: float | None = None  # seconds
    init: bool | None = None
    tty: bool = False
    stdin_open: bool = False
    read_only: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    ulimits: FrozenMap[str, Ulimit] = EMPTY
    sysctls: FrozenMap[str, str] = EMPTY
    shm_size: int | None = None  # bytes
    mem_limit: int | None = None  # bytes
    memswap_limit: int | None = None  # bytes; -1 = unlimited
    mem_reservation: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpuset: str | None = None
    pids_limit: int | None = None
    logging: Logging | None = None
    oom_kill_disable: bool = False
    oom_score_adj: int | None = None
    pull_policy: str | None = None
    platform: str | None = None
    ipc: str | None = None
    pid: str | None = None
    cgroup: str | None = None  # host | private (the cgroup namespace)
    configs: tuple[FileRef, ...] = ()
    secrets: tuple[FileRef, ...] = ()
    devices: tuple[str, ...] = ()  # "HOST[:CONTAINER][:PERMISSIONS]"
    device_cgroup_rules: tuple[str, ...] = ()  # "c 189:* rwm"
    group_add: tuple[str, ...] = ()
    env_file: tuple[str, ...] = ()  # absolute paths, already merged into environment
    attach: bool = True  # false: an attached `up` does not show this service's output
    develop: Develop | None = None  # develop.watch rules (composer watch); not part of the config hash
    # Keys of the specification composer carries but does not honour: printed by `config`, listed one line
    # each by `config --check-support` and warned about by `up` (service/keys.py), never dropped.
    annotations: FrozenMap[str, str] = EMPTY
    runtime: str | None = None
    cgroup_parent: str | None = None
    userns_mode: str | None = None
    uts: str | None = None
    isolation: str | None = None
    mac_address: str | None = None
    cpu_count: int | None = None
    cpu_percent: int | None = None
    cpu_period: int | str | None = None
    cpu_quota: int | str | None = None
    cpu_rt_period: int | str | None = None
    cpu_rt_runtime: int | str | None = None
    mem_swappiness: int | None = None
    blkio_config: FrozenMap[str, Any] | None = None
    credential_spec: FrozenMap[str, Any] | None = None
    storage_opt: FrozenMap[str, Any] = EMPTY
    gpus: tuple[FrozenMap[str, Any], ...] = ()
    use_api_socket: bool = False
    post_start: tuple[Hook, ...] = ()
    pre_stop: tuple[Hook, ...] = ()
    models: FrozenMap[str, Any] = EMPTY  # model key -> None or {endpoint_var, model_var}
    provider: FrozenMap[str, Any] | None = None
    pull_refresh_after: str | None = None
    extensions: FrozenMap[str, Any] = EMPTY  # x-* keys of the service

    @property
    def environment_map(self) -> dict[str, str | None]:
        return dict(self.environment)

    @property
    def replicas(self) -> int:
        """How many containers `up` makes: scale, else deploy.replicas, else 1."""
        if self.scale is not None:
            return self.scale
        if self.deploy is not None and self.deploy.replicas is not None:
            return self.deploy.replicas
        return 1


# ---------------------------------------------------------------- top level


@dataclass(frozen=True, kw_only=True)
class IpamPool:
    """One `ipam.config` pool of a network."""

    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    aux_addresses: FrozenMap[str, str] = EMPTY


@dataclass(frozen=True, kw_only=True)
class Network:
    """A top-level network, with its real (project-prefixed) name."""

    key: str  # the name used in the stack file ("default", "backend")
    name: str  # the real name ("<project>_default", or `name:`/external name as given)
    driver: str | None = None
    driver_opts: FrozenMap[str, str] = EMPTY
    internal: bool = False
    external: bool = False
    attachable: bool = False
    enable_ipv4: bool | None = None  # None: the driver's default (IPv4 on)
    enable_ipv6: bool = False
    ipam_driver: str | None = None
    ipam: tuple[IpamPool, ...] = ()
    labels: FrozenMap[str, str] = EMPTY
    extensions: FrozenMap[str, Any] = EMPTY

    @property
    def subnets(self) -> tuple[str, ...]:
        return tuple(p.subnet for p in self.ipam if p.subnet)


@dataclass(frozen=True, kw_only=True)
class Volume:
    """A top-level named volume, with its real (project-prefixed) name."""

    key: str
    name: str  # real name ("<project>_data")
    driver: str | None = None
    driver_opts: FrozenMap[str, str] = EMPTY
    external: bool = False
    labels: FrozenMap[str, str] = EMPTY
    extensions: FrozenMap[str, Any] = EMPTY


@dataclass(frozen=True, kw_only=True)
class FileObject:
    """A top-level config or secret."""

    key: str
    name: str
    file: str | None = None  # absolute path
    environment: str | None = None
    content: str | None = None
    external: bool = False
    labels: FrozenMap[str, str] = EMPTY
    # carried, not honoured (swarm's secret drivers and templates)
    driver: str | None = None
    driver_opts: FrozenMap[str, str] = EMPTY
    template_driver: str | None = None


@dataclass(frozen=True, kw_only=True)
class Project:
    """The validated, immutable model of a whole stack: services, networks, volumes, configs, secrets."""

    name: str
    working_dir: str  # absolute project directory
    services: FrozenMap[str, Service] = EMPTY  # active services, sorted by name
    networks: FrozenMap[str, Network] = EMPTY  # by key
    volumes: FrozenMap[str, Volume] = EMPTY  # by key
    configs: FrozenMap[str, FileObject] = EMPTY
    secrets: FrozenMap[str, FileObject] = EMPTY
    files: tuple[str, ...] = ()  # absolute paths of the stack files read ("-" for stdin)
    environment: FrozenMap[str, str] = EMPTY  # the interpolation environment (shell over .env)
    env_sources: FrozenMap[str, str] = EMPTY  # variable -> where it came from ("shell", a .env path)
    profiles: tuple[str, ...] = ()  # active profiles
    disabled_services: FrozenMap[str, Service] = EMPTY  # services whose profiles are not active
    warnings: tuple[str, ...] = ()  # e.g. unset variables defaulted to "" (the CLI prints them)
    models: FrozenMap[str, FrozenMap[str, Any]] = EMPTY  # top-level `models:` (carried, not run here)
    extensions: FrozenMap[str, Any] = EMPTY

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(self.services)

    def service(self, name: str) -> Service:
        return self.services[name]

    def network_for(self, key: str) -> Network:
        return self.networks[key]

    def all_profiles(self) -> tuple[str, ...]:
        """Every profile named by any service, active or not (for `config --profiles`)."""
        names = {p for s in (*self.services.values(), *self.disabled_services.values()) for p in s.profiles}
        return tuple(sorted(names))


__all__ = [
    "Build", "Dependency", "Deploy", "Develop", "FileObject", "FileRef", "FrozenMap", "Healthcheck", "Hook",
    "IpamPool",
    "Logging", "Network", "Project", "ResourceSpec", "RestartPolicy", "Service", "ServiceNetwork",
    "ServicePort", "ServiceVolume", "Ulimit", "Volume", "WatchExec", "WatchRule", "freeze", "thaw",
]
