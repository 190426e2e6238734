"""The image models: ImageConfig (how to run the image, the OCI config's "config" object) and Image
(a stored image: id, references, extracted layer dirs). Frozen, so a resolved image can be handed
to any layer above without anyone mutating it."""

from __future__ import annotations

from dataclasses import dataclass, field

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NS = 1_000_000_000  # OCI/docker healthcheck durations are nanoseconds


def health_argv(test: tuple[str, ...] | list[str] | None) -> tuple[str, ...] | None:
    """A docker healthcheck test as the argv to exec: ("CMD", a, b) -> (a, b); ("CMD-SHELL", s)
    -> /bin/sh -c s; ("NONE",) or empty -> None (no check)."""
    test = tuple(test or ())
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD":
        return test[1:] or None
    if test[0] == "CMD-SHELL":
        return ("/bin/sh", "-c", " ".join(test[1:]))
    return test


@dataclass(frozen=True)
class HealthConfig:
    """docker's Healthcheck extension. test as docker stores it: ("CMD", ...), ("CMD-SHELL", cmd)
    or ("NONE",). Durations in seconds; 0 means "inherit the default"."""

    test: tuple[str, ...]
    interval: float = 0.0
    timeout: float = 0.0
    start_period: float = 0.0
    start_interval: float = 0.0
    retries: int = 0

    def to_oci(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Test": list(self.test)}
        for key, value in (("Interval", self.interval), ("Timeout", self.timeout),
                           ("StartPeriod", self.start_period), ("StartInterval", self.start_interval)):
            if value:
                out[key] = int(value * _NS)
        if self.retries:
            out["Retries"] = self.retries
        return out

    @classmethod
    def from_oci(cls, data: dict[str, Any]) -> "HealthConfig":
        return cls(
            test=tuple(data.get("Test") or ()),
            interval=(data.get("Interval") or 0) / _NS,
            timeout=(data.get("Timeout") or 0) / _NS,
            start_period=(data.get("StartPeriod") or 0) / _NS,
            start_interval=(data.get("StartInterval") or 0) / _NS,
            retries=int(data.get("Retries") or 0),
        )


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an OCI image config that decide how a container runs."""

    env: tuple[tuple[str, str], ...] = (("PATH", DEFAULT_PATH),)
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    stop_signal: str | None = None
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    volumes: tuple[str, ...] = ()
    healthcheck: HealthConfig | None = None
    shell: tuple[str, ...] | None = None

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    def to_oci(self) -> dict[str, Any]:
        """The OCI image config's "config" object (docker's spelling, docker's extensions)."""
        out: dict[str, Any] = {}
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.env:
            out["Env"] = [f"{k}={v}" for k, v in self.env]
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.volumes:
            out["Volumes"] = {v: {} for v in self.volumes}
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_oci()
        if self.shell is not None:
            out["Shell"] = list(self.shell)
        return out

    @classmethod
    def from_oci(cls, data: dict[str, Any] | None) -> "ImageConfig":
        """Tolerant of what registries hold: nulls, missing keys, unknown keys."""
        data = data or {}
        env = []
        for item in data.get("Env") or ():
            key, _, value = str(item).partition("=")
            env.append((key, value))
        health = data.get("Healthcheck")
        entry, cmd, shell = data.get("Entrypoint"), data.get("Cmd"), data.get("Shell")
        return cls(
            env=tuple(env),
            entrypoint=tuple(entry) if entry is not None else None,
            cmd=tuple(cmd) if cmd is not None else None,
            working_dir=data.get("WorkingDir") or "",
            user=data.get("User") or "",
            labels=tuple(sorted((data.get("Labels") or {}).items())),
            stop_signal=data.get("StopSignal") or None,
            exposed_ports=tuple(sorted(data.get("ExposedPorts") or {})),
            volumes=tuple(sorted(data.get("Volumes") or {})),
            healthcheck=HealthConfig.from_oci(health) if health else None,
            shell=tuple(shell) if shell is not None else None,
        )


@dataclass(frozen=True)
class Image:
    """An image in the store: id, references, layer dirs and config."""

    id: str  # "sha256:<hex>" of the config blob
    refs: tuple[str, ...]  # normalised: docker.io/library/busybox:latest
    layers: tuple[str, ...]  # extracted layer dirs, bottom-most first (overlay wants top-most first)
    config: ImageConfig
    created: str  # RFC 3339
    size: int  # bytes of the extracted layers
    diff_ids: tuple[str, ...] = ()  # "sha256:<hex>" of each uncompressed layer, same order as layers
    manifest: str = ""  # digest of the manifest blob
    architecture: str = "amd64"
    os: str = "linux"
    repo_digests: tuple[str, ...] = ()  # "docker.io/library/busybox@sha256:...": what a registry served
    history: tuple[str, ...] = field(default=(), compare=False)

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[-1][:12]
