"""The stack file: files + environment -> one validated, typed, immutable project model.

    from composer.config import LoadOptions, load_project, config_hash
    project = load_project(LoadOptions(files=("compose.yaml",)))
    for name, service in project.services.items(): ...

Pure: reads files and the environment; its one write is the model cache (config.cache), and only
where a caller names a LoadOptions.cache_dir. Errors are ConfigError. The loader itself
(config.loader: yaml, merging, the schema) is imported only when there is no cached model; the
unprocessed document is `config.loader.load_raw`."""

from __future__ import annotations

from composer.config.cache import load_project
from composer.config.model import (
    Build, Dependency, Deploy, FileObject, FileRef, FrozenMap, Healthcheck, IpamPool, Logging, Network,
    Project, ResourceSpec, RestartPolicy, Service, ServiceNetwork, ServicePort, ServiceVolume, Ulimit, Volume,
)
from composer.config.serialize import config_hash, project_dict, service_dict
from composer.config.sources import LoadOptions

__all__ = [
    "Build", "Dependency", "Deploy", "FileObject", "FileRef", "FrozenMap", "Healthcheck", "IpamPool",
    "LoadOptions", "Logging", "Network", "Project", "ResourceSpec", "RestartPolicy", "Service",
    "ServiceNetwork", "ServicePort", "ServiceVolume", "Ulimit", "Volume", "config_hash", "load_project",
    "project_dict", "service_dict",
]
