"""`docker run`-style options + an image's config -> ContainerSpec, with docker's rules for each
flag (env merging, entrypoint/cmd, volumes, user, limits). Pure: no host access, so it is unit
tested without root; the caller passes anything from the host (cwd, environment) in."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from typing import Mapping

from composer.errors import UsageError
from composer.service import names
from composer.runtime.spec import ContainerSpec, Mount, NetworkAttachment, Resources
from composer.units import parse_size, parse_signal


@dataclass(frozen=True)
class RunOptions:
    """What `composer container run` was given (strings as typed; parsed here)."""

    image: str
    command: tuple[str, ...] = ()
    name: str | None = None
    env: tuple[str, ...] = ()  # K=V or K (taken from the caller's environment)
    volumes: tuple[str, ...] = ()  # SRC:DST[:ro|rw]
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    memory: str | None = None
    cpus: str | None = None
    pids_limit: str | None = None
    network: str = "bridge"
    entrypoint: str | None = None
    init: bool = False
    rm: bool = False
    labels: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    read_only: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    cgroupns: str = ""  # host | private; "" = the runtime's default for the host's cgroup version
    devices: tuple[str, ...] = ()  # --device HOST[:CONTAINER][:PERMISSIONS]
    device_cgroup_rules: tuple[str, ...] = ()  # --device-cgroup-rule "c 189:* rwm"
    security_opt: tuple[str, ...] = ()  # seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]


@dataclass(frozen=True)
class ImageInfo:
    """The parts of a resolved image a spec needs (composer.images.model.Image fits)."""

    ref: str
    id: str
    layers: tuple[str, ...]
    config: object  # ImageConfig: env, entrypoint, cmd, working_dir, user, labels, stop_signal


@dataclass(frozen=True)
class HostContext:
    """What a run's spec depends on beyond its options: cwd, environment, CPUs."""

    cwd: str = "/"
    environ: Mapping[str, str] = field(default_factory=dict)
    ncpu: int = 1


def new_id() -> str:
    return os.urandom(32).hex()




def parse_env(items: tuple[str, ...], environ: Mapping[str, str]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid environment variable: {item!r}")
        if not eq:
            if key not in environ:
                continue  # docker: -e NAME with NAME unset passes nothing
            value = environ[key]
        out.append((key, value))
    return out


def merge_env(base: tuple[tuple[str, str], ...], extra: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    merged = dict(base)
    merged.update(extra)
    return tuple(merged.items())


def parse_volume(text: str, cwd: str) -> Mount:
    parts = text.split(":")
    if len(parts) == 1:
        raise UsageError(f"invalid volume {text!r}: anonymous volumes are not supported here, use SRC:DST")
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise UsageError(f"invalid volume specification: {text!r}")
    src, dst = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else "rw"
    if not set(mode.split(",")) <= {"ro", "rw", "z", "Z", "private", "rprivate"}:
        raise UsageError(f"invalid mode {mode!r} in volume {text!r}")
    if not dst.startswith("/"):
        raise UsageError(f"invalid volume {text!r}: the destination must be an absolute path")
    if src.startswith((".", "~")):
        src = os.path.normpath(os.path.join(cwd, os.path.expanduser(src)))
    elif not src.startswith("/"):
        raise UsageError(f"invalid volume {text!r}: named volumes are not supported by container run (use a path)")
    return Mount(target=os.path.normpath(dst), type="bind", source=src, read_only="ro" in mode.split(","))


def parse_labels(items: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid label {item!r}")
        out.append((key, value))
    return out


def devices(texts: tuple[str, ...]) -> tuple:
    from composer.errors import ContainerError
    from composer.runtime.cgroups.devices import host_device

    try:
        return tuple(host_device(t) for t in texts)
    except ContainerError as e:
        raise UsageError(f"--device: {e}") from None


def resources(opts: RunOptions, ncpu: int) -> Resources:
    memory = parse_size(opts.memory, what="memory limit") if opts.memory else None
    if memory is not None and memory < 6 * 1024 * 1024:
        raise UsageError(f"invalid memory limit {opts.memory!r}: minimum memory limit allowed is 6MB")
    cpus = None
    if opts.cpus is not None:
        try:
            cpus = float(opts.cpus)
        except ValueError:
            raise UsageError(f"invalid argument {opts.cpus!r} for --cpus: not a number") from None
        if not 0 <= cpus <= ncpu:
            raise UsageError(f"range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available")
    pids = None
    if opts.pids_limit is not None:
        try:
            pids = int(opts.pids_limit)
        except ValueError:
            raise UsageError(f"invalid argument {opts.pids_limit!r} for --pids-limit: not an integer") from None
    from composer.errors import ContainerError
    from composer.runtime.cgroups.devices import parse_rule

    for rule in opts.device_cgroup_rules:
        try:
            parse_rule(rule)
        except ContainerError as e:
            raise UsageError(f"--device-cgroup-rule: {e}") from None
    return Resources(memory=memory, cpus=cpus or None, pids=pids if pids and pids > 0 else None,
                     device_rules=tuple(opts.device_cgroup_rules))


def argv_for(opts: RunOptions, config) -> tuple[str, ...]:
    """docker: --entrypoint replaces the image's entrypoint AND drops its cmd."""
    if opts.entrypoint is not None:
        entry = (opts.entrypoint,) if opts.entrypoint else ()
        cmd = opts.command
    else:
        entry = tuple(config.entrypoint or ())
        cmd = opts.command or tuple(config.cmd or ())
    argv = entry + tuple(cmd)
    if not argv:
        raise UsageError("no command specified (the image has no CMD or ENTRYPOINT)")
    return argv


def build(opts: RunOptions, image: ImageInfo, host: HostContext, *, id: str | None = None) -> ContainerSpec:
    config = image.config
    if opts.network not in ("none", "bridge", "host"):
        raise UsageError(f"unsupported network {opts.network!r}: use none, bridge or host")
    workdir = opts.workdir if opts.workdir is not None else (config.working_dir or "/")
    if not workdir.startswith("/"):
        raise UsageError(f"the working directory {workdir!r} is invalid, it needs to be an absolute path")
    name = opts.name if opts.name is not None else names.random_name()
    env = merge_env(tuple(config.env), parse_env(opts.env, host.environ))
    labels = merge_env(tuple(config.labels), parse_labels(opts.labels))
    ports = ()
    if opts.publish:
        ports = tuple(parse_publish(p) for p in opts.publish)
    cid = id or new_id()
    return ContainerSpec(
        id=cid, name=name, image=image.ref, image_id=image.id, layers=tuple(image.layers),
        argv=argv_for(opts, config), env=env, cwd=workdir,
        user=opts.user if opts.user is not None else (config.user or ""),
        hostname=opts.hostname or "", mounts=tuple(parse_volume(v, host.cwd) for v in opts.volumes),
        resources=resources(opts, host.ncpu), network_mode=opts.network,
        networks=(NetworkAttachment("bridge"),) if opts.network == "bridge" else (),
        ports=ports, labels=labels, stop_signal=parse_signal(config.stop_signal), init=opts.init,
        auto_remove=opts.rm, read_only=opts.read_only, cap_add=opts.cap_add, cap_drop=opts.cap_drop,
        cgroupns=opts.cgroupns, devices=devices(opts.devices), **security(opts.security_opt, host.cwd),
    )


def security(options: tuple[str, ...], cwd: str) -> dict:
    """--security-opt values -> the spec's no_new_privileges and seccomp (a profile file is read now,
    relative to the caller's directory, so that the spec carries its content)."""
    nnp, seccomp = False, ""
    for opt in options:
        key, _, value = opt.replace("=", ":", 1).partition(":")
        if key == "no-new-privileges" and value in ("", "true", "false"):
            nnp = value != "false"
        elif key == "seccomp":
            from composer.runtime.security import seccomp_profile  # only then: its import costs ~1.5 ms

            try:
                seccomp = seccomp_profile.load_option(value, cwd)
            except ValueError as e:
                raise UsageError(f"invalid --security-opt {opt!r}: {e}") from None
        else:
            raise UsageError(f"invalid --security-opt {opt!r}: composer knows seccomp=unconfined|PROFILE.json "
                             "and no-new-privileges")
    return {"no_new_privileges": nnp, "seccomp": seccomp}


def parse_publish(text: str):
    """[[IP:]HOST:]CONTAINER[/proto] -> PortMapping."""
    from composer.runtime.spec import PortMapping

    spec, _, proto = text.partition("/")
    proto = proto or "tcp"
    parts = spec.rsplit(":", 2)
    try:
        if len(parts) == 1:
            return PortMapping(int(parts[0]), 0, "", proto)
        if len(parts) == 2:
            return PortMapping(int(parts[1]), int(parts[0] or 0), "", proto)
        return PortMapping(int(parts[2]), int(parts[1] or 0), parts[0].strip("[]"), proto)
    except ValueError:
        raise UsageError(f"invalid port mapping {text!r}: expected [[IP:]HOST:]CONTAINER[/PROTO]") from None


def policies(*, restart: str | None = None, health_cmd: str | None = None, health_interval: str | None = None,
             health_timeout: str | None = None, health_retries: int | None = None,
             health_start_period: str | None = None, no_healthcheck: bool = False, log_driver: str | None = None,
             log_opts: tuple[str, ...] = (), image_health=None) -> dict:
    """docker run's --restart, --health-*, --log-driver/--log-opt as ContainerSpec fields (for
    dataclasses.replace). The image's HEALTHCHECK applies unless --no-healthcheck or --health-cmd."""
    from composer.runtime.spec import Healthcheck, LogConfig, RestartPolicy
    from composer.units import parse_duration

    out: dict = {}
    if restart:
        name, _, count = restart.partition(":")
        if name not in ("no", "always", "on-failure", "unless-stopped") or (count and name != "on-failure") \
                or (count and not count.isdigit()):
            raise UsageError(f"invalid restart policy {restart!r}: use no, always, unless-stopped or on-failure[:N]")
        out["restart"] = RestartPolicy(name, int(count or 0))
    from composer.images.model import health_argv

    base = None
    argv = health_argv(getattr(image_health, "test", None))
    if argv is not None:
        base = Healthcheck(test=argv, interval=image_health.interval or 30.0, timeout=image_health.timeout or 30.0,
                           retries=image_health.retries or 3, start_period=image_health.start_period or 0.0,
                           start_interval=image_health.start_interval or 5.0)
    if health_cmd:
        base = Healthcheck(test=("/bin/sh", "-c", health_cmd))
    if base is not None and not no_healthcheck:
        kw: dict = {}
        for key, value in (("interval", health_interval), ("timeout", health_timeout),
                           ("start_period", health_start_period)):
            if value:
                kw[key] = parse_duration(value, what=f"--health-{key.replace('_', '-')}")
        if health_retries is not None:
            kw["retries"] = int(health_retries)
        from dataclasses import replace

        out["healthcheck"] = replace(base, **kw)
    if no_healthcheck:
        out["healthcheck"] = None
    if log_driver or log_opts:
        driver = log_driver or "json-file"
        if driver not in ("json-file", "none", "local"):
            raise UsageError(f"logging driver {driver!r} is not supported: use json-file or none")
        opts = dict(o.partition("=")[::2] for o in log_opts)
        unknown = set(opts) - {"max-size", "max-file"}
        if unknown:
            raise UsageError(f"unknown log opt {sorted(unknown)[0]!r}: json-file takes max-size and max-file")
        out["log"] = LogConfig(driver="none" if driver == "none" else "json-file",
                               max_size=parse_size(opts["max-size"], what="max-size") if "max-size" in opts else None,
                               max_file=int(opts.get("max-file") or 1))
    return out
