"""load_project: options -> files -> documents -> one merged document -> validated -> the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from composer.config import model as m
from composer.config.documents import Doc, Env, Reader, merge_all, resolve_extends, resolve_include
from composer.config.envfile import read_env_file
from composer.config.normalize import Normalizer
from composer.config.semantic import check_project, select_profiles
from composer.config.sources import LoadOptions, Sources, active_profiles, project_name, resolve_sources
from composer.config.yamlsrc import Marks, strip_tags


@dataclass(frozen=True)
class RawProject:
    """The merged, interpolated (unless disabled) plain document, before normalisation."""

    name: str
    data: dict
    marks: Marks
    sources: Sources
    warnings: tuple[str, ...]


def load_raw(opts: LoadOptions) -> RawProject:
    src = resolve_sources(opts)
    # COMPOSE_PROJECT_NAME is there for interpolation, from -p, the files' `name:` or the directory
    env = Env(src.environ, lazy={"COMPOSE_PROJECT_NAME": lambda: _early_name(opts, src)})
    reader = Reader(environ=env, interpolate=opts.interpolate, stdin=opts.stdin, top_files=frozenset(src.files))
    marks: Marks = {}
    docs: list[dict] = []
    for path in src.files:
        doc = reader.read(path, src.working_dir)
        data = resolve_include(doc, reader, marks, (path,))
        data = resolve_extends(Doc(doc.path, data, doc.marks, doc.base_dir), reader, marks)
        marks.update(doc.marks)
        docs.append(data)
    merged = strip_tags(merge_all(docs))
    from composer.config.validate import validate

    validate(merged, marks)
    name_in_file = merged.get("name")
    name = project_name(opts, src, str(name_in_file) if name_in_file is not None else None)
    return RawProject(name, merged, marks, src, tuple(reader.warnings))


def _early_name(opts: LoadOptions, src: Sources) -> str | None:
    """The project name before the files are interpolated: the last file's `name:` (interpolated alone)."""
    from composer.config import fileio
    from composer.config.interpolate import InterpolationError, expand
    from composer.config.yamlsrc import parse
    from composer.errors import ConfigError

    name = None
    for path in src.files:
        if path == "-":
            continue
        try:
            data, _ = parse(fileio.read_text(path), path)
        except (OSError, UnicodeDecodeError, ConfigError):
            continue  # the real read reports it
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            name = data["name"]
    try:
        name = expand(name, src.environ.get) if name else None
    except InterpolationError:
        name = None
    try:
        return project_name(opts, src, name)
    except ConfigError:
        return None


def load_project(opts: LoadOptions) -> m.Project:
    """Read, merge, interpolate, validate and normalise a project. Raises ConfigError."""
    raw = load_raw(opts)
    return build_project(raw, opts)


def build_project(raw: RawProject, opts: LoadOptions) -> m.Project:
    src, data = raw.sources, raw.data
    norm = Normalizer(raw.name, src.working_dir, src.environ, raw.marks, read_env_file)
    if not opts.resolve_paths:
        norm.base = None
    services_raw: dict[str, Any] = data.get("services") or {}
    profiles = active_profiles(opts, src)
    all_services = {name: norm.service(name, svc or {}) for name, svc in sorted(services_raw.items())}
    enabled, disabled, profiles = select_profiles(all_services, profiles, opts.services, raw.marks)
    networks = {k: norm.network(k, v) for k, v in sorted((data.get("networks") or {}).items())}
    if "default" not in networks and any("default" in s.networks for s in enabled.values()):
        networks["default"] = norm.network("default", None)
    project = m.Project(
        name=raw.name, working_dir=src.working_dir, services=m.FrozenMap(enabled),
        networks=m.FrozenMap(sorted(networks.items())),
        volumes=m.FrozenMap((k, norm.volume(k, v)) for k, v in sorted((data.get("volumes") or {}).items())),
        configs=m.FrozenMap((k, norm.file_object(k, v)) for k, v in sorted((data.get("configs") or {}).items())),
        secrets=m.FrozenMap((k, norm.file_object(k, v)) for k, v in sorted((data.get("secrets") or {}).items())),
        files=src.files, environment=m.FrozenMap(sorted(src.environ.items())),
        env_sources=m.FrozenMap(sorted(src.env_sources.items())), profiles=profiles,
        disabled_services=m.FrozenMap(disabled), warnings=raw.warnings,
        models=m.FrozenMap(sorted((k, m.freeze(v or {})) for k, v in (data.get("models") or {}).items())),
        extensions=m.FrozenMap(sorted((k, m.freeze(v)) for k, v in data.items() if k.startswith("x-"))),
    )
    check_project(project, raw.marks)
    return project
