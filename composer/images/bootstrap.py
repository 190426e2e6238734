"""Base images made offline, from what the host's package manager installed:

- busybox: Debian's busybox-static /bin/busybox, one symlink per applet, a minimal /etc. ~2 MB, < 1 s.
- debian: (issue 5, not yet written) debootstrap --variant=minbase from Debian's mirror into a temp
  dir, tarred and imported the same way; `BOOTSTRAPPERS` is where it plugs in.
Each bootstrapper writes a rootfs tar and hands it to import_rootfs, so it gets the same checks and
atomicity as a user's import."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import tarfile
import tempfile
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

from composer.errors import HostError, ImageError
from composer.images.importer import import_rootfs
from composer.images.model import ImageConfig

if TYPE_CHECKING:
    from composer.images.model import Image
    from composer.images.store import ImageStore

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"
INDEX_HTML = "<html><body><h1>composer busybox</h1></body></html>\n"


def find_static_busybox() -> str:
    for path in BUSYBOX_CANDIDATES:
        if os.path.isfile(path):
            if not _is_static_elf(path):
                raise HostError(f"{path} is dynamically linked; the image needs busybox-static",
                                hint="apt-get install busybox-static")
            return path
    raise HostError("busybox is not installed", hint="apt-get install busybox-static")


def _is_static_elf(path: str) -> bool:
    """True when the ELF has no PT_INTERP program header (no dynamic loader needed)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # ELFCLASS64 only: what Debian ships on 64-bit hosts
            return head[:4] == b"\x7fELF"
        endian = "<" if head[5] == 1 else ">"
        phoff, = struct.unpack_from(endian + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from(endian + "I", table, i * phentsize)[0] != 3 for i in range(phnum))


def busybox_rootfs(out: "io.BufferedIOBase", busybox: str) -> int:
    """Write the busybox rootfs tar to out; returns the number of applet links."""
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    now = int(os.stat(busybox).st_mtime)  # not the clock: the same busybox gives the same layer
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()

        def add(name: str, kind: bytes = tarfile.DIRTYPE, mode: int = 0o755, data: bytes = b"",
                link: str = "") -> None:
            parent = os.path.dirname(name)
            if parent and parent not in made:
                add(parent)
            if name in made:
                return
            made.add(name)
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, now, link
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "home", "var/www",
                  "var/log", "run"):
            add(d)
        add("root", mode=0o700)
        add("tmp", mode=0o1777)
        add("var/tmp", mode=0o1777)
        with open(busybox, "rb") as f:
            add("bin/busybox", tarfile.REGTYPE, 0o755, f.read())
        files = {"etc/passwd": PASSWD, "etc/group": GROUP, "etc/hosts": "", "etc/hostname": "",
                 "etc/resolv.conf": "", "var/www/index.html": INDEX_HTML}
        for name, text in files.items():
            add(name, tarfile.REGTYPE, 0o644, text.encode())
        links = 0
        for applet in applets:
            applet = applet.strip("/")
            if applet and applet != "bin/busybox":
                add(applet, tarfile.SYMTYPE, 0o777, link="/bin/busybox")
                links += 1
    return links


def bootstrap_busybox(store: "ImageStore", ref: str = "busybox:latest") -> "Image":
    """Reproducible: the same busybox binary gives the same layer and the same image id."""
    busybox = find_static_busybox()
    built = datetime.fromtimestamp(int(os.stat(busybox).st_mtime), timezone.utc)
    with tempfile.TemporaryFile(prefix="composer-busybox-") as tmp:
        busybox_rootfs(tmp, busybox)
        tmp.seek(0)
        return import_rootfs(store, tmp, ref, changes=ImageConfig(cmd=("sh",)),
                             comment=f"composer image bootstrap busybox (from {busybox})",
                             created=built.isoformat().replace("+00:00", "Z"))


def bootstrap_debian(store: "ImageStore", ref: str = "debian:bookworm") -> "Image":
    # Issue 5: debootstrap --variant=minbase [--include=...] SUITE DIR http://deb.debian.org/debian,
    # then tar DIR (numeric owners) into import_rootfs with CMD ["bash"].
    raise ImageError("the debian base image is not implemented yet", hint="use 'busybox' for now")


BOOTSTRAPPERS: dict[str, Callable[..., "Image"]] = {
    "busybox": bootstrap_busybox,
    "debian": bootstrap_debian,
}
