"""Validated, merged plain data -> the typed model (composer.config.model): short syntax expanded,
sizes in bytes, durations in seconds, paths absolute, dependencies explicit, real network and volume
names. Every conversion error becomes one ConfigError at the value's file:line:column."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from composer.config import fileio
from composer.config import model as m
from composer.config.carried import CarriedKeys
from composer.config.develop import develop
from composer.config.interpolate import located_error
from composer.config.merge import kv_to_dict
from composer.config.shortsyntax import absolute, parse_port, parse_volume
from composer.config.yamlsrc import Marks
from composer.config.yamlsrc import opt_text as _opt_str
from composer.config.yamlsrc import scalar_text as _scalar_str
from composer.errors import ComposerError, ConfigError
from composer.units import parse_duration, parse_size

FM = m.FrozenMap


class Normalizer(CarriedKeys):
    def __init__(self, project: str, working_dir: str, environ: Mapping[str, str], marks: Marks,
                 read_env_file: Callable[[str, Callable], dict]) -> None:
        self.project, self.wd, self.environ, self.marks = project, working_dir, environ, marks
        # where printed paths resolve: the project directory, or None to keep them as written
        # (`config --no-path-resolution`); files composer reads (env files, label files) always resolve
        self.base: str | None = working_dir
        self.read_env_file = read_env_file

    # -- helpers
    def err(self, path: tuple, msg: str) -> ConfigError:
        return located_error(msg, self.marks, path)

    def conv(self, path: tuple, fn: Callable, value: Any) -> Any:
        """Run a converter; its UsageError/ValueError becomes a located ConfigError."""
        if value is None:
            return None
        try:
            return fn(value)
        except ConfigError:
            raise
        except (ComposerError, ValueError, TypeError, AttributeError) as e:
            raise self.err(path, getattr(e, "message", None) or str(e)) from None

    def size(self, path: tuple, value: Any) -> int | None:
        if value in (-1, "-1"):
            return -1
        return self.conv(path, lambda v: parse_size(v), value)

    def duration(self, path: tuple, value: Any) -> float | None:
        return self.conv(path, lambda v: parse_duration(v), value)

    def bool_(self, path: tuple, value: Any, default: bool | None = False) -> bool | None:
        """Booleans may arrive as strings after interpolation (`tty: ${TTY}`)."""
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "y", "on"):
            return True
        if text in ("false", "0", "no", "n", "off", ""):
            return False
        raise self.err(path, f"must be true or false, not {value!r}")

    def int_(self, path: tuple, value: Any) -> int | None:
        return self.conv(path, lambda v: _bad(v) if isinstance(v, bool) else
                         int(v) if isinstance(v, float) and v.is_integer() else int(str(v)), value)

    def float_(self, path: tuple, value: Any) -> float | None:
        return self.conv(path, lambda v: float(v) if not isinstance(v, bool) else _bad(v), value)

    @staticmethod
    def strmap(value: Any) -> FM:
        d = kv_to_dict(value) if value is not None else {}
        # `labels: [novalue]` is the empty string, as compose reads it (not null)
        return FM(sorted((str(k), _scalar_str(v) if v is not None else "") for k, v in d.items()))

    @staticmethod
    def strs(value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, (str, int, float)):
            return (_scalar_str(value),)
        return tuple(_scalar_str(v) for v in value)

    def argv(self, path: tuple, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return tuple(shlex.split(value))
            except ValueError as e:
                raise self.err(path, f"cannot split {value!r}: {e}") from None
        return tuple(_scalar_str(v) for v in value)

    # -- services
    def service(self, name: str, d: dict) -> m.Service:
        p = ("services", name)
        self._svc = name
        ext = FM(sorted((k, m.freeze(v)) for k, v in d.items() if k.startswith("x-")))
        networks, network_mode = self.service_networks(p, d)
        return m.Service(
            name=name, image=_opt_str(d.get("image")), build=self.build(p + ("build",), d.get("build")),
            command=self.argv(p + ("command",), d.get("command")),
            entrypoint=self.argv(p + ("entrypoint",), d.get("entrypoint")),
            environment=self.environment(p, d), env_file=self.env_files(p, d.get("env_file")),
            working_dir=_opt_str(d.get("working_dir")), user=_opt_str(d.get("user")),
            hostname=_opt_str(d.get("hostname")), domainname=_opt_str(d.get("domainname")),
            container_name=_opt_str(d.get("container_name")), labels=self.labels(p, d),
            ports=self.ports(p + ("ports",), d.get("ports")), expose=self.strs(d.get("expose")),
            volumes=self.volumes(p + ("volumes",), d.get("volumes")),
            volumes_from=self.strs(d.get("volumes_from")), tmpfs=self.strs(d.get("tmpfs")),
            depends_on=self.depends_on(d), links=self.links(d.get("links")),
            external_links=self.strs(d.get("external_links")), networks=networks,
            network_mode=network_mode, extra_hosts=self.extra_hosts(d.get("extra_hosts")),
            dns=self.strs(d.get("dns")), dns_search=self.strs(d.get("dns_search")),
            dns_opt=self.strs(d.get("dns_opt")),
            healthcheck=self.healthcheck(p + ("healthcheck",), d.get("healthcheck")),
            restart=_opt_str(d.get("restart")), deploy=self.deploy(p + ("deploy",), d.get("deploy")),
            scale=self.int_(p + ("scale",), d.get("scale")), profiles=self.strs(d.get("profiles")),
            stop_signal=_opt_str(d.get("stop_signal")),
            stop_grace_period=self.duration(p + ("stop_grace_period",), d.get("stop_grace_period")),
            init=self.bool_(p + ("init",), d.get("init"), None), tty=self.bool_(p + ("tty",), d.get("tty")), stdin_open=self.bool_(p + ("stdin_open",), d.get("stdin_open")),
            read_only=self.bool_(p + ("read_only",), d.get("read_only")), privileged=self.bool_(p + ("privileged",), d.get("privileged")),
            cap_add=self.strs(d.get("cap_add")), cap_drop=self.strs(d.get("cap_drop")),
            security_opt=self.strs(d.get("security_opt")), ulimits=self.ulimits(p, d.get("ulimits")),
            sysctls=self.strmap(d.get("sysctls")), shm_size=self.size(p + ("shm_size",), d.get("shm_size")),
            mem_limit=self.size(p + ("mem_limit",), d.get("mem_limit")),
            memswap_limit=self.size(p + ("memswap_limit",), d.get("memswap_limit")),
            mem_reservation=self.size(p + ("mem_reservation",), d.get("mem_reservation")),
            cpus=self.float_(p + ("cpus",), d.get("cpus")), cpu_shares=self.int_(p + ("cpu_shares",), d.get("cpu_shares")),
            cpuset=_opt_str(d.get("cpuset")), pids_limit=self.int_(p + ("pids_limit",), d.get("pids_limit")),
            logging=self.logging(d.get("logging")), oom_kill_disable=self.bool_(p + ("oom_kill_disable",), d.get("oom_kill_disable")),
            oom_score_adj=self.int_(p + ("oom_score_adj",), d.get("oom_score_adj")),
            pull_policy=_opt_str(d.get("pull_policy")), platform=_opt_str(d.get("platform")),
            ipc=_opt_str(d.get("ipc")), pid=_opt_str(d.get("pid")), cgroup=_opt_str(d.get("cgroup")),
            configs=self.file_refs(d.get("configs")), secrets=self.file_refs(d.get("secrets")),
            devices=tuple(str(x) if not isinstance(x, dict) else
                          ":".join([str(x.get("source")), str(x.get("target", x.get("source")))]
                                   + ([str(x["permissions"])] if x.get("permissions") else []))
                          for x in d.get("devices") or ()),
            device_cgroup_rules=self.strs(d.get("device_cgroup_rules")),
            group_add=self.strs(d.get("group_add")), develop=develop(self, p + ("develop",), d.get("develop")),
            extensions=ext, **self.carried(p, d),
        )

    def build(self, path: tuple, b: Any) -> m.Build | None:
        if b is None:
            return None
        if isinstance(b, str):
            b = {"context": b}
        ctx = str(b.get("context") or ".")
        if not _is_url(ctx):
            ctx = absolute(ctx, self.base)
        return m.Build(
            context=ctx, dockerfile=_opt_str(b.get("dockerfile")), dockerfile_inline=_opt_str(b.get("dockerfile_inline")),
            args=self.build_args(b.get("args")),
            target=_opt_str(b.get("target")), labels=self.strmap(b.get("labels")), network=_opt_str(b.get("network")),
            cache_from=self.strs(b.get("cache_from")), extra_hosts=self.extra_hosts(b.get("extra_hosts")),
            shm_size=self.size(path + ("shm_size",), b.get("shm_size")), tags=self.strs(b.get("tags")),
            platforms=self.strs(b.get("platforms")), no_cache=self.bool_(path + ("no_cache",), b.get("no_cache")),
            pull=self.bool_(path + ("pull",), b.get("pull")),
            additional_contexts=FM(sorted((k, v if _is_url(str(v)) or str(v).startswith(("docker-image://", "service:", "target:"))
                                           else absolute(str(v), self.base))
                                          for k, v in kv_to_dict(b.get("additional_contexts")).items())),
            secrets=self.file_refs(b.get("secrets")), ssh=self.strs(b.get("ssh")),
            cache_to=self.strs(b.get("cache_to")), entitlements=self.strs(b.get("entitlements")),
            isolation=_opt_str(b.get("isolation")), privileged=self.bool_(path + ("privileged",), b.get("privileged")),
            provenance=_opt_str(b.get("provenance")), sbom=_opt_str(b.get("sbom")), ulimits=self.ulimits(path, b.get("ulimits")),
            extensions=FM(sorted((k, m.freeze(v)) for k, v in b.items() if k.startswith("x-"))),
        )

    def build_args(self, value: Any) -> FM:
        """`args: [NAME]` (no value) takes NAME from the shell or .env, as compose does; unset stays null."""
        args = kv_to_dict(value or {})
        return FM(sorted((str(k), _scalar_str(v) if v is not None else self.environ.get(str(k)))
                         for k, v in args.items()))

    def labels(self, path: tuple, d: dict) -> FM:
        """`label_file` entries (KEY=VALUE lines, in order), then `labels`, which win."""
        out: dict[str, str] = {}
        files = d.get("label_file")
        for f in [files] if isinstance(files, str) else files or ():
            try:
                values = self.read_env_file(absolute(str(f), self.wd), None)
            except ConfigError as e:
                raise self.err(path + ("label_file",), e.message) from None
            out.update({k: v or "" for k, v in values.items()})
        out.update(self.strmap(d.get("labels")))
        return FM(sorted(out.items()))

    def env_files(self, path: tuple, value: Any) -> tuple[str, ...]:
        return tuple(absolute(e["path"], self.base) for e in _env_file_entries(value))

    def environment(self, path: tuple, d: dict) -> tuple[tuple[str, str | None], ...]:
        env: dict[str, str | None] = {}
        lookup = self.environ.get
        for entry in _env_file_entries(d.get("env_file")):
            file = absolute(entry["path"], self.wd)
            if not entry.get("required", True) and not fileio.exists(file):
                continue
            try:
                if entry.get("format") == "raw":
                    from composer.config.envfile import read_raw_env_file

                    values = read_raw_env_file(file)
                else:
                    values = self.read_env_file(file, lookup)
            except ConfigError as e:
                raise self.err(path + ("env_file",), e.message) from None
            env.update(values)
        for k, v in kv_to_dict(d.get("environment") or {}).items():
            env[str(k)] = _scalar_str(v) if v is not None else lookup(str(k))
        return tuple(sorted((k, v) for k, v in env.items() if v is not None))

    def ports(self, path: tuple, value: Any) -> tuple[m.ServicePort, ...]:
        out: list[m.ServicePort] = []
        for i, item in enumerate(value or ()):
            out.extend(self.conv(path + (i,), parse_port, item))
        return tuple(out)

    def volumes(self, path: tuple, value: Any) -> tuple[m.ServiceVolume, ...]:
        return tuple(self.conv(path + (i,), lambda v: parse_volume(v, self.base), item)
                     for i, item in enumerate(value or ()))

    def depends_on(self, d: dict) -> FM:
        deps: dict[str, m.Dependency] = {}
        raw = d.get("depends_on") or {}
        if isinstance(raw, list):
            raw = {str(s): {} for s in raw}
        for name, spec in raw.items():
            spec = spec or {}
            deps[name] = m.Dependency(condition=spec.get("condition") or "service_started",
                                      required=self.bool_(("services", self._svc, "depends_on", name), spec.get("required"), True),
                                      restart=self.bool_(("services", self._svc, "depends_on", name), spec.get("restart")))
        # implicit dependencies: links, volumes_from and network_mode service:x
        # (links and network_mode also restart the dependent when the dependency restarts, as compose does)
        implicit = [(svc, True) for svc, _ in self.links(d.get("links"))]
        for v in self.strs(d.get("volumes_from")):
            if not v.startswith("container:"):
                implicit.append((v.split(":")[0], False))
        nm = self.network_mode_of(d)
        if nm and nm.startswith("service:"):
            implicit.append((nm[8:], True))
        for name, restart in implicit:
            deps.setdefault(name, m.Dependency(restart=restart))
        return FM(sorted(deps.items()))

    @staticmethod
    def network_mode_of(d: dict) -> str | None:
        nm = d.get("network_mode")
        if nm is None and d.get("net") is not None:  # Fig / file format 1
            nm = str(d["net"])
        return _opt_str(nm)

    def links(self, value: Any) -> tuple[tuple[str, str], ...]:
        out = []
        for link in self.strs(value):
            svc, _, alias = link.partition(":")
            out.append((svc, alias or svc))
        return tuple(out)

    def service_networks(self, path: tuple, d: dict) -> tuple[FM, str | None]:
        mode = self.network_mode_of(d)
        raw = d.get("networks")
        if raw is None:  # a provider service runs no container: it joins no network
            return (FM() if mode or d.get("provider") else FM({"default": m.ServiceNetwork()})), mode
        if isinstance(raw, list):
            raw = {str(n): None for n in raw}
        nets = {}
        for key, spec in raw.items():
            spec = spec or {}
            nets[key] = m.ServiceNetwork(
                aliases=self.strs(spec.get("aliases")), ipv4_address=_opt_str(spec.get("ipv4_address")),
                ipv6_address=_opt_str(spec.get("ipv6_address")), mac_address=_opt_str(spec.get("mac_address")),
                priority=self.int_(path + ("networks", key, "priority"), spec.get("priority")),
                link_local_ips=self.strs(spec.get("link_local_ips")), driver_opts=self.strmap(spec.get("driver_opts")),
                gw_priority=self.int_(path + ("networks", key, "gw_priority"), spec.get("gw_priority")),
                interface_name=_opt_str(spec.get("interface_name")))
        return FM(sorted(nets.items())), mode

    @staticmethod
    def extra_hosts(value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, dict):  # `host: ip` or `host: [ip, ip6]`
            return tuple(f"{k}:{ip}" for k, v in value.items() for ip in (v if isinstance(v, list) else [v]))
        return tuple(str(v).replace("=", ":", 1) if "=" in str(v) else str(v) for v in value)

    def healthcheck(self, path: tuple, h: Any) -> m.Healthcheck | None:
        if h is None:
            return None
        test = h.get("test")
        if isinstance(test, str):
            test = ("CMD-SHELL", test)
        test = tuple(str(t) for t in test or ())
        disable = self.bool_(path + ("disable",), h.get("disable")) or test == ("NONE",)
        return m.Healthcheck(
            test=test, disable=disable, retries=self.int_(path + ("retries",), h.get("retries")),
            **{k: self.duration(path + (k,), h.get(k)) for k in ("interval", "timeout", "start_period", "start_interval")})

    def deploy(self, path: tuple, d: Any) -> m.Deploy | None:
        if d is None:
            return None
        res = d.get("resources") or {}
        rp = d.get("restart_policy")

        def spec(key: str) -> m.ResourceSpec | None:
            r = res.get(key)
            if r is None:
                return None
            q = path + ("resources", key)
            self.device_requests(q + ("devices",), r.get("devices"))
            return m.ResourceSpec(cpus=self.float_(q + ("cpus",), r.get("cpus")),
                                  memory=self.size(q + ("memory",), r.get("memory")),
                                  pids=self.int_(q + ("pids",), r.get("pids")),
                                  devices=tuple(m.freeze(x) for x in r.get("devices") or ()),
                                  generic_resources=tuple(m.freeze(x) for x in r.get("generic_resources") or ()))
        extras = {k: v for k, v in d.items() if k not in ("mode", "replicas", "resources", "restart_policy", "labels")}
        return m.Deploy(
            mode=_opt_str(d.get("mode")), replicas=self.int_(path + ("replicas",), d.get("replicas")),
            limits=spec("limits"), reservations=spec("reservations"),
            restart_policy=None if rp is None else m.RestartPolicy(
                condition=_opt_str(rp.get("condition")), delay=self.duration(path + ("restart_policy", "delay"), rp.get("delay")),
                max_attempts=self.int_(path + ("restart_policy", "max_attempts"), rp.get("max_attempts")),
                window=self.duration(path + ("restart_policy", "window"), rp.get("window"))),
            labels=self.strmap(d.get("labels")), extras=m.freeze(dict(sorted(extras.items()))))

    def ulimits(self, path: tuple, u: Any) -> FM:
        out = {}
        for name, v in (u or {}).items():
            q = path + ("ulimits", name)
            if isinstance(v, dict):
                out[name] = m.Ulimit(soft=self.int_(q, v.get("soft")), hard=self.int_(q, v.get("hard")))
            else:
                n = self.int_(q, v)
                out[name] = m.Ulimit(soft=n, hard=n)
        return FM(sorted(out.items()))

    def logging(self, lg: Any) -> m.Logging | None:
        if lg is None:
            return None
        return m.Logging(driver=_opt_str(lg.get("driver")), options=self.strmap(lg.get("options")))

    def file_refs(self, value: Any) -> tuple[m.FileRef, ...]:
        out = []
        for r in value or ():
            if isinstance(r, str):
                out.append(m.FileRef(source=r))
            else:
                mode = r.get("mode")
                out.append(m.FileRef(source=str(r.get("source")), target=_opt_str(r.get("target")),
                                     uid=_opt_str(r.get("uid")), gid=_opt_str(r.get("gid")),
                                     mode=int(mode, 8) if isinstance(mode, str) else mode))
        return tuple(out)

    # -- top level
    def network(self, key: str, d: Any) -> m.Network:
        d, p = d or {}, ("networks", key)
        ext = d.get("external")
        external = True if isinstance(ext, dict) else self.bool_(("networks", key, "external"), ext)  # `external: {name: x}` is the old form
        name = d.get("name") or (ext.get("name") if isinstance(ext, dict) else None)
        if not name:
            name = key if external else f"{self.project}_{key}"
        ipam = d.get("ipam") or {}
        return m.Network(
            key=key, name=str(name), driver=_opt_str(d.get("driver")), driver_opts=self.strmap(d.get("driver_opts")),
            internal=self.bool_(p + ("internal",), d.get("internal")), external=external, attachable=self.bool_(p + ("attachable",), d.get("attachable")),
            enable_ipv4=self.bool_(p + ("enable_ipv4",), d.get("enable_ipv4"), None),
            enable_ipv6=self.bool_(p + ("enable_ipv6",), d.get("enable_ipv6")), ipam_driver=_opt_str(ipam.get("driver")),
            ipam=tuple(m.IpamPool(subnet=_opt_str(c.get("subnet")), gateway=_opt_str(c.get("gateway")),
                                  ip_range=_opt_str(c.get("ip_range")),
                                  aux_addresses=self.strmap(c.get("aux_addresses")))
                       for c in ipam.get("config") or ()),
            labels=self.strmap(d.get("labels")),
            extensions=FM(sorted((k, m.freeze(v)) for k, v in d.items() if k.startswith("x-"))))

    def volume(self, key: str, d: Any) -> m.Volume:
        d = d or {}
        ext = d.get("external")
        external = self.bool_(("volumes", key, "external"), ext) if not isinstance(ext, dict) else True
        name = d.get("name") or (ext.get("name") if isinstance(ext, dict) else None)
        if not name:
            name = key if external else f"{self.project}_{key}"
        return m.Volume(key=key, name=str(name), driver=_opt_str(d.get("driver")),
                        driver_opts=self.strmap(d.get("driver_opts")), external=external,
                        labels=self.strmap(d.get("labels")),
                        extensions=FM(sorted((k, m.freeze(v)) for k, v in d.items() if k.startswith("x-"))))

    def file_object(self, key: str, d: Any) -> m.FileObject:
        d, p = d or {}, ("file", key)
        external = self.bool_(p + ("external",), d.get("external"))
        name = d.get("name") or (key if external else f"{self.project}_{key}")
        f = d.get("file")
        return m.FileObject(key=key, name=str(name), file=absolute(str(f), self.base) if f else None,
                            environment=_opt_str(d.get("environment")), content=_opt_str(d.get("content")),
                            external=external, labels=self.strmap(d.get("labels")),
                            driver=_opt_str(d.get("driver")), driver_opts=self.strmap(d.get("driver_opts")),
                            template_driver=_opt_str(d.get("template_driver")))


def _env_file_entries(value: Any) -> list[dict]:
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        value = [value]
    return [{"path": e} if isinstance(e, str) else e for e in value]


def _is_url(ctx: str) -> bool:
    return "://" in ctx or ctx.startswith(("git@", "github.com/"))


def _bad(v: Any):
    raise ValueError(f"invalid number {v!r}")
