"""Manifest formats shared by the registry client, pull, push and archives: media types, digest
checks, and choosing the host's platform from a manifest list or OCI index."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from composer.errors import ImageError

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MANIFEST_TYPES = (MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST)
INDEX_TYPES = (MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST)
ACCEPT = ", ".join((MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST, MEDIA_OCI_MANIFEST, MEDIA_DOCKER_MANIFEST))


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(data: bytes, expected: str, what: str) -> None:
    if not expected.startswith("sha256:"):
        raise ImageError(f"{what}: unsupported digest algorithm in {expected!r}")
    actual = digest_of(data)
    if actual != expected:
        raise ImageError(f"{what}: digest mismatch (expected {expected}, got {actual})")


def parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise ImageError(f"{what} is not valid JSON ({err})") from None


def manifest_media_type(manifest: Any, content_type: str = "") -> str:
    """The type a manifest declares, else the Content-Type it came with, else what its shape says
    (OCI allows leaving mediaType out)."""
    if not isinstance(manifest, dict):
        raise ImageError("manifest is not a JSON object")
    declared = manifest.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    ctype = content_type.split(";", 1)[0].strip()
    if ctype in MANIFEST_TYPES + INDEX_TYPES:
        return ctype
    if "manifests" in manifest:
        return MEDIA_OCI_INDEX
    if "config" in manifest and "layers" in manifest:
        return MEDIA_OCI_MANIFEST
    if manifest.get("schemaVersion") == 1:
        raise ImageError("Docker v2 schema 1 manifests are not supported (deprecated since 2019)")
    return ""


def host_platform() -> tuple[str, str]:
    from composer.images.store import host_architecture

    return "linux", host_architecture()


def pick_platform(descriptors: list[dict[str, Any]], platform: tuple[str, str] | None = None) -> dict[str, Any]:
    """The entry of a manifest list / OCI index for `platform` (default: this host's)."""
    os_name, arch = platform or host_platform()
    if len(descriptors) == 1 and "platform" not in descriptors[0]:
        return descriptors[0]
    seen = []
    for desc in descriptors:
        plat = desc.get("platform") or {}
        seen.append(f"{plat.get('os', '?')}/{plat.get('architecture', '?')}")
        if plat.get("os") == os_name and plat.get("architecture") == arch:
            return desc
    raise ImageError(f"no image for platform {os_name}/{arch} (the list has {', '.join(seen) or 'nothing'})")


def layer_descriptors(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not all(isinstance(d, dict) for d in layers):
        raise ImageError("manifest has no layers list")
    return layers


def check_descriptor(desc: Any, what: str) -> tuple[str, int]:
    """(digest, size) of a descriptor, refusing what could address anything but one sha256 blob."""
    digest = desc.get("digest") if isinstance(desc, dict) else None
    size = desc.get("size") if isinstance(desc, dict) else None
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71 or \
            not all(c in "0123456789abcdef" for c in digest[7:]):
        raise ImageError(f"{what}: bad or unsupported digest {digest!r}")
    if not isinstance(size, int) or size < 0:
        raise ImageError(f"{what}: bad size {size!r}")
    return digest, size
