"""`image pull` and the compose `pull` verb: registry -> store.

The manifest (a manifest list / OCI index resolves to the host's platform) and config are checked against
their digests; layers download in parallel, each streamed ONCE through the store's stage_layer, which
hashes the blob, writes it and extracts it as the bytes arrive. Layers the store already has (same
blob, same diff_id) are not fetched. Any failure stops the other downloads, discards what was staged,
and raises one ImageError: a pull never leaves a partial image."""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from composer.errors import ImageError, Interrupted
from composer.images.manifest import (INDEX_TYPES, MANIFEST_TYPES, check_descriptor, check_digest,
                                      digest_of, layer_descriptors, parse_json, pick_platform)
from composer.images.reference import parse_reference
from composer.images.registry import RegistryClient

if TYPE_CHECKING:
    from composer.images.model import Image
    from composer.images.store import ImageStore
    from composer.images.store_layers import StagedLayer

_CONFIG_MAX = 16 << 20
DEFAULT_WORKERS = 3  # docker's max-concurrent-downloads


@dataclass(frozen=True)
class PullEvent:
    """What a progress display needs. phase: resolving, waiting, downloading, exists, done, pulled."""

    id: str  # short layer digest, or the reference for whole-image phases
    phase: str
    current: int = 0
    total: int = 0


Progress = Callable[[PullEvent], None]


def pinned_reference(ref: str, client: RegistryClient | None = None) -> str:
    """`ref` with the registry's current manifest digest: `docker.io/library/nginx:1.25@sha256:...`, as
    `docker compose config --resolve-image-digests` prints it. A reference with a digest is kept."""
    parsed = parse_reference(ref)
    if parsed.digest:
        return str(parsed)
    client = client or RegistryClient(parsed.domain)
    top, _ = client.get_manifest(parsed.path, parsed.tag or "latest")
    return f"{parsed}@{digest_of(top)}"


def pull_image(store: "ImageStore", ref: str, *, progress: Progress | None = None,
               platform: tuple[str, str] | None = None, client: RegistryClient | None = None,
               workers: int = DEFAULT_WORKERS) -> "Image":
    parsed = parse_reference(ref)
    report = progress or (lambda _e: None)
    client = client or RegistryClient(parsed.domain)
    name = parsed.familiar
    report(PullEvent(name, "resolving"))
    top, media = client.get_manifest(parsed.path, parsed.digest or parsed.tag or "latest")
    if parsed.digest:
        check_digest(top, parsed.digest, f"manifest {name}")
    manifest_blob = top
    if media in INDEX_TYPES:
        entries = [d for d in (parse_json(top, "manifest list").get("manifests") or []) if isinstance(d, dict)]
        desc = pick_platform(entries, platform)
        digest, _ = check_descriptor(desc, f"manifest list of {name}")
        manifest_blob, media = client.get_manifest(parsed.path, digest)
        check_digest(manifest_blob, digest, f"manifest {name}")
    if media not in MANIFEST_TYPES:
        raise ImageError(f"{name}: unsupported manifest type {media!r}")
    manifest = parse_json(manifest_blob, f"manifest {name}")
    config_digest, _ = check_descriptor(manifest.get("config"), f"config of {name}")
    config = client.get_blob(parsed.path, config_digest, _CONFIG_MAX)
    check_digest(config, config_digest, f"config of {name}")
    diff_ids = (parse_json(config, f"config of {name}").get("rootfs") or {}).get("diff_ids") or []
    descs = layer_descriptors(manifest)
    if len(descs) != len(diff_ids):
        raise ImageError(f"{name}: the manifest has {len(descs)} layers, the config {len(diff_ids)} diff_ids")
    layers = _fetch_layers(store, client, parsed.path, descs, diff_ids, report, workers)
    image = store.add_image(config, layers, refs=(str(parsed),) if parsed.tag else (),
                            manifest_blob=manifest_blob,
                            repo_digests=(f"{parsed.repository}@{digest_of(top)}",))
    report(PullEvent(name, "pulled"))
    return image


def _fetch_layers(store: "ImageStore", client: RegistryClient, repo: str, descs: list[dict[str, Any]],
                  diff_ids: list[str], report: Progress, workers: int) -> list["StagedLayer"]:
    staged: list["StagedLayer | None"] = [None] * len(descs)
    todo = []
    for i, (desc, diff_id) in enumerate(zip(descs, diff_ids)):
        digest, size = check_descriptor(desc, f"layer {i}")
        reused = store.reuse_layer(digest, diff_id, desc.get("mediaType") or "")
        if reused is not None:
            staged[i] = reused
            report(PullEvent(digest[7:19], "exists", size, size))
        else:
            todo.append((i, digest, size, diff_id))
            report(PullEvent(digest[7:19], "waiting", 0, size))
    abort = threading.Event()

    def fetch(i: int, digest: str, size: int, diff_id: str) -> None:
        if abort.is_set():
            raise _Stopped()
        short = digest[7:19]
        stream = client.open_blob(repo, digest)
        try:
            def seen(n: int) -> None:
                if abort.is_set():
                    raise _Stopped()  # another layer failed (or Ctrl-C): stop this one now
                report(PullEvent(short, "downloading", n, size))

            staged[i] = store.stage_layer(stream, expected_digest=digest, expected_diff_id=diff_id,
                                          expected_size=size, progress=seen)
        finally:
            stream.close()
        report(PullEvent(short, "done", size, size))

    try:
        if todo:
            with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="pull") as pool:
                futures = [pool.submit(fetch, *job) for job in todo]
                try:
                    wait(futures, return_when=FIRST_EXCEPTION)
                finally:
                    if not all(f.done() and f.exception() is None for f in futures):
                        abort.set()  # a failure or an interrupt: the others stop at their next chunk
                    wait(futures)
            _raise_first(futures)
    except BaseException:
        abort.set()
        for layer in staged:
            if layer is not None:
                layer.discard()
        raise
    return [layer for layer in staged if layer is not None]


class _Stopped(BaseException):
    """Raised inside a download that must stop; a BaseException so no layer code wraps it."""


def _raise_first(futures: Iterable[Any]) -> None:
    errors = [f.exception() for f in futures if f.exception() is not None]
    real = [e for e in errors if not isinstance(e, _Stopped)]
    if real:
        raise real[0]
    if errors:
        raise Interrupted("pull stopped")


def pull_project_images(project: Any, store: "ImageStore", policy: str | None = None,
                        progress: Progress | None = None, *,
                        on_failure: Callable[[str, ImageError], None] | None = None) -> list[str]:
    """The compose `pull` verb (which images: images_to_pull). Returns the references pulled, in
    service order; the first failure raises, unless on_failure(service, error) is given (compose's
    --ignore-pull-failures): it is told, and the others are still pulled."""
    pulled: list[str] = []
    for service, image in images_to_pull(project, store, policy):
        try:
            pull_image(store, image, progress=progress)
        except ImageError as err:
            if on_failure is None:
                raise ImageError(f"service {service!r}: {err.message}", hint=err.hint) from None
            on_failure(service, err)
            continue
        pulled.append(image)
    return pulled


def images_to_pull(project: Any, store: "ImageStore", policy: str | None = None) -> list[tuple[str, str]]:
    """(service, reference) of what pull_project_images pulls; policy None: what `docker compose pull`
    does (every service image, except services whose pull_policy is never or build); "missing": only
    images the store lacks; "always": every service image. Services with `build:` are skipped unless
    their pull_policy is always. Each reference once."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for service in _services(project):
        image = getattr(service, "image", None)
        own = {"if_not_present": "missing"}.get(getattr(service, "pull_policy", None) or "",
                                                getattr(service, "pull_policy", None) or "")
        if not image or own in ("never", "build") or (getattr(service, "build", None) and own != "always"):
            continue
        effective = policy or "always"
        if effective == "missing" and store.exists(image) or image in seen:
            continue
        seen.add(image)
        out.append((service.name, image))
    return out


def _services(project: Any) -> list[Any]:
    services = getattr(project, "services", ())
    return list(services.values()) if hasattr(services, "values") else list(services)
