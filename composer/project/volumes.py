"""The project's volumes (`Volumes`, a collaborator of the runner; stateless beyond its Stack): the named volumes an `up` or `run` needs made
(labelled with project and key; external ones must exist), the mounts `volumes_from` borrows, and
the volumes removed by `down --volumes` (named and anonymous, by label and by the stack file)."""

from __future__ import annotations

from collections.abc import Sequence

from composer.config.model import Service
from composer.errors import NotFoundError
from composer.project.stack import Stack
from composer.service import service as svcmod
from composer.service.links import L_PROJECT
from composer.service.mounts import L_VOLUME


class Volumes:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def check(self, names: Sequence[str]) -> list:
        """The declared volumes the services use, each refused now (nothing made yet) when it is not
        declared, an external one is missing, or its name cannot be a volume's."""
        model = self.stack.need_model()
        keys = sorted({v.source for n in names for v in model.services[n].volumes if v.type == "volume" and v.source})
        out = []
        for key in keys:
            if key not in model.volumes:
                raise svcmod.ConfigError(f"volume {key} is used but not declared", key="volumes")
            vol = model.volumes[key]
            if vol.external:
                if not self.stack.volumes.exists(vol.name):
                    raise NotFoundError(f"volume {vol.name} declared as external, but could not be found",
                                        hint=f"create it first: composer volume create {vol.name}")
                continue
            self.stack.volumes.check_name(vol.name)
            out.append((key, vol))
        return out

    def ensure(self, names: Sequence[str], *, dry_run: bool = False) -> None:
        """Make the services' named volumes (dry_run: report the missing ones as planned Events)."""
        for key, vol in self.check(names):
            if not self.stack.volumes.exists(vol.name) and dry_run:
                self.stack.emit("volume", vol.name, "Create", None, "not created yet", planned=True)
            elif not self.stack.volumes.exists(vol.name):
                self.stack.emit("volume", vol.name, "Creating")
                labels = {**vol.labels, L_PROJECT: self.stack.name, L_VOLUME: key}
                self.stack.volumes.ensure(vol.name, tuple(sorted(labels.items())))
                self.stack.emit("volume", vol.name, "Created")

    def volumes_from(self, s: Service) -> list[tuple[tuple, bool]]:
        out = []
        for item in s.volumes_from:
            parts = item.split(":")
            if parts[0] == "container":
                ref, mode = parts[1], (parts[2] if len(parts) > 2 else "rw")
                src = self.stack.runtime.get(ref)
            else:
                ref, mode = parts[0], (parts[1] if len(parts) > 1 else "rw")
                found = [c for c in self.stack.containers([ref], all=True)]
                if not found:
                    raise NotFoundError(f"service {s.name}: volumes_from {ref} has no container")
                src = found[0]
            out.append((src.spec.mounts, mode == "ro"))
        return out

    def _names(self) -> list[str]:
        names = {v.name for v in self.stack.volumes.list({L_PROJECT: self.stack.name})}
        if self.stack.model is not None:
            names |= {v.name for v in self.stack.model.volumes.values() if not v.external and self.stack.volumes.exists(v.name)}
        return sorted(names)

    def to_remove(self) -> list[str]:
        """What remove() would remove, as its events name them (anonymous volumes by a short id)."""
        out = []
        for name in self._names():
            info = self.stack.volumes.get(name)
            out.append(name[:12] if info.anonymous else name)
        return out

    def remove(self) -> None:
        for name in self._names():
            info = self.stack.volumes.get(name)
            label = name[:12] if info.anonymous else name
            self.stack.emit("volume", label, "Removing")
            self.stack.volumes.remove(name)
            self.stack.emit("volume", label, "Removed")
