"""Where the stack comes from: the files (`-f`, COMPOSE_FILE, discovery upward with the override
file), the project directory, the environment (shell over `.env` / `--env-file`) and the project
name. Everything the loader needs before it reads a single service."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO

from composer.stackfiles import CANDIDATES, OVERRIDES, PROJECT_NAME_RULE, find_stack_files, valid_project_name  # noqa: F401
from composer.config import fileio
from composer.config.envfile import read_env_file
from composer.errors import ConfigError


@dataclass(frozen=True, eq=False)
class LoadOptions:
    """What the CLI's global flags (and a library caller) can say about loading a project."""

    files: tuple[str, ...] = ()  # "-" reads stdin
    project_name: str | None = None
    project_directory: str | None = None
    env_files: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    interpolate: bool = True
    normalize: bool = True
    resolve_paths: bool = True  # False: relative paths stay as written (`config --no-path-resolution`)
    services: tuple[str, ...] = ()  # services named on the command line: they enable their profiles
    cwd: str | None = None  # where discovery starts (default: the process's cwd)
    stdin: IO[str] | None = None  # for "-" (default sys.stdin)
    cache_dir: str | None = None  # keep the loaded model there for the next identical load (config.cache)


@dataclass(frozen=True)
class Sources:
    """Which files make the project, and the environment that interpolates them."""

    files: tuple[str, ...]  # absolute paths, or "-"
    working_dir: str
    environ: dict[str, str]  # interpolation environment: shell over .env
    env_sources: dict[str, str]  # variable -> "shell" or the .env path it came from
    dotenv_files: tuple[str, ...]


def resolve_sources(opts: LoadOptions) -> Sources:
    cwd = os.path.abspath(opts.cwd or os.getcwd())
    shell = dict(opts.environ)
    proj_dir = os.path.abspath(os.path.join(cwd, opts.project_directory)) if opts.project_directory else None
    # A first look at .env for COMPOSE_FILE, before we know which files (and so which directory) we use.
    pre_env = _dotenv(opts, proj_dir or cwd, cwd, shell)[0]
    lookup = {**{k: v for k, v in pre_env.items() if v is not None}, **shell}
    files = list(opts.files)
    if not files and lookup.get("COMPOSE_FILE"):
        sep = lookup.get("COMPOSE_PATH_SEPARATOR") or os.pathsep
        base = proj_dir or cwd
        files = [os.path.join(base, f) for f in lookup["COMPOSE_FILE"].split(sep) if f]
    if not files:
        files = discover(proj_dir or cwd)
    files = ["-" if f == "-" else os.path.abspath(os.path.join(cwd, f)) for f in files]
    for f in files:
        if f != "-" and not fileio.isfile(f):
            raise ConfigError(f"stack file {f} not found")
    if proj_dir is None:
        first = files[0]
        proj_dir = cwd if first == "-" else os.path.dirname(first)
    dotenv, dotenv_files = _dotenv(opts, proj_dir, cwd, shell)
    environ: dict[str, str] = {}
    sources: dict[str, str] = {}
    for k, v in dotenv.items():
        if v is not None:
            environ[k] = v
            sources[k] = dotenv_files[-1] if dotenv_files else ".env"
    for k, v in shell.items():
        environ[k] = v
        sources[k] = "shell"
    return Sources(tuple(files), proj_dir, environ, sources, tuple(dotenv_files))


def _dotenv(opts: LoadOptions, proj_dir: str, cwd: str, shell: dict) -> tuple[dict, list[str]]:
    if opts.env_files:
        paths = [os.path.abspath(os.path.join(cwd, p)) for p in opts.env_files]
        missing = [p for p in paths if not fileio.isfile(p)]
        if missing:
            raise ConfigError(f"env file {missing[0]} not found")
    else:
        default = os.path.join(proj_dir, ".env")
        paths = [default] if fileio.isfile(default) else []
    env: dict[str, str | None] = {}
    for p in paths:
        env.update(read_env_file(p, lambda n: shell.get(n, env.get(n))))
    return env, paths


def discover(start: str) -> list[str]:
    """find_stack_files, or a ConfigError saying where it looked."""
    found = find_stack_files(start, fileio.isfile)
    if found is None:
        raise ConfigError(f"no stack file found in {start} or any parent directory "
                          f"(looked for {', '.join(CANDIDATES)})", hint="use -f FILE")
    return found


def project_name(opts: LoadOptions, src: Sources, from_file: str | None) -> str:
    """-p, then COMPOSE_PROJECT_NAME (shell over .env), then `name:`, then the directory's name."""
    # `name:` in a file is normalised as compose does (`My_App` -> `my_app`); -p and the variable are checked
    from_file = normalize_name(from_file) if from_file else from_file
    for value, what in ((opts.project_name, "-p"), (src.environ.get("COMPOSE_PROJECT_NAME"), "COMPOSE_PROJECT_NAME"),
                        (from_file, "name")):
        if value:
            if not valid_project_name(value):
                raise ConfigError(f"invalid project name {value[:80]!r} (from {what}): {PROJECT_NAME_RULE}")
            return value
    name = normalize_name(os.path.basename(src.working_dir.rstrip("/")) or "")
    if not valid_project_name(name):
        raise ConfigError(f"cannot derive a project name from {src.working_dir[:120]!r}: {PROJECT_NAME_RULE}",
                          hint="use -p NAME")
    return name


def normalize_name(name: str) -> str:
    """As compose does for directory names: lowercase, only [a-z0-9_-], starting with [a-z0-9]."""
    name = re.sub(r"[^a-z0-9_-]", "", name.lower())
    return name.lstrip("_-")


def active_profiles(opts: LoadOptions, src: Sources) -> tuple[str, ...]:
    if opts.profiles:
        names = list(opts.profiles)
    else:
        names = [p.strip() for p in src.environ.get("COMPOSE_PROFILES", "").split(",")]
    return tuple(sorted({p for p in names if p}))
