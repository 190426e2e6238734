"""Images: references, the content-addressed OCI-style store, safe layer extraction, `image import`
and offline base images. Turns an image reference into an ordered list of layer dirs plus a config.

    store = ImageStore()                        # $COMPOSER_DATA_DIR/images
    image = store.resolve("busybox")            # Image(id, refs, layers=(dir, ...), config, ...)

Names are loaded on first use, so `composer images` does not pay for tarfile, gzip or subprocess."""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)

_EXPORTS = {
    "HealthConfig": "composer.images.model",
    "Image": "composer.images.model",
    "ImageConfig": "composer.images.model",
    "ImageStore": "composer.images.store",
    "Reference": "composer.images.reference",
    "normalize": "composer.images.reference",
    "parse_reference": "composer.images.reference",
    "apply_changes": "composer.images.importer",
    "import_rootfs": "composer.images.importer",
    "bootstrap_busybox": "composer.images.bootstrap",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from typing import Any
    from composer.images.bootstrap import bootstrap_busybox
    from composer.images.importer import apply_changes, import_rootfs
    from composer.images.model import HealthConfig, Image, ImageConfig
    from composer.images.reference import Reference, normalize, parse_reference
    from composer.images.store import ImageStore


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'composer.images' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
