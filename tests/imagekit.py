"""Images built in memory for tests and benchmarks: layers, configs, manifests (OCI or Docker v2s2),
indexes, and the archives that carry them (OCI layout, docker save). Nothing here uses composer code,
so the tests check composer against an independent writer."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZ = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Layer:
    tar: bytes
    blob: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha(self.blob)

    @property
    def diff_id(self) -> str:
        return sha(self.tar)


@dataclass
class Img:
    layers: list[Layer]
    config: bytes
    manifest: bytes
    media_type: str
    arch: str = "amd64"
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return sha(self.config)

    @property
    def digest(self) -> str:
        return sha(self.manifest)


def tar_of(files: dict[str, bytes], mtime: int = 1_600_000_000) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({"/".join(n.split("/")[:i]) for n in files for i in range(1, n.count("/") + 1)})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755 if name.startswith("bin/") else 0o644, mtime
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def layer(files: dict[str, bytes], compress: bool = True, docker: bool = False) -> Layer:
    raw = tar_of(files)
    if compress:
        return Layer(raw, gzip.compress(raw, compresslevel=1, mtime=0), DOCKER_LAYER_GZ if docker else OCI_LAYER_GZ)
    return Layer(raw, raw, OCI_LAYER)


def image(layers: list[Layer], *, docker: bool = False, arch: str = "amd64", cmd: list[str] | None = None,
          created: str = "2024-01-01T00:00:00Z") -> Img:
    config = json.dumps({
        "architecture": arch, "os": "linux", "created": created,
        "config": {"Env": ["PATH=/bin"], "Cmd": cmd or ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [la.diff_id for la in layers]},
        "history": [{"created": created, "created_by": f"layer {i}"} for i in range(len(layers))],
    }).encode()
    mtype = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": mtype,
        "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": la.media_type, "digest": la.digest, "size": len(la.blob)} for la in layers],
    }).encode()
    img = Img(layers, config, manifest, mtype, arch)
    img.blobs = {sha(config): config, sha(manifest): manifest, **{la.digest: la.blob for la in layers}}
    return img


def index(images: list[Img], docker: bool = False) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_LIST if docker else OCI_INDEX,
        "manifests": [{"mediaType": im.media_type, "digest": im.digest, "size": len(im.manifest),
                       "platform": {"os": "linux", "architecture": im.arch}} for im in images],
    }).encode()


def tar_members(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def oci_layout(entries: list[tuple[Img, str | None]], extra_index: bytes | None = None) -> dict[str, bytes]:
    """Members of an OCI layout; each entry's ref goes in the ref.name annotation."""
    members: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    descs = []
    for img, ref in entries:
        for digest, blob in img.blobs.items():
            members[f"blobs/sha256/{digest[7:]}"] = blob
        desc = {"mediaType": img.media_type, "digest": img.digest, "size": len(img.manifest)}
        if ref:
            desc["annotations"] = {"org.opencontainers.image.ref.name": ref}
        descs.append(desc)
    members["index.json"] = json.dumps({"schemaVersion": 2, "manifests": descs}).encode()
    return members


def write_layout(members: dict[str, bytes], dest: Path) -> Path:
    for name, data in members.items():
        path = dest / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return dest


def docker_archive(entries: list[tuple[Img, list[str]]], legacy: bool = True) -> bytes:
    """A `docker save` archive: legacy (<id>/layer.tar, <hex>.json; a repeated layer is a symlink,
    as docker writes it) or the docker 25 blobs/ naming."""
    members: dict[str, bytes] = {}
    symlinks: dict[str, str] = {}
    manifest = []
    for img, tags in entries:
        names = []
        for la in img.layers:
            if legacy:
                name = f"{la.diff_id[7:]}/layer.tar"
                if name in members:
                    symlinks.setdefault(f"{sha(img.config)[7:]}-{la.diff_id[7:19]}/layer.tar",
                                        f"../{la.diff_id[7:]}/layer.tar")
                    name = f"{sha(img.config)[7:]}-{la.diff_id[7:19]}/layer.tar"
                members.setdefault(f"{la.diff_id[7:]}/layer.tar", la.tar)
            else:
                name = f"blobs/sha256/{la.diff_id[7:]}"
                members[name] = la.tar
            names.append(name)
        config_name = f"{img.id[7:]}.json" if legacy else f"blobs/sha256/{img.id[7:]}"
        members[config_name] = img.config
        manifest.append({"Config": config_name, "RepoTags": tags, "Layers": names})
    members["manifest.json"] = json.dumps(manifest).encode()
    members["repositories"] = b"{}"
    return tar_members(members, symlinks)


def random_layer(size: int, compress: bool = True) -> Layer:
    return layer({"data/random.bin": os.urandom(size)}, compress=compress)
