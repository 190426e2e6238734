"""The content-addressed image store, in OCI image-spec terms:

    <data>/images/                      mode 0700: layers keep setuid files as the image has them
        blobs/sha256/<hex>              config JSON, manifest JSON, layer tars as received
        layers/<diff_id hex>/           each layer extracted ONCE; overlay lower dir of every container
        index.json                      the one small file `images` reads: refs, ids, sizes, configs
        lock                            fcntl lock held by every writer

Everything is written under `.tmp-<pid>-...` names and renamed into place, the index last, so a crash
or a bad input never leaves a partial image; temp names of dead processes are swept by the next writer.
A layer dir or blob is deleted only when no image in the index uses it any more."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import stat
from dataclasses import dataclass

TYPE_CHECKING = False  # typing is not imported at run time (~2.5 ms of every start)
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable, Iterator

from composer.errors import ConflictError, ImageError, NotFoundError
from composer.images.model import Image, ImageConfig
from composer.images.reference import looks_like_id, normalize, parse_reference

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"
_LAYER_SUFFIX = {"none": "", "gzip": "+gzip", "zstd": "+zstd"}
_INDEX_VERSION = 1
_CHUNK = 1 << 20


def default_data_dir() -> Path:
    from pathlib import Path

    return Path(os.environ.get("COMPOSER_DATA_DIR") or "/var/lib/composer")


def now_rfc3339() -> str:
    from datetime import datetime, timezone  # lazily, as hashlib: `container run` only resolves (~4 ms)

    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def host_architecture() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


@dataclass
class StagedLayer:
    """A layer extracted under a temp name, ready for add_image() to rename into place."""

    blob: Path  # temp blob file (the tar as stored)
    digest: str
    blob_size: int
    media_type: str
    dir: Path  # temp extracted dir
    diff_id: str
    size: int

    def discard(self) -> None:
        from composer.images.extract import remove_tree

        with contextlib.suppress(FileNotFoundError):
            self.blob.unlink()
        remove_tree(self.dir)


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

    # ---- writing ----

    def import_rootfs(self, src: Path | str | BinaryIO, ref: str | None, *,
                      changes: ImageConfig | None = None) -> Image:
        from composer.images.importer import import_rootfs

        return import_rootfs(self, src, ref, changes=changes)

    def tag(self, src: str, new_ref: str) -> Image:
        key = str(parse_reference(new_ref, allow_digest=False))
        with self._locked() as index:
            image_id, _ = self._find(index, src)
            self._move_ref(index, key, image_id)
            self._save(index)
            return self._image(image_id, index["images"][image_id])

    def remove(self, ref: str, force: bool = False, *,
               in_use: Callable[[Image], str | None] | None = None) -> list[str]:
        """docker rmi: untag a reference; delete the image when no reference is left (or when named by
        id). Returns docker's "Untagged: ..." / "Deleted: ..." lines. in_use(image) may name a container
        that still uses the image: then only force removes it."""
        from composer.images.extract import remove_tree

        trash: list[Path] = []
        with self._locked() as index:
            image_id, matched_ref = self._find(index, ref)
            entry = index["images"][image_id]
            refs: list[str] = entry["refs"]
            if matched_ref and len(refs) > 1:
                refs.remove(matched_ref)
                self._save(index)
                return [f"Untagged: {_familiar(matched_ref)}"]
            if not matched_ref and len(refs) > 1 and not force:
                raise ConflictError(f"unable to delete {image_id[7:19]} (must be forced): image is "
                                    "referenced in multiple repositories")
            user = in_use(self._image(image_id, entry)) if in_use else None
            if user and not force:
                raise ConflictError(f"unable to remove image {ref!r}: container {user} is using it")
            del index["images"][image_id]
            trash = self._unreferenced(index, image_id, entry)
            self._save(index)
        for path in trash:
            remove_tree(path)
        return [f"Untagged: {_familiar(r)}" for r in refs] + [f"Deleted: {image_id}"]

    def stage_layer(self, src: Path | str | BinaryIO, *, expected_digest: str | None = None,
                    expected_diff_id: str | None = None, expected_size: int | None = None,
                    progress: Callable[[int], None] | None = None) -> StagedLayer:
        """Copy src into a temp blob and extract it to a temp dir in ONE pass (hashing both the blob and
        the tar as they stream by); progress(bytes of blob read so far). A digest or size mismatch is
        reported as such even when the tampered data also broke the extraction. Nothing is visible
        until add_image(); on error nothing is left."""
        from composer.images.extract import detect_compression, extract_layer, peek, remove_tree

        self._ensure()
        spool = self._tmp(self.blob_dir, "blob")
        tmpdir = self._tmp(self.layers_root, "layer")
        temps = [spool]
        try:
            with contextlib.ExitStack() as stack:
                if isinstance(src, (str, os.PathLike)):
                    try:
                        f: BinaryIO = stack.enter_context(open(src, "rb"))
                    except OSError as err:
                        raise ImageError(f"cannot read {src}: {err.strerror}") from None
                else:
                    f = src
                out = stack.enter_context(open(spool, "xb"))
                tee = _BlobTee(f, out, progress)
                reader = io.BufferedReader(tee, _CHUNK)
                kind = detect_compression(peek(reader))
                try:
                    if kind in ("none", "gzip"):
                        info = extract_layer(reader, tmpdir)
                    _drain(reader)
                except ImageError:
                    # tampered data often breaks the tar too: name the real cause when we can tell
                    with contextlib.suppress(Exception):
                        _drain(reader)
                    tee.check(expected_digest, expected_size)
                    raise
                tee.check(expected_digest, expected_size)
            digest, blob_size = tee.digest, tee.size
            if kind == "zstd":  # the zstd program wants a real file: extract from the spooled blob
                info = extract_layer(spool, tmpdir)
            elif kind not in ("none", "gzip"):  # xz, bzip2: no OCI media type; keep the plain tar instead
                plain = self._tmp(self.blob_dir, "blob")
                temps.append(plain)
                with open(plain, "wb") as plain_out:
                    info = extract_layer(spool, tmpdir, tee=plain_out)
                spool.unlink()
                spool, digest, blob_size = plain, info.diff_id, info.tar_size
            if expected_diff_id and info.diff_id != expected_diff_id:
                raise ImageError(f"invalid layer: digest mismatch (expected {expected_diff_id}, "
                                 f"got {info.diff_id})")
            media = MEDIA_LAYER + _LAYER_SUFFIX.get(kind, "")
            return StagedLayer(spool, digest, blob_size, media, tmpdir, info.diff_id, info.size)
        except BaseException:
            for path in temps:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            remove_tree(tmpdir)
            raise

    def reuse_layer(self, digest: str, diff_id: str, media_type: str = MEDIA_LAYER) -> StagedLayer | None:
        """A StagedLayer for a blob + layer dir already in the store, when some stored image pairs this
        blob digest with this diff_id (a manifest cannot make us trust an unverified pairing). None
        when it must be fetched. add_image() leaves the existing files as they are."""
        index = self._load()
        for entry in index["images"].values():
            sizes = entry.get("layer_sizes") or [None] * len(entry["diff_ids"])  # older entries: none kept
            pairs = zip(entry["blobs"], entry["diff_ids"], sizes)
            for blob_digest, layer_diff_id, size in pairs:
                if blob_digest != digest or layer_diff_id != diff_id:
                    continue
                blob, target = self.blob_path(digest), self.layer_dir(diff_id)
                try:
                    blob_size = blob.stat().st_size
                except FileNotFoundError:
                    return None
                if not target.is_dir():
                    return None
                if size is None:
                    size = _tree_size(target)
                # temp names that never exist: nothing to move, nothing to discard
                return StagedLayer(self._tmp(self.blob_dir, "reused"), digest, blob_size, media_type,
                                   self._tmp(self.layers_root, "reused"), diff_id, size)
        return None

    def add_repo_digest(self, image_id: str, repo_digest: str) -> None:
        """Record "repo@sha256:..." (after a push) in place of the repository's previous one."""
        repo = repo_digest.split("@", 1)[0]
        with self._locked() as index:
            entry = index["images"].get(image_id)
            if entry is None:
                raise NotFoundError(f"image {image_id} not found")
            known = entry.setdefault("repo_digests", [])
            known[:] = [d for d in known if d.split("@", 1)[0] != repo] + [repo_digest]
            self._save(index)

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} is not in the store") from None

    def prune(self, *, in_use: Callable[[Image], str | None] | None = None) -> list[str]:
        """docker image prune: delete dangling images (no reference) no container uses."""
        out = []
        for image in self.list():
            if image.refs or (in_use and in_use(image)):
                continue
            with contextlib.suppress(NotFoundError):
                out += self.remove(image.id)
        return out

    def add_image(self, config_blob: bytes, layers: list[StagedLayer], refs: tuple[str, ...] = (),
                  manifest_blob: bytes | None = None, repo_digests: tuple[str, ...] = ()) -> Image:
        """Rename staged layers and blobs into place and record the image, all under the lock. The
        staged temp files are consumed (moved or deleted) whatever happens. repo_digests:
        "repo@sha256:..." of what a registry served (docker's RepoDigests)."""
        from composer.images.extract import remove_tree

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
            self._ensure()
            with self._locked() as index:
                created: list[Path] = []  # what this call put in place: undone if the index write fails
                try:
                    for digest, data in ((image_id, config_blob), (manifest, manifest_blob)):
                        created += self._put_blob(digest, data)
                    for layer in layers:
                        created += self._place(layer)
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
                        self._move_ref(index, key, image_id)
                    self._save(index)
                except BaseException:
                    for path in created:
                        remove_tree(path)
                    raise
                image = self._image(image_id, entry)
        finally:
            for layer in layers:
                layer.discard()  # after the lock; a no-op for what was moved into place
        return image

    # ---- internals ----

    def _ensure(self) -> None:
        if self.blob_dir.is_dir() and self.layers_root.is_dir():
            return
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            self.root.mkdir(mode=0o700)
        os.chmod(self.root, 0o700)  # setuid files inside: unprivileged users must not get in
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.layers_root.mkdir(exist_ok=True)

    def _tmp(self, parent: Path, what: str) -> Path:
        return parent / f".tmp-{os.getpid()}-{os.urandom(4).hex()}-{what}"

    def _put_blob(self, digest: str, data: bytes) -> list[Path]:
        path = self.blob_path(digest)
        if path.exists():
            return []
        tmp = self._tmp(self.blob_dir, "blob")
        tmp.write_bytes(data)
        os.rename(tmp, path)
        return [path]

    def _place(self, layer: StagedLayer) -> list[Path]:
        """Move a staged layer into place, unless an identical one is there already (then it is shared
        and the staged copy is discarded by the caller). Returns the paths it created."""
        created = []
        blob = self.blob_path(layer.digest)
        if not blob.exists():
            if not layer.blob.exists():  # a reused layer that an rmi removed meanwhile
                raise ImageError(f"layer {layer.digest} was removed while in use; try again")
            os.rename(layer.blob, blob)
            created.append(blob)
        target = self.layer_dir(layer.diff_id)
        if not target.exists():
            if not layer.dir.exists():
                raise ImageError(f"layer {layer.diff_id} was removed while in use; try again")
            os.rename(layer.dir, target)
            created.append(target)
        return created

    def _unreferenced(self, index: dict[str, Any], gone_id: str, gone: dict[str, Any]) -> list[Path]:
        """Rename the layer dirs and delete the blobs of `gone` that no remaining image uses."""
        used_layers = {d for e in index["images"].values() for d in e["diff_ids"]}
        used_blobs = {b for i, e in index["images"].items() for b in (i, e["manifest"], *e["blobs"])}
        trash = []
        for diff_id in set(gone["diff_ids"]) - used_layers:
            path = self.layer_dir(diff_id)
            if path.exists():
                doomed = self._tmp(self.layers_root, "rm")
                os.rename(path, doomed)  # instantly gone from view; rm -r happens outside the lock
                trash.append(doomed)
        for digest in set(gone["blobs"]) | {gone["manifest"], gone_id}:
            if digest not in used_blobs:
                with contextlib.suppress(FileNotFoundError):
                    self.blob_path(digest).unlink()
        return trash

    def _load(self) -> dict[str, Any]:
        try:
            with open(os.path.join(self._root, "index.json"), "rb") as f:
                index = json.load(f)
        except FileNotFoundError:
            return {"version": _INDEX_VERSION, "images": {}}
        except (OSError, ValueError) as err:
            raise ImageError(f"image index {self.index_path} is unreadable: {err}") from None
        if index.get("version") != _INDEX_VERSION:
            raise ImageError(f"image index {self.index_path} has unknown version {index.get('version')!r}")
        return index

    def _save(self, index: dict[str, Any]) -> None:
        tmp = self._tmp(self.root, "index")
        try:
            with open(tmp, "w") as f:
                json.dump(index, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, self.index_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Exclusive lock for a read-modify-write of the index; yields the freshly loaded index."""
        self._ensure()
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._sweep()
            yield self._load()
        finally:
            os.close(fd)

    def _sweep(self) -> None:
        """Remove temp names left by writers that died (crash, kill -9) mid-import."""
        from composer.images.extract import remove_tree

        for parent in (self.root, self.blob_dir, self.layers_root):
            with os.scandir(parent) as it:
                for entry in it:
                    if not entry.name.startswith(".tmp-"):
                        continue
                    pid = entry.name.split("-")[1]
                    if pid.isdigit() and not _alive(int(pid)):
                        from pathlib import Path

                        remove_tree(Path(entry.path))

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

    def _move_ref(self, index: dict[str, Any], key: str, image_id: str) -> None:
        """A ref names one image: take it from whoever holds it (that image may end up dangling)."""
        for other_id, entry in index["images"].items():
            if other_id != image_id and key in entry["refs"]:
                entry["refs"].remove(key)
        refs = index["images"][image_id]["refs"]
        if key not in refs:
            refs.append(key)

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


def _manifest(config_digest: str, config_size: int, layers: list[StagedLayer]) -> bytes:
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": la.media_type, "digest": la.digest, "size": la.blob_size} for la in layers],
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


class _BlobTee(io.RawIOBase):
    """The blob as it streams in: sha256, byte count (capped), a copy to the temp blob file."""

    def __init__(self, src: BinaryIO, out: BinaryIO, progress: Callable[[int], None] | None) -> None:
        from composer.images.extract import max_layer_size

        self.src, self.out, self.progress = src, out, progress
        self.limit = max_layer_size()
        import hashlib

        self.hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self.src.read(len(buf))
        n = len(data)
        if n:
            self.size += n
            if self.size > self.limit:
                raise ImageError(f"invalid layer: larger than the limit of {self.limit} bytes")
            self.hash.update(data)
            self.out.write(data)
            buf[:n] = data
            if self.progress is not None:
                self.progress(self.size)
        return n

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()

    def check(self, expected_digest: str | None, expected_size: int | None) -> None:
        if expected_size is not None and self.size != expected_size:
            what = "truncated" if self.size < expected_size else "too long"
            raise ImageError(f"invalid layer: blob {what} ({self.size} of {expected_size} bytes)")
        if expected_digest and self.digest != expected_digest:
            raise ImageError(f"invalid layer: digest mismatch (expected {expected_digest}, got {self.digest})")


def _drain(f: BinaryIO) -> None:
    while f.read(_CHUNK):
        pass


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    return total


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


__all__ = ["ImageStore", "StagedLayer", "default_data_dir", "normalize"]
