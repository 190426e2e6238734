"""`image push`: store -> registry. Blobs the registry lacks are uploaded (in parallel; monolithic PUT,
or chunked PATCHes for big blobs), the config next, the manifest last, exactly as stored, so its digest
is the one the store knows. The pushed reference becomes one of the image's repo digests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from composer.errors import ImageError
from composer.images.manifest import (MANIFEST_TYPES, check_descriptor, digest_of, layer_descriptors,
                                      manifest_media_type, parse_json)
from composer.images.reference import parse_reference
from composer.images.registry import RegistryClient

if TYPE_CHECKING:
    from composer.images.store import ImageStore

CHUNKED_ABOVE = 64 << 20  # blobs bigger than this go up in chunks of this size


@dataclass(frozen=True)
class PushEvent:
    id: str  # short blob digest
    phase: str  # "exists", "pushing", "pushed"
    total: int = 0


def push_image(store: "ImageStore", ref: str, *, progress: Callable[[PushEvent], None] | None = None,
               client: RegistryClient | None = None, chunk_size: int | None = None, workers: int = 3) -> str:
    """Push the image `ref` (a tagged name) to its registry. Returns the manifest digest."""
    parsed = parse_reference(ref, allow_digest=False)
    image = store.resolve(ref)
    report = progress or (lambda _e: None)
    client = client or RegistryClient(parsed.domain)
    manifest_blob = store.read_blob(image.manifest)
    manifest = parse_json(manifest_blob, "stored manifest")
    media = manifest_media_type(manifest)
    if media not in MANIFEST_TYPES:
        raise ImageError(f"{ref}: stored manifest has unsupported type {media!r}")
    blobs = [check_descriptor(d, "layer") for d in layer_descriptors(manifest)]
    blobs.append(check_descriptor(manifest.get("config"), "config"))

    def push_blob(digest: str, size: int) -> None:
        if client.blob_exists(parsed.path, digest):
            report(PushEvent(digest[7:19], "exists", size))
            return
        report(PushEvent(digest[7:19], "pushing", size))
        try:
            f = open(store.blob_path(digest), "rb")
        except FileNotFoundError:
            raise ImageError(f"{ref}: blob {digest} is missing from the store") from None
        with f:
            chunk = chunk_size or (CHUNKED_ABOVE if size > CHUNKED_ABOVE else None)
            client.upload_blob(parsed.path, digest, f, size, chunk_size=chunk)
        report(PushEvent(digest[7:19], "pushed", size))

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="push") as pool:
        futures = [pool.submit(push_blob, d, s) for d, s in dict(blobs).items()]
    for future in futures:
        future.result()
    served = client.put_manifest(parsed.path, parsed.tag or "latest", manifest_blob, media)
    digest = digest_of(manifest_blob)
    if served and served != digest:
        raise ImageError(f"{ref}: the registry stored the manifest as {served}, expected {digest}")
    store.add_repo_digest(image.id, f"{parsed.repository}@{digest}")
    return digest
