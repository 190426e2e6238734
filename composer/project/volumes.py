"""The project's volumes, as part of ProjectRunner: the named volumes an `up` or `run` needs made
(labelled with project and key; external ones must exist), the mounts `volumes_from` borrows, and
the volumes removed by `down --volumes` (named and anonymous, by label and by the stack file)."""

from __future__ import annotations

from collections.abc import Sequence

from composer.config.model import Service
from composer.errors import NotFoundError
from composer.service import service as svcmod
from composer.service.links import L_PROJECT
from composer.service.mounts import L_VOLUME


class VolumesMixin:
    """ProjectRunner's volumes (uses its model, volumes, runtime, containers, emit, _need_model)."""

    def _ensure_volumes(self, names: Sequence[str]) -> None:
        model = self._need_model()
        keys = sorted({v.source for n in names for v in model.services[n].volumes if v.type == "volume" and v.source})
        for key in keys:
            if key not in model.volumes:
                raise svcmod.ConfigError(f"volume {key} is used but not declared", key="volumes")
            vol = model.volumes[key]
            if vol.external:
                if not self.volumes.exists(vol.name):
                    raise NotFoundError(f"volume {vol.name} declared as external, but could not be found",
                                        hint=f"create it first: composer volume create {vol.name}")
                continue
            if not self.volumes.exists(vol.name):
                self.emit("volume", vol.name, "Creating")
                labels = {**vol.labels, L_PROJECT: self.name, L_VOLUME: key}
                self.volumes.ensure(vol.name, tuple(sorted(labels.items())))
                self.emit("volume", vol.name, "Created")

    def _volumes_from(self, s: Service) -> list[tuple[tuple, bool]]:
        out = []
        for item in s.volumes_from:
            parts = item.split(":")
            if parts[0] == "container":
                ref, mode = parts[1], (parts[2] if len(parts) > 2 else "rw")
                src = self.runtime.get(ref)
            else:
                ref, mode = parts[0], (parts[1] if len(parts) > 1 else "rw")
                found = [c for c in self.containers([ref], all=True)]
                if not found:
                    raise NotFoundError(f"service {s.name}: volumes_from {ref} has no container")
                src = found[0]
            out.append((src.spec.mounts, mode == "ro"))
        return out

    def _remove_volumes(self) -> None:
        names = {v.name for v in self.volumes.list({L_PROJECT: self.name})}
        if self.model is not None:
            names |= {v.name for v in self.model.volumes.values() if not v.external and self.volumes.exists(v.name)}
        for name in sorted(names):
            info = self.volumes.get(name)
            label = name[:12] if info.anonymous else name
            self.emit("volume", label, "Removing")
            self.volumes.remove(name)
            self.emit("volume", label, "Removed")
