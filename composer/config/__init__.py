"""The stack file: files + environment -> one validated, typed, immutable project model.

    from composer.config import LoadOptions, load_project, config_hash
    project = load_project(LoadOptions(files=("compose.yaml",)))
    for name, service in project.services.items(): ...

Pure: reads files and the environment, never touches the host otherwise. Errors are ConfigError."""

from __future__ import annotations

from composer.config.loader import RawProject, load_project, load_raw
from composer.config.model import (
    Build, Dependency, Deploy, FileObject, FileRef, FrozenMap, Healthcheck, IpamPool, Logging, Network,
    Project, ResourceSpec, RestartPolicy, Service, ServiceNetwork, ServicePort, ServiceVolume, Ulimit, Volume,
)
from composer.config.serialize import config_hash, project_dict, service_dict
from composer.config.sources import LoadOptions

__all__ = [
    "Build", "Dependency", "Deploy", "FileObject", "FileRef", "FrozenMap", "Healthcheck", "IpamPool",
    "LoadOptions", "Logging", "Network", "Project", "RawProject", "ResourceSpec", "RestartPolicy", "Service",
    "ServiceNetwork", "ServicePort", "ServiceVolume", "Ulimit", "Volume", "config_hash", "load_project",
    "load_raw", "project_dict", "service_dict",
]
