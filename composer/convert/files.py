"""What becomes ConfigMaps, Secrets and claims: a service's environment (one ConfigMap, envFrom),
top-level configs and secrets (each file its own path: compose's /run/secrets/<name>, by subPath, not
kompose's one directory per secret: its #1778/#1894), small bind-mounted files and directories, and
named volumes (PersistentVolumeClaims, sized by a hint, ReadWriteMany when shared)."""

from __future__ import annotations

import base64
import os
import re
import stat
from typing import TYPE_CHECKING, Any

from composer.config.model import FileObject, FileRef, Service, ServiceVolume
from composer.convert.naming import CONFIGMAP_KEY_RE, dns_label

if TYPE_CHECKING:
    from composer.convert.convert import Ctx

BIND_LIMIT = 1_000_000  # a ConfigMap holds at most 1 MiB, metadata included
DEFAULT_SIZE = "1Gi"
_QUANTITY_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")

Mount = dict[str, Any]
Volume = dict[str, Any]


def environment(ctx: "Ctx", svc: Service, cname: str) -> list[dict]:
    """The service's environment (env_file merged in) as a ConfigMap `<svc>-env`: the container's envFrom."""
    data = {}
    for key, value in svc.environment:
        if value is None:  # compose passes it only when set in the shell: it was not
            continue
        if _ENV_NAME_RE.match(key):
            data[key] = value
        else:
            ctx.report.unmapped(svc.name, f"environment.{key}", "not a valid Kubernetes variable name")
    if not data:
        return []
    name = ctx.name(f"{cname}-env")
    ctx.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.meta(name, svc.name), "data": data})
    return [{"configMapRef": {"name": name}}]


def _data(content: bytes, key: str) -> dict[str, Any]:
    try:
        return {"data": {key: content.decode("utf-8")}}
    except UnicodeDecodeError:
        return {"binaryData": {key: base64.b64encode(content).decode()}}


def _key(name: str) -> str:
    key = re.sub(r"[^-._a-zA-Z0-9]+", "_", name) or "file"
    return key if CONFIGMAP_KEY_RE.match(key) and key not in (".", "..") else f"file{key}"


def bind(ctx: "Ctx", svc: Service, vol: ServiceVolume, cname: str) -> tuple[list[Volume], list[Mount]]:
    """A bind mount of a small file -> a ConfigMap mounted by subPath at the target; of a small
    directory -> a ConfigMap per directory that holds files, each mounted at its place. Anything
    else (large, missing, a socket or device, a symlink) is reported."""
    key = f"volumes[{vol.target}]"
    src = vol.source or ""
    if src.endswith("/docker.sock"):
        ctx.report.unmapped(svc.name, key, f"{src} is the docker engine's socket: a cluster has no such thing")
        return [], []
    try:
        st = os.stat(src)
    except OSError:
        ctx.report.unmapped(svc.name, key, f"bind source {src} does not exist here, nothing to put in a ConfigMap")
        return [], []
    files: dict[str, list[tuple[str, bytes, int]]] = {}  # relative dir -> (name, content, mode)
    total = 0
    if stat.S_ISREG(st.st_mode):
        total = st.st_size
        if total <= BIND_LIMIT:
            with open(src, "rb") as f:
                files[""] = [(os.path.basename(src), f.read(), st.st_mode & 0o777)]
    elif stat.S_ISDIR(st.st_mode):
        for root, dirs, names in os.walk(src):
            dirs.sort()
            rel = os.path.relpath(root, src)
            for n in sorted(names):
                path = os.path.join(root, n)
                lst = os.lstat(path)
                if not stat.S_ISREG(lst.st_mode):
                    ctx.report.unmapped(svc.name, key, f"{path} is not a regular file: a ConfigMap holds files only")
                    return [], []
                total += lst.st_size
                if total > BIND_LIMIT:
                    break
                with open(path, "rb") as f:
                    files.setdefault("" if rel == "." else rel, []).append((n, f.read(), lst.st_mode & 0o777))
    else:
        ctx.report.unmapped(svc.name, key, f"bind source {src} is not a file or directory")
        return [], []
    if total > BIND_LIMIT:
        ctx.report.unmapped(svc.name, key, f"bind source {src} holds {total} bytes, more than a ConfigMap's "
                            f"{BIND_LIMIT}: bake it into the image or use a volume")
        return [], []
    if not vol.read_only:
        ctx.report.unmapped(svc.name, key, "a writable bind mount becomes a read-only ConfigMap")
    volumes, mounts = [], []
    single = stat.S_ISREG(st.st_mode)
    if not files:  # an empty directory: an empty one in the pod too
        vname = ctx.volume_name(f"{cname}-{vol.target}")
        return [{"name": vname, "emptyDir": {}}], [{"name": vname, "mountPath": vol.target}]
    for rel, entries in files.items():
        name = ctx.name(f"{cname}-{vol.target}" + (f"-{rel}" if rel else ""))
        cm: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.meta(name, svc.name)}
        keys = {}
        for n, content, _mode in entries:
            k = keys[n] = _key(n)
            for field, values in _data(content, k).items():
                cm.setdefault(field, {}).update(values)
        ctx.add(cm)
        modes = {mode for _n, _c, mode in entries}
        source: dict[str, Any] = {"name": name}
        if len(modes) == 1 and all(keys[n] == n for n, _c, _m in entries):
            source["defaultMode"] = modes.pop()
        else:  # per file: its mode, and its own name where the key had to differ
            source["items"] = [{"key": keys[n], "path": n, "mode": mode} for n, _c, mode in entries]
        vname = ctx.volume_name(name)
        volumes.append({"name": vname, "configMap": source})
        if single:
            mounts.append({"name": vname, "mountPath": vol.target, "subPath": keys[entries[0][0]], "readOnly": True})
        else:
            mounts.append({"name": vname, "mountPath": os.path.join(vol.target, rel) if rel else vol.target,
                           "readOnly": True})
    return volumes, mounts


def _file_content(ctx: "Ctx", obj: FileObject, kind: str) -> bytes | None:
    if obj.file is not None:
        try:
            with open(obj.file, "rb") as f:
                return f.read(BIND_LIMIT + 1)
        except OSError as err:
            ctx.report.unmapped("", f"{kind}.{obj.key}", f"cannot read {obj.file}: {err.strerror}")
            return None
    if obj.content is not None:
        return obj.content.encode()
    if obj.environment is not None:
        return ctx.project.environment.get(obj.environment, "").encode()
    return None


def file_object(ctx: "Ctx", kind: str, ref: FileRef, svc: Service) -> tuple[list[Volume], list[Mount]]:
    """A service's use of a top-level config (ConfigMap `config-<key>`) or secret (Secret
    `secret-<key>`), mounted by subPath at the target: each file its own path."""
    objects = ctx.project.configs if kind == "configs" else ctx.project.secrets
    obj = objects.get(ref.source)
    if obj is None:
        return [], []
    key = _key(ref.source)
    prefix = "config" if kind == "configs" else "secret"
    name = dns_label(obj.name, 253) if obj.external else ctx.name(f"{prefix}-{ref.source}")
    if obj.external:
        ctx.report.unmapped(svc.name, f"{kind}.{ref.source}", f"external: the {'ConfigMap' if kind == 'configs' else 'Secret'} "
                            f"{name} (key {key}) must exist in the cluster")
        ctx.external.add(("ConfigMap" if kind == "configs" else "Secret", name))
    elif not ctx.has("ConfigMap" if kind == "configs" else "Secret", name):
        content = _file_content(ctx, obj, kind)
        if content is None:
            return [], []
        if len(content) > BIND_LIMIT:
            ctx.report.unmapped(svc.name, f"{kind}.{ref.source}", f"larger than {BIND_LIMIT} bytes")
            return [], []
        meta = ctx.meta(name, None)
        if kind == "configs":
            ctx.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, **_data(content, key)})
        else:
            ctx.add({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
                     "data": {key: base64.b64encode(content).decode()}})
    for attr in ("uid", "gid"):
        if getattr(ref, attr) is not None:
            ctx.report.unmapped(svc.name, f"{kind}.{ref.source}.{attr}", "files from a volume belong to the pod's "
                                "fsGroup, not to a chosen owner")
    if kind == "configs":
        target = ref.target or f"/{ref.source}"
    else:
        target = ref.target if ref.target and ref.target.startswith("/") else f"/run/secrets/{ref.target or ref.source}"
    item: dict[str, Any] = {"key": key, "path": key}
    if ref.mode is not None:
        item["mode"] = ref.mode
    vname = ctx.volume_name(name)
    source = {"configMap": {"name": name, "items": [item]}} if kind == "configs" else \
        {"secret": {"secretName": name, "items": [item]}}
    return [{"name": vname, **source}], [{"name": vname, "mountPath": target, "subPath": key, "readOnly": True}]


def claim(ctx: "Ctx", volume_key: str, users: list[str], shared: bool) -> str:
    """The PersistentVolumeClaim of a named volume (made once); returns its name. Size from the
    volume's `x-composer: {size: 10Gi}` or label `composer.size`, else DEFAULT_SIZE."""
    vol = ctx.project.volumes[volume_key]
    name = dns_label(vol.name)
    if ctx.has("PersistentVolumeClaim", name) or ("PersistentVolumeClaim", name) in ctx.external:
        return name
    hint = vol.extensions.get("x-composer")
    hint = hint if hasattr(hint, "get") else {}
    size = str(hint.get("size") or vol.labels.get("composer.size") or DEFAULT_SIZE)
    if not _QUANTITY_RE.match(size):
        from composer.errors import ConfigError

        raise ConfigError(f"volume {volume_key}: size {size!r} is not a Kubernetes quantity",
                          key=f"volumes.{volume_key}.x-composer.size", hint="write it as 10Gi, 500Mi, ...")
    if vol.external:
        ctx.report.unmapped("", f"volumes.{volume_key}", f"external: the claim {name} must exist in the cluster")
        ctx.external.add(("PersistentVolumeClaim", name))
        return name
    if vol.driver not in (None, "local") or vol.driver_opts:
        ctx.report.unmapped("", f"volumes.{volume_key}.driver", "volume drivers are the cluster's storage classes: "
                            "set x-composer.storage_class")
    if shared:
        ctx.report.note(users[0], f"volumes.{volume_key}", f"used by {', '.join(users)}: one claim, ReadWriteMany "
                        "(the cluster's storage class must offer it)")
    spec: dict[str, Any] = {"accessModes": ["ReadWriteMany" if shared else "ReadWriteOnce"],
                            "resources": {"requests": {"storage": size}}}
    storage_class = hint.get("storage_class")
    if storage_class:
        spec["storageClassName"] = str(storage_class)
    ctx.add({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ctx.meta(name, None), "spec": spec})
    return name
