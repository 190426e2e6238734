"""`image push`, compose's `push` and `convert --push`: store -> registry. A blob the registry has is
skipped (HEAD), one it holds in another repository of ours is mounted from there (no upload), the
others are uploaded (in parallel; monolithic PUT, or chunked PATCHes for big blobs); the manifest goes
last, exactly as stored, so its digest is the one the store knows. The pushed reference becomes one
of the image's repo digests.

`push_services` is the stack-level verb over (service, reference) pairs, `push_to_registry` the copy of
a built image into another registry that a cluster pulls from (pinned by digest)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from composer.errors import ImageError, NotFoundError
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
    phase: str  # "exists", "mounted", "pushing", "pushed"
    total: int = 0


@dataclass(frozen=True)
class PushResult:
    """One reference of compose's `push`: its digest, or why it failed (with ignore_failures)."""
    service: str
    reference: str
    digest: str | None = None
    error: str | None = None


def push_image(store: "ImageStore", ref: str, *, progress: Callable[[PushEvent], None] | None = None,
               client: RegistryClient | None = None, chunk_size: int | None = None, workers: int = 3,
               mount_from: Sequence[str] | None = None) -> str:
    """Push the image `ref` (a tagged name) to its registry. Returns the manifest digest. mount_from:
    repositories (paths) of the same registry to mount blobs from; by default those the image was
    pulled from or pushed to there (its repo digests)."""
    parsed = parse_reference(ref, allow_digest=False)
    image = store.resolve(ref)
    if mount_from is None:
        mount_from = _same_registry_repos(image.repo_digests, parsed.domain)
    sources = [repo for repo in dict.fromkeys(mount_from) if repo != parsed.path]
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
        for source in sources:
            if client.mount_blob(parsed.path, digest, source):
                report(PushEvent(digest[7:19], "mounted", size))
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


def _same_registry_repos(repo_digests: Sequence[str], domain: str) -> list[str]:
    out = []
    for repo_digest in repo_digests:
        try:
            ref = parse_reference(repo_digest)
        except ImageError:
            continue
        if ref.domain == domain:
            out.append(ref.path)
    return out


def push_services(store: "ImageStore", targets: Sequence[tuple[str, str]], *, ignore_failures: bool = False,
                  progress: Callable[[PushEvent], None] | None = None) -> list[PushResult]:
    """compose's `push`: each (service, reference) in turn. A failure raises naming the service, or
    with ignore_failures is recorded in its result and the others go on."""
    results = []
    for service, ref in targets:
        try:
            results.append(PushResult(service, ref, digest=push_image(store, ref, progress=progress)))
        except (ImageError, NotFoundError) as err:
            if not ignore_failures:
                raise type(err)(f"service {service!r}: pushing {ref}: {err.message}", hint=err.hint) from None
            results.append(PushResult(service, ref, error=err.message))
    return results


def registry_reference(registry: str, ref: str) -> str:
    """Where `ref` goes in `registry` ("host[:port][/prefix]"): its path and tag under that registry,
    whatever registry it named before (docker.io/library/app:1 -> host:5000/library/app:1)."""
    parsed = parse_reference(ref, allow_digest=False)
    target = f"{registry.rstrip('/')}/{parsed.path}:{parsed.tag or 'latest'}"
    parse_reference(target, allow_digest=False)  # a bad registry is a clear error here
    return target


def push_to_registry(store: "ImageStore", ref: str, registry: str, *,
                     progress: Callable[[PushEvent], None] | None = None) -> str:
    """Tag the stored image `ref` into `registry`, push it, and return the reference pinned by digest
    (`registry/path@sha256:...`): what a manifest for a cluster names."""
    target = registry_reference(registry, ref)
    if not store.exists(target) or store.resolve(target).id != store.resolve(ref).id:
        store.tag(ref, target)
    digest = push_image(store, target, progress=progress)
    return f"{parse_reference(target).repository}@{digest}"
