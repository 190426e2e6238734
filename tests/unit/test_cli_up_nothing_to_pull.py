"""`up` skips the registry client when every service image is present and none is pull_policy: always."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from composer.cli.stack_images import _nothing_to_pull


@dataclass
class Svc:
    image: str | None
    pull_policy: str | None = None


@dataclass
class Proj:
    services: dict = field(default_factory=dict)


def test_nothing_to_pull(tmp_path, monkeypatch):
    rt = SimpleNamespace(data_dir=str(tmp_path))
    present = {"have:1"}
    monkeypatch.setattr("composer.images.store.ImageStore.exists", lambda self, ref: ref in present)
    assert _nothing_to_pull(Proj({"a": Svc("have:1"), "b": Svc(None)}), rt)
    assert not _nothing_to_pull(Proj({"a": Svc("have:1"), "b": Svc("missing:1")}), rt)
    assert not _nothing_to_pull(Proj({"a": Svc("have:1", pull_policy="always")}), rt)
    assert _nothing_to_pull(Proj(), rt)
