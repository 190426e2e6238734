"""The content-addressed image store, in OCI image-spec terms:

    <data>/images/                      mode 0700: layers keep setuid files as the image has them
        blobs/sha256/<hex>              config JSON, manifest JSON, layer tars as received
        layers/<diff_id hex>/           each layer extracted ONCE; overlay lower dir of every container
        index.json                      the one small file `images` reads: refs, ids, sizes, configs
        lock                            fcntl lock held by every writer

Everything is written under `.tmp-<pid>-...` names and renamed into place, the index last, so a crash
or a bad input never leaves a partial image; temp names of dead processes are swept by the next writer.
A layer dir or blob is deleted only when no image in the index uses it any more.

This module is the lookup (`container run` resolves a reference to an image and its layer dirs, and
imports nothing else of the store). Writers load on first use: store_layers (staging a layer: one pass
that copies, hashes and extracts it; reusing a stored one) and store_write (add, tag, remove, prune
under the lock)."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, BinaryIO, Callable

    from composer.images.store_layers import StagedLayer

from composer.errors import ImageError, NotFoundError
from composer.images.model import Image, ImageConfig
from composer.images.reference import looks_like_id, parse_reference

_INDEX_VERSION = 1


def default_data_dir() -> Path:
    from pathlib import Path

    return Path(os.environ.get("COMPOSER_DATA_DIR") or "/var/lib/composer")


def now_rfc3339() -> str:
    from datetime import datetime, timezone  # lazily, as hashlib: `container run` only resolves (~4 ms)

    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def host_architecture() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


class ImageStore:
    def __init__(self, data_dir: Path | str | None = None) -> None:
        # a str: resolving an image (every `container run`) needs no pathlib (~2 ms of start-up);
        # the Path attributes below are made on first use
        self._root = os.path.join(os.fspath(data_dir or os.environ.get("COMPOSER_DATA_DIR") or "/var/lib/composer"),
                                  "images")

    @property
    def root(self) -> Path:
        from pathlib import Path

        return Path(self._root)

    @property
    def blob_dir(self) -> Path:
        return self.root / "blobs" / "sha256"

    @property
    def layers_root(self) -> Path:
        return self.root / "layers"

    @property
    def index_path(self) -> Path:
        return self.root / "index.json"

    # ---- reading (no lock: the index is only ever replaced by rename) ----

    def list(self) -> list[Image]:
        images = [self._image(i, e) for i, e in self._load()["images"].items()]
        return sorted(images, key=lambda im: im.created, reverse=True)

    def resolve(self, ref: str) -> Image:
        index = self._load()
        image_id, _ = self._find(index, ref)
        return self._image(image_id, index["images"][image_id])

    def exists(self, ref: str) -> bool:
        try:
            self.resolve(ref)
        except NotFoundError:
            return False
        return True

    def layer_dir(self, diff_id: str) -> Path:
        return self.layers_root / diff_id.split(":", 1)[-1]

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest.split(":", 1)[-1]

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not in the store") from None

    # ---- writing: loaded on first use (store_layers, store_write, importer) ----

    def import_rootfs(self, src: Path | str | BinaryIO, ref: str | None, *,
                      changes: ImageConfig | None = None) -> Image:
        from composer.images.importer import import_rootfs

        return import_rootfs(self, src, ref, changes=changes)

    def stage_layer(self, src: Path | str | BinaryIO, *, expected_digest: str | None = None,
                    expected_diff_id: str | None = None, expected_size: int | None = None,
                    progress: Callable[[int], None] | None = None) -> StagedLayer:
        """Copy, hash and extract a layer in one pass, under temp names (see store_layers.stage_layer)."""
        from composer.images.store_layers import stage_layer

        return stage_layer(self, src, expected_digest=expected_digest, expected_diff_id=expected_diff_id,
                           expected_size=expected_size, progress=progress)

    def reuse_layer(self, digest: str, diff_id: str, media_type: str | None = None) -> StagedLayer | None:
        """A StagedLayer for a blob + layer dir already stored, or None (see store_layers.reuse_layer)."""
        from composer.images.store_layers import reuse_layer

        return reuse_layer(self, digest, diff_id, media_type)

    def add_image(self, config_blob: bytes, layers: list[StagedLayer], refs: tuple[str, ...] = (),
                  manifest_blob: bytes | None = None, repo_digests: tuple[str, ...] = ()) -> Image:
        """Move staged layers into place and record the image (see store_write.add_image)."""
        from composer.images.store_write import add_image

        return add_image(self, config_blob, layers, refs, manifest_blob, repo_digests)

    def tag(self, src: str, new_ref: str) -> Image:
        from composer.images.store_write import tag

        return tag(self, src, new_ref)

    def remove(self, ref: str, force: bool = False, *,
               in_use: Callable[[Image], str | None] | None = None) -> list[str]:
        """docker rmi; returns docker's "Untagged: ..." / "Deleted: ..." lines (see store_write.remove)."""
        from composer.images.store_write import remove

        return remove(self, ref, force, in_use=in_use)

    def prune(self, *, in_use: Callable[[Image], str | None] | None = None) -> list[str]:
        """docker image prune: delete dangling images (no reference) no container uses."""
        from composer.images.store_write import prune

        return prune(self, in_use=in_use)

    def add_repo_digest(self, image_id: str, repo_digest: str) -> None:
        """Record "repo@sha256:..." (after a push) in place of the repository's previous one."""
        from composer.images.store_write import add_repo_digest

        add_repo_digest(self, image_id, repo_digest)

    # ---- internals (shared with store_layers, store_write and archive) ----

    def _ensure(self) -> None:
        if self.blob_dir.is_dir() and self.layers_root.is_dir():
            return
        self.root.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.root.mkdir(mode=0o700)
        except FileExistsError:
            pass
        os.chmod(self.root, 0o700)  # setuid files inside: unprivileged users must not get in
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.layers_root.mkdir(exist_ok=True)

    def _tmp(self, parent: Path, what: str) -> Path:
        return parent / f".tmp-{os.getpid()}-{os.urandom(4).hex()}-{what}"

    def _load(self) -> dict[str, Any]:
        from composer.errors import DamagedRecordError
        from composer.runtime import records

        try:
            index = records.read_dict(os.path.join(self._root, "index.json"))
        except FileNotFoundError:
            return {"version": _INDEX_VERSION, "images": {}}
        except DamagedRecordError as err:
            err.hint = "move it away and pull, load or build the images again (their layers stay shared)"
            raise
        except OSError as err:
            raise ImageError(f"image index {self.index_path} is unreadable: {err}") from None
        if index.get("version") != _INDEX_VERSION:
            raise ImageError(f"image index {self.index_path} has unknown version {index.get('version')!r}")
        return index

    def _find(self, index: dict[str, Any], ref: str) -> tuple[str, str | None]:
        """(image id, the normalised ref that matched or None when matched by id)."""
        images: dict[str, Any] = index["images"]
        full = ref if ref.startswith("sha256:") else "sha256:" + ref
        if full in images:
            return full, None
        try:
            parsed = parse_reference(ref)
        except ImageError:
            parsed = None
        if parsed is not None:
            key = str(parsed)
            for image_id, entry in images.items():
                if parsed.digest is None and key in entry["refs"]:
                    return image_id, key
                if parsed.digest is not None and (
                        f"{parsed.repository}@{parsed.digest}" in entry.get("repo_digests", ())
                        or entry["manifest"] == parsed.digest and any(
                            r.rsplit(":", 1)[0] == parsed.repository for r in entry["refs"])):
                    return image_id, None
        if looks_like_id(ref):
            hits = [i for i in images if i.startswith(full)]
            if len(hits) > 1:
                raise ImageError(f"image id prefix {ref!r} is ambiguous ({len(hits)} images match)")
            if hits:
                return hits[0], None
        if parsed is None and not looks_like_id(ref):
            parse_reference(ref)  # raises the precise "invalid reference format" error
        raise NotFoundError(f"image '{ref}' not found",
                            hint="'composer image ls' lists images; 'composer image bootstrap busybox' makes one")

    def _image(self, image_id: str, entry: dict[str, Any]) -> Image:
        return Image(
            id=image_id,
            refs=tuple(entry["refs"]),
            layers=tuple(os.path.join(self._root, "layers", d.split(":", 1)[-1]) for d in entry["diff_ids"]),
            config=ImageConfig.from_oci(entry.get("config")),
            created=entry.get("created", ""),
            size=int(entry.get("size", 0)),
            diff_ids=tuple(entry["diff_ids"]),
            manifest=entry["manifest"],
            architecture=entry.get("architecture", ""),
            os=entry.get("os", ""),
            repo_digests=tuple(entry.get("repo_digests", ())),
        )


__all__ = ["ImageStore", "default_data_dir"]
