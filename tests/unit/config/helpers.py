"""Shared helpers for the config tests: load a fixture dir or an inline YAML text."""

from __future__ import annotations

from pathlib import Path

from composer.config import LoadOptions, load_project

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "config"


def load_fixture(name: str, files: tuple[str, ...] = (), environ: dict | None = None, **kw):
    d = FIXTURES / name
    return load_project(LoadOptions(files=tuple(str(d / f) for f in files), project_directory=str(d) if not files else None,
                                    environ=environ or {}, cwd=str(d), **kw))


def load_text(tmp_path: Path, text: str, environ: dict | None = None, name: str = "compose.yaml", **kw):
    (tmp_path / name).write_text(text)
    return load_project(LoadOptions(files=(str(tmp_path / name),), environ=environ or {}, cwd=str(tmp_path), **kw))
