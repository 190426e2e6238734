"""Base images made offline, from what the host's package manager installed:

- busybox: Debian's busybox-static /bin/busybox, one symlink per applet, a minimal /etc. ~2 MB, < 1 s.
- debian: debootstrap --variant=minbase from Debian's mirror into a temp dir (composer.images.debian),
  tarred by GNU tar and imported the same way; ~1 minute with a few packages, seconds from the cache.
Each bootstrapper writes a rootfs tar and hands it to import_rootfs, so it gets the same checks and
atomicity as a user's import."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import re
import struct
import subprocess
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator

from composer.errors import HostError, ImageError
from composer.images.importer import import_rootfs
from composer.images.model import ImageConfig
from composer.images.reference import parse_reference

if TYPE_CHECKING:
    from composer.images.model import Image
    from composer.images.store import ImageStore

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
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


def bootstrap_debian(store: "ImageStore", suite: str = "bookworm", include: tuple[str, ...] | list[str] = (),
                     ref: str | None = None, *, mirror: str = DEBIAN_MIRROR,
                     progress: Callable[[str], None] | None = None) -> "Image":
    """debootstrap --variant=minbase SUITE from Debian's mirror, imported as a one-layer image
    (default ref debian:SUITE) with PATH and CMD ["bash"]. Downloaded .debs are kept in
    $COMPOSER_DATA_DIR/cache/debootstrap, so a second bootstrap does not fetch them again.
    progress gets debootstrap's output lines as they come."""
    ref = ref or f"debian:{suite}"
    parse_reference(ref, allow_digest=False)
    if not re.fullmatch(r"[a-z][a-z0-9.-]*", suite):
        raise ImageError(f"invalid Debian suite {suite!r}")
    for pkg in include:
        if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]*", pkg):
            raise ImageError(f"invalid Debian package name {pkg!r}")
    with run_debootstrap(store, suite, tuple(include), mirror, progress) as (tar_stream, comment):
        return import_rootfs(store, tar_stream, ref, changes=ImageConfig(cmd=("bash",)), comment=comment)


def _debian_from_ref(store: "ImageStore", ref: str = "debian:bookworm") -> "Image":
    """BOOTSTRAPPERS entry: the suite is the reference's tag (latest means bookworm)."""
    tag = parse_reference(ref, allow_digest=False).tag or "latest"
    return bootstrap_debian(store, "bookworm" if tag == "latest" else tag, (), ref)


# What docker's Debian images carry too: apt cleans its .debs after each install (smaller layers), and
# no daemon is started by a package's postinst inside a RUN step.
_APT_CLEAN = (
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
    '/var/cache/apt/*.bin || true"; };\n'
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
    '/var/cache/apt/*.bin || true"; };\n'
    'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";\n'
)
_POLICY_RC = "#!/bin/sh\n# composer: no daemons start during image builds\nexit 101\n"


@contextlib.contextmanager
def run_debootstrap(store: "ImageStore", suite: str, include: tuple[str, ...], mirror: str,
                    progress: Callable[[str], None] | None) -> Iterator[tuple[BinaryIO, str]]:
    """Run debootstrap into a temp dir under the data dir; yield (a tar stream of the rootfs, a
    history comment). The temp dir goes afterwards, whatever happened; a mount debootstrap left in
    it is detached first, never deleted through."""
    if os.geteuid() != 0:
        raise HostError("the debian base image needs root (debootstrap chroots and makes device nodes)")
    if shutil.which("debootstrap") is None:
        raise HostError("debootstrap is not installed", hint="apt-get install debootstrap")
    data = Path(store.root).parent
    cache = data / "cache" / "debootstrap"
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    (data / "tmp").mkdir(parents=True, exist_ok=True, mode=0o700)
    target = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=data / "tmp"))
    argv = ["debootstrap", "--variant=minbase", f"--cache-dir={cache}"]
    if include:
        argv.append("--include=" + ",".join(include))
    argv += [suite, str(target), mirror]
    try:
        _run_logged(argv, progress)
        _tidy_rootfs(target)
        tar = subprocess.Popen(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=security.capability",
                                "-C", str(target), "-cf", "-", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        try:
            yield tar.stdout, f"composer image bootstrap debian ({suite}, debootstrap --variant=minbase" + (
                f" --include={','.join(include)}" if include else "") + f", {mirror})"
        finally:
            tar.stdout.close()
            if tar.wait() != 0:
                raise ImageError("tar of the debootstrap rootfs failed")
    finally:
        _detach_mounts(target)
        if not _mounts_below(target):
            shutil.rmtree(target, ignore_errors=True)


def _run_logged(argv: list[str], progress: Callable[[str], None] | None) -> None:
    tail: list[str] = []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"})
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            tail = (tail + [line.rstrip()])[-5:]
            if progress:
                progress(line.rstrip())
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.wait() != 0:
        last = next((t for t in reversed(tail) if t.startswith("E:")), tail[-1] if tail else "")
        raise ImageError(f"debootstrap failed (exit code {proc.returncode}): {last}",
                         hint="it needs Debian's mirror (network) and root")


def _tidy_rootfs(root: Path) -> None:
    """What a container image must not carry: the host's resolv.conf/hosts/hostname (the runtime
    mounts its own), device nodes (the runtime makes /dev), apt's package lists and cached .debs."""
    _detach_mounts(root)
    for sub in ("dev", "proc", "sys", "var/lib/apt/lists", "var/cache/apt/archives"):
        path = root / sub
        if path.is_dir() and not path.is_symlink():
            for entry in path.iterdir():
                if entry.name in ("partial", "lock"):
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    for name in ("etc/resolv.conf", "etc/hosts", "etc/hostname"):
        path = root / name
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_text("")
    (root / "etc/apt/apt.conf.d/docker-clean").write_text(_APT_CLEAN)
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text(_POLICY_RC)
    policy.chmod(0o755)


def _mounts_below(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return sorted((p for p in points if p.startswith(prefix) or p == str(root)), key=len, reverse=True)


def _detach_mounts(root: Path) -> None:
    for point in _mounts_below(root):
        subprocess.run(["umount", "-l", point], capture_output=True)


BOOTSTRAPPERS: dict[str, Callable[..., "Image"]] = {
    "busybox": bootstrap_busybox,
    "debian": _debian_from_ref,
}
