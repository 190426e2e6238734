"""The global flags (-f, -p, --project-directory, --env-file, --profile) -> LoadOptions, shared by
every command that reads a stack file (config, up, down, ps, ...)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from composer.config import LoadOptions, Project, load_project
from composer.runtime import default_state_dir


def load_options_from_args(args: argparse.Namespace, services: Sequence[str] = (), **overrides) -> LoadOptions:
    """`services`: service names given on the command line (they enable their own profiles)."""
    opts = dict(
        files=tuple(getattr(args, "files", None) or ()),
        project_name=getattr(args, "project_name", None),
        project_directory=getattr(args, "project_directory", None),
        env_files=tuple(getattr(args, "env_files", None) or ()),
        profiles=tuple(getattr(args, "profiles", None) or ()),
        environ=os.environ,
        services=tuple(services),
        # config.cache; not for a command that must leave the host as it was (a dry run, `build --print`)
        cache_dir=(None if getattr(args, "dry_run", False) or getattr(args, "print_bake", False)
                   else os.path.join(default_state_dir(), "cache", "models")),
    )
    opts.update(overrides)
    return LoadOptions(**opts)


def load_project_from_args(args: argparse.Namespace, services: Sequence[str] = (), **overrides) -> Project:
    """Load the project and print its warnings (unset variables) to stderr, as compose does."""
    project = load_project(load_options_from_args(args, services, **overrides))
    print_warnings(project.warnings)
    return project


def print_warnings(warnings: Sequence[str]) -> None:
    for w in warnings:
        sys.stderr.write(f"composer: warning: {w}\n")
