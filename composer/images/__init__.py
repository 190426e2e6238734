"""Images: references, the content-addressed OCI-style store, safe layer extraction, `image import`
and offline base images. Turns an image reference into an ordered list of layer dirs plus a config.

    store = ImageStore()                        # $COMPOSER_DATA_DIR/images
    image = store.resolve("busybox")            # Image(id, refs, layers=(dir, ...), config, ...)
"""

from composer.images.bootstrap import bootstrap_busybox
from composer.images.importer import apply_changes
from composer.images.model import HealthConfig, Image, ImageConfig
from composer.images.reference import Reference, normalize, parse_reference
from composer.images.store import ImageStore

__all__ = [
    "HealthConfig", "Image", "ImageConfig", "ImageStore", "Reference", "apply_changes",
    "bootstrap_busybox", "normalize", "parse_reference",
]
