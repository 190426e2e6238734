"""What a conversion could not carry over, key by key: typed items that a caller prints as one
warning line each, or refuses with --strict. `notes` are mapped but changed in a way the user must
know (a shared volume becomes ReadWriteMany): printed, never fatal. The Swarm deploy reports in the
same shape."""

from __future__ import annotations

from dataclasses import dataclass, field

from composer.errors import ConfigError


@dataclass(frozen=True)
class Unmapped:
    """One key of one service (service "" for top-level keys) with no faithful equivalent."""

    service: str
    key: str
    reason: str
    fatal: bool = True  # False: a note (mapped, with a change worth saying); --strict lets it pass

    def line(self) -> str:
        where = f"service {self.service}: " if self.service else ""
        return f"{where}{self.key}: {self.reason}"


@dataclass
class Report:
    items: list[Unmapped] = field(default_factory=list)

    def unmapped(self, service: str, key: str, reason: str) -> None:
        item = Unmapped(service, key, reason)
        if item not in self.items:
            self.items.append(item)

    def note(self, service: str, key: str, reason: str) -> None:
        item = Unmapped(service, key, reason, fatal=False)
        if item not in self.items:
            self.items.append(item)

    @property
    def refused(self) -> list[Unmapped]:
        return [i for i in self.items if i.fatal]

    def raise_if_strict(self, strict: bool, target: str = "Kubernetes") -> None:
        """With strict, every refused item in one error (the lines as the warnings print them)."""
        refused = self.refused
        if strict and refused:
            lines = "\n  ".join(i.line() for i in refused)
            raise ConfigError(f"{len(refused)} key(s) have no {target} equivalent (--strict):\n  {lines}",
                              service=refused[0].service or None, key=refused[0].key,
                              hint="drop --strict to convert with warnings, or remove these keys")
