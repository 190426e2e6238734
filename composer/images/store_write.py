"""Writing the image store (see store.py for its layout): add an image from staged layers, tag, remove
(docker rmi), prune, record repo digests. Every write is a read-modify-write of index.json under the
store's fcntl lock; files are placed under `.tmp-<pid>-...` names and renamed, the index last, and a
failure removes what that call placed. Temp names of dead writers are swept when the lock is taken."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Callable, Iterator

    from composer.images.model import Image
    from composer.images.store import ImageStore
    from composer.images.store_layers import StagedLayer

from composer.errors import ConflictError, ImageError, NotFoundError
from composer.images.reference import parse_reference

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"


def add_image(store: ImageStore, config_blob: bytes, layers: list[StagedLayer], refs: tuple[str, ...] = (),
              manifest_blob: bytes | None = None, repo_digests: tuple[str, ...] = ()) -> Image:
    """Rename staged layers and blobs into place and record the image, all under the lock. The
    staged temp files are consumed (moved or deleted) whatever happens. repo_digests:
    "repo@sha256:..." of what a registry served (docker's RepoDigests)."""
    from composer.images.extract import remove_tree
    from composer.images.store import now_rfc3339

    try:
        config_obj = json.loads(config_blob)
        diff_ids = list((config_obj.get("rootfs") or {}).get("diff_ids") or [])
        if diff_ids != [layer.diff_id for layer in layers]:
            raise ImageError("image config does not match its layers (rootfs.diff_ids)")
        import hashlib

        image_id = "sha256:" + hashlib.sha256(config_blob).hexdigest()
        if manifest_blob is None:
            manifest_blob = _manifest(image_id, len(config_blob), layers)
        manifest = "sha256:" + hashlib.sha256(manifest_blob).hexdigest()
        keys = [str(parse_reference(r, allow_digest=False)) for r in refs]
        store._ensure()
        with _locked(store) as index:
            created: list[Path] = []  # what this call put in place: undone if the index write fails
            try:
                for digest, data in ((image_id, config_blob), (manifest, manifest_blob)):
                    created += _put_blob(store, digest, data)
                for layer in layers:
                    created += _place(store, layer)
                entry = index["images"].get(image_id) or {
                    "manifest": manifest, "refs": [], "diff_ids": diff_ids,
                    "blobs": [layer.digest for layer in layers],
                    "created": config_obj.get("created") or now_rfc3339(),
                    "size": sum(layer.size for layer in layers),
                    "layer_sizes": [layer.size for layer in layers],
                    "config": config_obj.get("config") or {},
                    "architecture": config_obj.get("architecture", ""), "os": config_obj.get("os", ""),
                }
                index["images"][image_id] = entry
                known = entry.setdefault("repo_digests", [])
                for repo_digest in repo_digests:
                    repo = repo_digest.split("@", 1)[0]
                    known[:] = [d for d in known if d.split("@", 1)[0] != repo] + [repo_digest]
                for key in keys:
                    _move_ref(index, key, image_id)
                _save(store, index)
            except BaseException:
                for path in created:
                    remove_tree(path)
                raise
            image = store._image(image_id, entry)
    finally:
        for layer in layers:
            layer.discard()  # after the lock; a no-op for what was moved into place
    return image


def tag(store: ImageStore, src: str, new_ref: str) -> Image:
    key = str(parse_reference(new_ref, allow_digest=False))
    with _locked(store) as index:
        image_id, _ = store._find(index, src)
        _move_ref(index, key, image_id)
        _save(store, index)
        return store._image(image_id, index["images"][image_id])


def remove(store: ImageStore, ref: str, force: bool = False, *,
           in_use: Callable[[Image], str | None] | None = None) -> list[str]:
    """docker rmi: untag a reference; delete the image when no reference is left (or when named by
    id). Returns docker's "Untagged: ..." / "Deleted: ..." lines. in_use(image) may name a container
    that still uses the image: then only force removes it."""
    from composer.images.extract import remove_tree

    trash: list[Path] = []
    with _locked(store) as index:
        image_id, matched_ref = store._find(index, ref)
        entry = index["images"][image_id]
        refs: list[str] = entry["refs"]
        if matched_ref and len(refs) > 1:
            refs.remove(matched_ref)
            _save(store, index)
            return [f"Untagged: {_familiar(matched_ref)}"]
        if not matched_ref and len(refs) > 1 and not force:
            raise ConflictError(f"unable to delete {image_id[7:19]} (must be forced): image is "
                                "referenced in multiple repositories")
        user = in_use(store._image(image_id, entry)) if in_use else None
        if user and not force:
            raise ConflictError(f"unable to remove image {ref!r}: container {user} is using it")
        del index["images"][image_id]
        trash = _unreferenced(store, index, image_id, entry)
        _save(store, index)
    for path in trash:
        remove_tree(path)
    return [f"Untagged: {_familiar(r)}" for r in refs] + [f"Deleted: {image_id}"]


def prune(store: ImageStore, *, in_use: Callable[[Image], str | None] | None = None) -> list[str]:
    """docker image prune: delete dangling images (no reference) no container uses."""
    out = []
    for image in store.list():
        if image.refs or (in_use and in_use(image)):
            continue
        with contextlib.suppress(NotFoundError):
            out += store.remove(image.id)
    return out


def add_repo_digest(store: ImageStore, image_id: str, repo_digest: str) -> None:
    """Record "repo@sha256:..." (after a push) in place of the repository's previous one."""
    repo = repo_digest.split("@", 1)[0]
    with _locked(store) as index:
        entry = index["images"].get(image_id)
        if entry is None:
            raise NotFoundError(f"image {image_id} not found")
        known = entry.setdefault("repo_digests", [])
        known[:] = [d for d in known if d.split("@", 1)[0] != repo] + [repo_digest]
        _save(store, index)


def _put_blob(store: ImageStore, digest: str, data: bytes) -> list[Path]:
    path = store.blob_path(digest)
    if path.exists():
        return []
    tmp = store._tmp(store.blob_dir, "blob")
    tmp.write_bytes(data)
    os.rename(tmp, path)
    return [path]


def _place(store: ImageStore, layer: StagedLayer) -> list[Path]:
    """Move a staged layer into place, unless an identical one is there already (then it is shared
    and the staged copy is discarded by the caller). Returns the paths it created."""
    created = []
    blob = store.blob_path(layer.digest)
    if not blob.exists():
        if not layer.blob.exists():  # a reused layer that an rmi removed meanwhile
            raise ImageError(f"layer {layer.digest} was removed while in use; try again")
        os.rename(layer.blob, blob)
        created.append(blob)
    target = store.layer_dir(layer.diff_id)
    if not target.exists():
        if not layer.dir.exists():
            raise ImageError(f"layer {layer.diff_id} was removed while in use; try again")
        os.rename(layer.dir, target)
        created.append(target)
    return created


def _unreferenced(store: ImageStore, index: dict[str, Any], gone_id: str, gone: dict[str, Any]) -> list[Path]:
    """Rename the layer dirs and delete the blobs of `gone` that no remaining image uses."""
    used_layers = {d for e in index["images"].values() for d in e["diff_ids"]}
    used_blobs = {b for i, e in index["images"].items() for b in (i, e["manifest"], *e["blobs"])}
    trash = []
    for diff_id in set(gone["diff_ids"]) - used_layers:
        path = store.layer_dir(diff_id)
        if path.exists():
            doomed = store._tmp(store.layers_root, "rm")
            os.rename(path, doomed)  # instantly gone from view; rm -r happens outside the lock
            trash.append(doomed)
    for digest in set(gone["blobs"]) | {gone["manifest"], gone_id}:
        if digest not in used_blobs:
            with contextlib.suppress(FileNotFoundError):
                store.blob_path(digest).unlink()
    return trash


def _save(store: ImageStore, index: dict[str, Any]) -> None:
    tmp = store._tmp(store.root, "index")
    try:
        with open(tmp, "w") as f:
            json.dump(index, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, store.index_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def _locked(store: ImageStore) -> Iterator[dict[str, Any]]:
    """Exclusive lock for a read-modify-write of the index; yields the freshly loaded index."""
    store._ensure()
    fd = os.open(store.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _sweep(store)
        yield store._load()
    finally:
        os.close(fd)


def _sweep(store: ImageStore) -> None:
    """Remove temp names left by writers that died (crash, kill -9) mid-import."""
    from pathlib import Path

    from composer.images.extract import remove_tree

    for parent in (store.root, store.blob_dir, store.layers_root):
        with os.scandir(parent) as it:
            for entry in it:
                if not entry.name.startswith(".tmp-"):
                    continue
                pid = entry.name.split("-")[1]
                if pid.isdigit() and not _alive(int(pid)):
                    remove_tree(Path(entry.path))


def _move_ref(index: dict[str, Any], key: str, image_id: str) -> None:
    """A ref names one image: take it from whoever holds it (that image may end up dangling)."""
    for other_id, entry in index["images"].items():
        if other_id != image_id and key in entry["refs"]:
            entry["refs"].remove(key)
    refs = index["images"][image_id]["refs"]
    if key not in refs:
        refs.append(key)


def _manifest(config_digest: str, config_size: int, layers: list[StagedLayer]) -> bytes:
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": la.media_type, "digest": la.digest, "size": la.blob_size} for la in layers],
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def _familiar(ref: str) -> str:
    try:
        return parse_reference(ref).familiar
    except ImageError:
        return ref


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["add_image", "add_repo_digest", "prune", "remove", "tag"]
