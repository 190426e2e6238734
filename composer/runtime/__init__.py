"""The container runtime: runs ONE container from a ContainerSpec and owns its state on disk.
Knows nothing of YAML, services, projects or rich; a library any program could use.

Heavy parts (cgroups, network) are imported lazily; `import composer.runtime` stays cheap."""

from composer.runtime.containers import ContainerInfo, LogRecord, Runtime
from composer.runtime.spec import ContainerSpec

__all__ = ["ContainerInfo", "ContainerSpec", "LogRecord", "Runtime"]
