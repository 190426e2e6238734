"""`up` (project/images.prepare) skips the registry client when every service image is present and none is pull_policy: always."""

from __future__ import annotations

from dataclasses import dataclass, field
from composer.project.images import nothing_to_pull as _nothing_to_pull


@dataclass
class Svc:
    image: str | None
    pull_policy: str | None = None


@dataclass
class Proj:
    services: dict = field(default_factory=dict)


class Store:
    def exists(self, ref: str) -> bool:
        return ref in {"have:1"}


def test_nothing_to_pull():
    rt = Store()
    assert _nothing_to_pull(Proj({"a": Svc("have:1"), "b": Svc(None)}), rt)
    assert not _nothing_to_pull(Proj({"a": Svc("have:1"), "b": Svc("missing:1")}), rt)
    assert not _nothing_to_pull(Proj({"a": Svc("have:1", pull_policy="always")}), rt)
    assert _nothing_to_pull(Proj(), rt)
