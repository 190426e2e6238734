"""Images: references, the content-addressed OCI-style store, registries (pull, push, auth),
archives (`image save`/`load`), safe layer extraction, `image import` and offline base images;
dockerfile/ builds images from a Dockerfile. Turns an image reference into an ordered list of layer
dirs plus a config:

    from composer.images.store import ImageStore
    image = ImageStore().resolve("busybox")     # Image(id, refs, layers=(dir, ...), config, ...)

May import runtime (a Dockerfile's RUN runs a container) and the bottom layer (errors, units,
paths); never config (a service's `build:` is read by attribute), service, project, ui or cli.
Imports nothing here, so `composer images` does not pay for tarfile, gzip or subprocess."""
