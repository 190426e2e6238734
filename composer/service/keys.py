"""The per-key rules of a service -> ContainerSpec: each compose key (command/entrypoint, resources,
restart, healthcheck, logging, security_opt, stop_signal, ulimits) becomes its spec field here, and every
key the runtime cannot honour becomes a warning ("service x: key y ..."), never silently dropped.

Knows nothing of the project (names, labels, networks, peers): `composer.service` assembles the spec from
these and the project context. Pure, so every rule is unit tested without root."""

from __future__ import annotations

from collections.abc import Mapping

from composer.config.model import Healthcheck as ModelHealthcheck
from composer.config.model import Service
from composer.errors import ConfigError, ContainerError, UsageError
from composer.runtime.spec import Healthcheck, LogConfig, Resources, RestartPolicy

# What the runtime cannot do (yet): reported once per service and key.
UNSUPPORTED = ("ipc", "pid", "group_add", "dns_opt", "platform")


def parse_signal(name: str | None, service: str = "") -> int:
    from composer.units import parse_signal as parse

    try:
        return parse(name)
    except UsageError:
        raise ConfigError(f"service {service}: invalid stop_signal {name!r}", service=service, key="stop_signal") from None


def argv_for(service: Service, config) -> tuple[str, ...]:
    """Compose: an entrypoint in the file replaces the image's and drops the image's CMD."""
    if service.entrypoint is not None:
        entry, cmd = tuple(service.entrypoint), tuple(service.command or ())
    else:
        entry = tuple(config.entrypoint or ())
        cmd = tuple(service.command) if service.command is not None else tuple(config.cmd or ())
    argv = entry + cmd
    if not argv:
        raise ConfigError(f"service {service.name} has no command (the image has no CMD or ENTRYPOINT)",
                          service=service.name, key="command")
    return argv


def resources_for(service: Service) -> Resources:
    limits = service.deploy.limits if service.deploy and service.deploy.limits else None
    reserve = service.deploy.reservations if service.deploy and service.deploy.reservations else None
    return Resources(
        memory=service.mem_limit or (limits.memory if limits else None),
        memory_swap=service.memswap_limit,
        memory_reservation=service.mem_reservation or (reserve.memory if reserve else None),
        cpus=service.cpus or (limits.cpus if limits else None),
        cpu_shares=service.cpu_shares, cpuset=service.cpuset,
        pids=service.pids_limit or (limits.pids if limits else None),
        oom_kill_disable=service.oom_kill_disable, oom_score_adj=service.oom_score_adj,
        device_rules=device_rules_for(service),
    )


def device_rules_for(service: Service) -> tuple[str, ...]:
    from composer.runtime.cgroups.devices import parse_rule

    for rule in service.device_cgroup_rules:
        try:
            parse_rule(rule)
        except ContainerError as e:
            raise ConfigError(f"service {service.name}: device_cgroup_rules: {e}", service=service.name,
                              key="device_cgroup_rules") from None
    return tuple(service.device_cgroup_rules)


def devices_for(service: Service) -> tuple:
    """`devices`, each resolved on this host (a missing node or a plain file is an error here)."""
    from composer.runtime.cgroups.devices import host_device

    out = []
    for text in service.devices:
        try:
            out.append(host_device(text))
        except ContainerError as e:
            raise ConfigError(f"service {service.name}: devices: {e}", service=service.name, key="devices") from None
    return tuple(out)


def restart_for(service: Service) -> RestartPolicy:
    if service.restart:
        name, _, count = service.restart.partition(":")
        name = {"false": "no"}.get(name, name)
        if name not in ("no", "always", "on-failure", "unless-stopped"):
            raise ConfigError(f"service {service.name}: invalid restart policy {service.restart!r}",
                              service=service.name, key="restart")
        return RestartPolicy(name, int(count) if count.isdigit() else 0)
    rp = service.deploy.restart_policy if service.deploy else None
    if rp and rp.condition:
        name = {"none": "no", "on-failure": "on-failure", "any": "always"}.get(rp.condition, "no")
        return RestartPolicy(name, rp.max_attempts or 0)
    return RestartPolicy()


def healthcheck_for(service: Service, image_hc) -> Healthcheck | None:
    hc: ModelHealthcheck | None = service.healthcheck
    if hc is not None and hc.disable:
        return None
    from composer.images.model import health_argv

    argv = health_argv(tuple(hc.test) if hc and hc.test else getattr(image_hc, "test", ()))
    if argv is None:
        return None

    def pick(key: str, default):
        mine = getattr(hc, key, None) if hc else None
        theirs = getattr(image_hc, key, None) if image_hc else None
        return mine if mine is not None else (theirs or default)

    return Healthcheck(test=tuple(argv), interval=pick("interval", 30.0), timeout=pick("timeout", 30.0),
                       retries=pick("retries", 3), start_period=pick("start_period", 0.0),
                       start_interval=pick("start_interval", 5.0))


def logging_for(service: Service, warn: list[str]) -> LogConfig:
    from composer.units import parse_size

    if service.logging is None:
        return LogConfig()
    driver = service.logging.driver or "json-file"
    if driver not in ("json-file", "none", "local"):
        warn.append(f"service {service.name}: logging driver {driver!r} is not supported, using json-file")
        driver = "json-file"
    opts = service.logging.options
    for key in sorted(set(opts) - {"max-size", "max-file"}):
        warn.append(f"service {service.name}: logging option {key!r} is not supported, ignored")
    max_size = parse_size(opts["max-size"], what="max-size") if opts.get("max-size") else None
    max_file = int(opts.get("max-file") or 1)
    return LogConfig("none" if driver == "none" else "json-file", max_size, max_file)


def security_for(service: Service, warn: list[str], base_dir: str = ".") -> tuple[bool, str]:
    """security_opt -> (no_new_privileges, the spec's seccomp value); a profile file is read here,
    relative to the project directory, so the spec carries its content."""
    from composer.runtime.security import seccomp_profile

    nnp, seccomp = False, ""
    for opt in service.security_opt:
        key, _, value = opt.replace("=", ":", 1).partition(":")
        if key == "no-new-privileges" and value in ("", "true"):
            nnp = True
        elif key == "no-new-privileges" and value == "false":
            nnp = False
        elif key == "seccomp":
            try:
                seccomp = seccomp_profile.load_option(value, base_dir or ".")
            except ValueError as e:
                raise ConfigError(f"service {service.name}: security_opt {opt!r}: {e}",
                                  service=service.name, key="security_opt") from None
        else:
            warn.append(f"service {service.name}: security_opt {opt!r} is not supported, ignored")
    return nnp, seccomp


# Spec fields the runtime does not act on yet: a service asking for them is warned. (Remove an entry
# when the runtime learns it.) Healthchecks, restart policies and log rotation are the monitor's.
RUNTIME_LACKS: tuple[str, ...] = ()  # every key the runtime takes is honoured now (tty, stdin_open: runtime.monitor.tty)


# Keys of the specification the model carries (config/model.py) but composer does not act on: each one a
# service sets is reported, naming service and key (`up` warns, `config --check-support` lists them).
CARRIED = ("annotations", "runtime", "cgroup_parent", "userns_mode", "uts", "isolation", "mac_address",
           "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime",
           "mem_swappiness", "blkio_config", "credential_spec", "storage_opt", "gpus", "use_api_socket",
           "post_start", "pre_stop", "models", "provider", "pull_refresh_after")
BUILD_CARRIED = ("additional_contexts", "secrets", "ssh", "cache_to", "entitlements", "isolation", "privileged",
                 "provenance", "sbom", "ulimits")


def warnings_for(service: Service) -> list[str]:
    """One text per key the runtime cannot honour (the runner reports each once)."""
    name = service.name
    warn = [f"service {name}: key {key!r} is not supported by composer's runtime, ignored"
            for key in UNSUPPORTED + RUNTIME_LACKS if getattr(service, key)]
    warn += [f"service {name}: key {key!r} is not supported here, ignored"
             for key in CARRIED if getattr(service, key) not in (None, (), False) and getattr(service, key) != {}]
    if service.build is not None:
        warn += [f"service {name}: key 'build.{key}' is not supported here, ignored" for key in BUILD_CARRIED
                 if getattr(service.build, key) not in (None, (), False) and getattr(service.build, key) != {}]
    for i, v in enumerate(service.volumes):
        if v.selinux:
            warn.append(f"service {name}: key 'volumes[{i}]' option {v.selinux!r} (SELinux relabel) is not "
                        "supported here, ignored")
    for key, net in service.networks.items():
        if net.ipv6_address or net.link_local_ips:
            warn.append(f"service {name}: networks.{key} IPv6/link-local addresses are not supported, ignored")
        for attr in ("driver_opts", "gw_priority", "interface_name"):
            if getattr(net, attr):
                warn.append(f"service {name}: key 'networks.{key}.{attr}' is not supported here, ignored")
    d = service.deploy
    if d is not None:
        ignored = [f"deploy.{k}" for k in d.extras]
        ignored += ["deploy.mode"] if d.mode not in (None, "replicated") else []
        ignored += ["deploy.labels"] if d.labels else []
        if d.reservations is not None:
            ignored += [f"deploy.resources.reservations.{k}" for k in ("cpus", "pids", "devices", "generic_resources")
                        if getattr(d.reservations, k)]
        if d.restart_policy is not None:
            ignored += [f"deploy.restart_policy.{k}" for k in ("delay", "window") if getattr(d.restart_policy, k)]
        warn += [f"service {name}: key {k!r} is not supported by composer (swarm only), ignored" for k in ignored]
    for kind, refs in (("configs", service.configs), ("secrets", service.secrets)):
        for ref in refs:
            for attr in ("uid", "gid", "mode"):
                if getattr(ref, attr) is not None:
                    warn.append(f"service {name}: key '{kind}.{attr}' is not supported (the file is bind-mounted "
                                "read-only as it is), ignored")
    return warn


def check_ulimits(service: Service, host_hard: Mapping[str, int], can_raise: bool) -> None:
    """A hard limit above the host's cannot be set without CAP_SYS_RESOURCE: say so before
    anything starts, instead of an EPERM from inside the container. host_hard: name -> the
    current hard limit (-1 = unlimited)."""
    if can_raise:
        return
    for key, u in service.ulimits.items():
        cur = host_hard.get(key)
        if cur is None or cur == -1:
            continue
        if u.hard == -1 or u.hard > cur:
            raise ConfigError(f"service {service.name}: ulimits.{key} hard limit {u.hard} is above this host's "
                              f"{cur}; raising a hard limit needs CAP_SYS_RESOURCE, which this sandbox lacks",
                              service=service.name, key="ulimits", hint=f"use a hard limit of at most {cur}")

