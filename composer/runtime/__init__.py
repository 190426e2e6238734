"""The container runtime: runs ONE container from a ContainerSpec and owns its state on disk.
Knows nothing of YAML, services, projects or rich; a library any program could use.

    container/  Runtime: create, start, stop, remove, exec, state on disk, logs read back
    monitor/    the launcher, one monitor per container, PID 1's set-up, health, tty, cmp-pump
    net/        bridges, veths, IPAM, nft, published ports, proxy, rtnetlink, hosts files
    cgroups/    v1 and v2 drivers, detection, limits
    security/   capabilities, seccomp
    fs/         the container's root filesystem
    spec.py     ContainerSpec, the model every sub-package shares; syscalls.py, what os lacks

Layers (checked by import-linter): container -> monitor -> net | cgroups | security | fs ->
spec | syscalls. May import errors, units and paths. Heavy parts (cgroups, network) are imported
lazily; `import composer.runtime` (the Runtime API below) stays cheap."""

from composer.runtime.container.containers import ContainerInfo, LogRecord, Runtime, default_state_dir
from composer.runtime.spec import ContainerSpec

__all__ = ["ContainerInfo", "ContainerSpec", "LogRecord", "Runtime", "default_state_dir"]
