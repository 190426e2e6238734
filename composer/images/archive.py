"""`image load` and `image save`: image archives in the two formats docker and OCI tools exchange.

load reads a tar (plain or gzip, from a file or a pipe) holding either
- a `docker save` archive: manifest.json ([{Config, RepoTags, Layers}]), old (`<id>/layer.tar`, `<id>.json`)
  or new (`blobs/sha256/<hex>`) member names, layer members possibly symlinks to other layers; or
- an OCI image layout: oci-layout, index.json (nested indexes: the host's platform is picked), blobs/.
Every config and manifest is checked against its digest, every layer against its descriptor digest (OCI)
and the config's diff_id. All images are staged before any is recorded, so a bad archive adds nothing.

save writes ONE tar that is both: a docker save archive (manifest.json, repositories) that `docker load`
accepts, and an OCI layout (oci-layout, index.json), with the blobs as the store keeps them."""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterator

from composer.errors import ImageError
from composer.images.extract import clean_name, decompressed, detect_compression, max_layer_size, peek
from composer.images.manifest import (INDEX_TYPES, MANIFEST_TYPES, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
                                      check_descriptor, check_digest, manifest_media_type, parse_json, pick_platform)
from composer.images.reference import parse_reference

if TYPE_CHECKING:
    from composer.images.model import Image
    from composer.images.store import ImageStore
    from composer.images.store_layers import StagedLayer

_JSON_MAX = 16 << 20  # manifests, configs, index: anything bigger is not one
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LoadedImage:
    image: "Image"
    refs: tuple[str, ...]  # familiar names given by the archive ("busybox:latest"), may be empty


@dataclass
class _Pending:
    config: bytes
    layers: list["StagedLayer"]
    refs: tuple[str, ...]
    manifest: bytes | None


# ---------------------------------------------------------------- load

def load_archive(store: "ImageStore", src: Path | str | BinaryIO,
                 progress: Callable[[str], None] | None = None) -> list[LoadedImage]:
    """Load every image of the archive `src` (path or binary stream). progress(message) per layer."""
    name = os.fspath(src) if isinstance(src, (str, os.PathLike)) else "stdin"
    try:
        with _open_archive(store, src) as archive:
            pending = _stage_all(store, archive, progress or (lambda _msg: None))
    except ImageError as err:
        raise ImageError(f"cannot load {name}: {err.message}", hint=err.hint) from None
    loaded = []
    try:
        while pending:
            item = pending.pop(0)
            image = store.add_image(item.config, item.layers, refs=item.refs, manifest_blob=item.manifest)
            loaded.append(LoadedImage(image, tuple(parse_reference(r).familiar for r in item.refs)))
    finally:
        for item in pending:
            for layer in item.layers:
                layer.discard()
    return loaded


class _Archive:
    """Random access to the members of a tar, links resolved without ever leaving the archive."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in tar:
            with contextlib.suppress(ImageError):  # a weird name we never look up is harmless
                self.members[clean_name(member.name)] = member

    def has(self, name: str) -> bool:
        return self._resolve(name, must_exist=False) is not None

    def _resolve(self, name: str, must_exist: bool = True) -> tarfile.TarInfo | None:
        rel = clean_name(name)
        for _ in range(16):
            member = self.members.get(rel)
            if member is None:
                if must_exist:
                    raise ImageError(f"archive member {name!r} is missing")
                return None
            if member.isreg():
                return member
            if member.issym():
                rel = clean_name(posixpath.normpath(posixpath.join(posixpath.dirname(rel), member.linkname)))
            elif member.islnk():
                rel = clean_name(member.linkname)
            else:
                raise ImageError(f"archive member {name!r} is not a file")
        raise ImageError(f"archive member {name!r}: too many levels of links")

    def open(self, name: str) -> tuple[BinaryIO, int]:
        member = self._resolve(name)
        assert member is not None
        f = self.tar.extractfile(member)
        assert f is not None
        return f, member.size  # type: ignore[return-value]

    def read(self, name: str, limit: int = _JSON_MAX) -> bytes:
        f, size = self.open(name)
        if size > limit:
            raise ImageError(f"archive member {name!r} is too large ({size} bytes)")
        data = f.read()
        if len(data) != size:
            raise ImageError(f"archive member {name!r} is truncated")
        return data

    def json(self, name: str) -> Any:
        return parse_json(self.read(name), name)


@contextlib.contextmanager
def _open_archive(store: "ImageStore", src: Path | str | BinaryIO) -> Iterator[_Archive]:
    """A plain tar file is read in place; a compressed one or a pipe is first spooled, uncompressed,
    to a temp file in the store (swept if we die), since the members are needed in any order."""
    with contextlib.ExitStack() as stack:
        if isinstance(src, (str, os.PathLike)):
            try:
                f: BinaryIO = stack.enter_context(open(src, "rb"))
            except OSError as err:
                raise ImageError(err.strerror or str(err)) from None
        else:
            f = src
        seekable = isinstance(src, (str, os.PathLike)) and detect_compression(peek(f)) == "none"
        if not seekable:
            store._ensure()
            spool = store._tmp(store.root, "load")
            stack.callback(lambda: spool.unlink(missing_ok=True))
            _spool(f, spool)
            f = stack.enter_context(open(spool, "rb"))
        try:
            tar = stack.enter_context(tarfile.open(fileobj=f, mode="r:"))
            archive = _Archive(tar)
        except (tarfile.TarError, EOFError) as err:
            raise ImageError(f"not a tar archive ({err})") from None
        yield archive


def _spool(f: BinaryIO, dest: Path) -> None:
    limit = max_layer_size()
    size = 0
    try:
        with decompressed(f) as raw, open(dest, "xb") as out:
            while chunk := raw.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ImageError(f"archive larger than the limit of {limit} bytes")
                out.write(chunk)
    except (OSError, EOFError) as err:
        if isinstance(err, ImageError):
            raise
        raise ImageError(f"corrupt or truncated archive ({err})") from None


def _stage_all(store: "ImageStore", archive: _Archive, progress: Callable[[str], None]) -> list[_Pending]:
    pending: list[_Pending] = []
    staged: dict[tuple[str | None, str], "StagedLayer"] = {}  # one extraction per layer per archive
    try:
        if archive.has("manifest.json"):
            entries = archive.json("manifest.json")
            if not isinstance(entries, list) or not entries:
                raise ImageError("manifest.json lists no images")
            for entry in entries:
                pending.append(_stage_docker(store, archive, entry, staged, progress))
        elif archive.has("index.json"):
            layout = archive.json("oci-layout") if archive.has("oci-layout") else {}
            if layout.get("imageLayoutVersion", "1.0.0") != "1.0.0":
                raise ImageError(f"unsupported OCI layout version {layout.get('imageLayoutVersion')!r}")
            index = archive.json("index.json")
            by_digest: dict[str, _Pending] = {}
            for desc, refs in _oci_manifests(archive, index, ()):
                seen = by_digest.get(desc.get("digest"))
                if seen is not None:  # one image under several names
                    seen.refs += tuple(r for r in _checked_refs(refs) if r not in seen.refs)
                    continue
                item = _stage_oci(store, archive, desc, refs, staged, progress)
                by_digest[desc["digest"]] = item
                pending.append(item)
            if not pending:
                raise ImageError("index.json lists no images")
        else:
            raise ImageError("neither a docker save archive (manifest.json) nor an OCI layout (index.json)")
    except BaseException:
        for layer in staged.values():
            layer.discard()
        raise
    return pending


def _stage_docker(store: "ImageStore", archive: _Archive, entry: Any, staged: dict,
                  progress: Callable[[str], None]) -> _Pending:
    if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
        raise ImageError("manifest.json: an entry has no Config")
    config_name = entry["Config"]
    config = archive.read(config_name)
    hexname = posixpath.basename(config_name).removesuffix(".json")
    if len(hexname) == 64 and all(c in "0123456789abcdef" for c in hexname):
        check_digest(config, "sha256:" + hexname, f"config {config_name}")
    diff_ids = _diff_ids(config)
    layers = entry.get("Layers") or []
    if not isinstance(layers, list) or len(layers) != len(diff_ids):
        raise ImageError(f"manifest.json: {len(layers)} layers for {len(diff_ids)} diff_ids in the config")
    refs = tuple(_checked_refs(entry.get("RepoTags") or []))
    out = [_stage(store, archive, name, None, diff_id, None, staged, progress)
           for name, diff_id in zip(layers, diff_ids)]
    return _Pending(config, out, refs, None)


def _oci_manifests(archive: _Archive, index: Any, refs: tuple[str, ...]) -> Iterator[tuple[dict, tuple]]:
    """(manifest descriptor, refs) of each image an index names; several platforms of one name: the
    host's; nested indexes (one image's platforms) are followed."""
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise ImageError("index.json: no manifests list")
    groups: dict[tuple[str, ...], list[dict]] = {}
    for desc in manifests:
        if not isinstance(desc, dict):
            continue
        name = refs or _annotation_refs(desc)
        if desc.get("mediaType") in INDEX_TYPES:
            child = parse_json(_blob(archive, desc), "nested index")
            yield from _oci_manifests(archive, child, name)
        elif desc.get("mediaType", MEDIA_OCI_MANIFEST) in MANIFEST_TYPES:
            groups.setdefault(name, []).append(desc)
    for name, descs in groups.items():
        if len(descs) > 1 and any("platform" in d for d in descs):
            descs = [pick_platform(descs)]
        for desc in descs:
            yield desc, name


def _annotation_refs(desc: dict) -> tuple[str, ...]:
    """containerd's full name, else ref.name when it is a whole reference (skopeo may write a bare tag)."""
    notes = desc.get("annotations") or {}
    for key in ("io.containerd.image.name", "org.opencontainers.image.ref.name"):
        value = notes.get(key)
        if isinstance(value, str) and ("/" in value or ":" in value):
            with contextlib.suppress(ImageError):
                parse_reference(value, allow_digest=False)
                return (value,)
    return ()


def _stage_oci(store: "ImageStore", archive: _Archive, desc: dict, refs: tuple[str, ...], staged: dict,
               progress: Callable[[str], None]) -> _Pending:
    manifest_blob = _blob(archive, desc)
    manifest = parse_json(manifest_blob, f"manifest {desc.get('digest')}")
    config_desc = manifest.get("config") or {}
    config = _blob(archive, config_desc)
    diff_ids = _diff_ids(config)
    layer_descs = manifest.get("layers") or []
    if not isinstance(layer_descs, list) or len(layer_descs) != len(diff_ids):
        raise ImageError(f"manifest {desc.get('digest')}: {len(layer_descs)} layers for {len(diff_ids)} "
                         "diff_ids in the config")
    out = []
    for layer_desc, diff_id in zip(layer_descs, diff_ids):
        digest = _descriptor_digest(layer_desc)
        out.append(_stage(store, archive, _blob_name(digest), digest, diff_id, layer_desc.get("size"),
                          staged, progress, layer_desc.get("mediaType")))
    return _Pending(config, out, tuple(_checked_refs(refs)), manifest_blob)


def _stage(store: "ImageStore", archive: _Archive, name: str, digest: str | None, diff_id: str,
           size: int | None, staged: dict, progress: Callable[[str], None],
           media_type: str | None = None) -> "StagedLayer":
    key = (digest, diff_id)
    if key in staged:
        return staged[key]
    reused = store.reuse_layer(digest or diff_id, diff_id, media_type or "")
    if reused is not None:
        progress(f"{diff_id[7:19]}: already exists")
        staged[key] = reused
        return reused
    progress(f"{diff_id[7:19]}: loading")
    f, _ = archive.open(name)
    try:
        layer = store.stage_layer(f, expected_digest=digest, expected_diff_id=diff_id,
                                  expected_size=size if isinstance(size, int) else None)
    except ImageError as err:
        raise ImageError(f"layer {name}: {err.message.removeprefix('invalid layer: ')}") from None
    staged[key] = layer
    return layer


def _blob(archive: _Archive, desc: dict) -> bytes:
    digest = _descriptor_digest(desc)
    data = archive.read(_blob_name(digest))
    check_digest(data, digest, f"blob {digest}")
    return data


def _descriptor_digest(desc: Any) -> str:
    return check_descriptor(desc, "descriptor")[0]


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest[7:]


def _diff_ids(config: bytes) -> list[str]:
    obj = parse_json(config, "image config")
    diff_ids = (obj.get("rootfs") or {}).get("diff_ids") if isinstance(obj, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ImageError("image config has no rootfs.diff_ids")
    return diff_ids


def _checked_refs(refs: Any) -> list[str]:
    out = []
    for ref in refs if isinstance(refs, (list, tuple)) else ():
        out.append(str(parse_reference(ref, allow_digest=False)))
    return out


# ---------------------------------------------------------------- save

def save_images(store: "ImageStore", refs: list[str], out: BinaryIO) -> int:
    """Write the images named by refs as one tar to `out`. Returns the number of images."""
    images: dict[str, tuple["Image", list[str]]] = {}
    for ref in refs:
        image = store.resolve(ref)
        tags = images.setdefault(image.id, (image, []))[1]
        with contextlib.suppress(ImageError):
            parsed = parse_reference(ref)
            if parsed.digest is None and str(parsed) in image.refs:
                tags.append(str(parsed))
    blobs: list[str] = []
    manifest_json, index_entries, repositories = [], [], {}
    for image, tags in images.values():
        manifest_blob = store.read_blob(image.manifest)
        manifest = parse_json(manifest_blob, "stored manifest")
        layer_digests = [d["digest"] for d in manifest.get("layers") or []]
        for digest in (image.id, image.manifest, *layer_digests):
            if digest not in blobs:
                blobs.append(digest)
        familiar = [parse_reference(t).familiar for t in tags]
        manifest_json.append({"Config": _blob_name(image.id), "RepoTags": familiar or None,
                              "Layers": [_blob_name(d) for d in layer_digests]})
        desc = {"mediaType": manifest_media_type(manifest) or MEDIA_OCI_MANIFEST, "digest": image.manifest,
                "size": len(manifest_blob)}
        for tag, short in zip(tags, familiar) if tags else [(None, None)]:
            entry = dict(desc)
            if tag:
                parsed = parse_reference(tag)
                entry["annotations"] = {"io.containerd.image.name": tag,
                                        "org.opencontainers.image.ref.name": parsed.tag or ""}
                repositories.setdefault(parsed.familiar_repository, {})[parsed.tag] = layer_digests[-1][7:] \
                    if layer_digests else image.id[7:]
            index_entries.append(entry)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        for digest in blobs:
            path = store.blob_path(digest)
            try:
                with open(path, "rb") as f:
                    info = _info(_blob_name(digest), os.fstat(f.fileno()).st_size)
                    tar.addfile(info, f)
            except FileNotFoundError:
                raise ImageError(f"blob {digest} is missing from the store") from None
        _add_bytes(tar, "oci-layout", {"imageLayoutVersion": "1.0.0"})
        _add_bytes(tar, "index.json", {"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX,
                                       "manifests": index_entries})
        _add_bytes(tar, "manifest.json", manifest_json)
        if repositories:
            _add_bytes(tar, "repositories", repositories)
    return len(images)


def _info(name: str, size: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mtime = size, kind, int(time.time())
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    tar.addfile(_info(name, 0, tarfile.DIRTYPE))


def _add_bytes(tar: tarfile.TarFile, name: str, obj: Any) -> None:
    import io

    data = json.dumps(obj, separators=(",", ":")).encode()
    tar.addfile(_info(name, len(data)), io.BytesIO(data))

