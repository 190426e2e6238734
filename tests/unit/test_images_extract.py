"""Layer extraction against hostile input: every attack raises ImageError, writes nothing outside the
target (a sentinel dir next to it stays empty) and leaves no partial layer. Plus what real layers need
kept: setuid bits, absolute symlinks, mtimes, hard links, whiteouts, numeric owners."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from composer.errors import ImageError
from composer.images.extract import extract_layer

IS_ROOT = os.geteuid() == 0


def entry(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link="", uid=0, gid=0, mtime=1_600_000_000,
          dev=(0, 0), pax=None):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.linkname, info.uid, info.gid, info.mtime = kind, mode, link, uid, gid, mtime
    info.devmajor, info.devminor = dev
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        info.pax_headers = pax
    return info, data


def make_tar(*entries, fmt=tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buf.getvalue()


@pytest.fixture
def box(tmp_path):
    """outer/ holds only the layer target; sentinel/ is the 'outside world' attacks aim at."""
    outer, sentinel = tmp_path / "outer", tmp_path / "sentinel"
    outer.mkdir()
    sentinel.mkdir()
    return outer, sentinel


def extract(data: bytes, dest: Path, **kw):
    return extract_layer(io.BytesIO(data), dest, **kw)


def assert_refused(data: bytes, box, match: str = ""):
    outer, sentinel = box
    with pytest.raises(ImageError, match=match) as exc:
        extract(data, outer / "layer")
    assert os.listdir(outer) == [], "partial layer left behind"
    assert os.listdir(sentinel) == [], "wrote outside the layer"
    assert "\n" not in str(exc.value)
    return exc.value


# ---- attacks ----

def test_dotdot(box):
    assert_refused(make_tar(entry("ok"), entry("../x", data=b"pwn")), box, r"'\.\.'")


def test_dotdot_in_the_middle(box):
    assert_refused(make_tar(entry("a/../../sentinel/x", data=b"pwn")), box, r"'\.\.'")


def test_absolute_path(box):
    outer, sentinel = box
    assert_refused(make_tar(entry(str(sentinel / "pwned"), data=b"pwn")), box, "absolute")


def test_file_through_symlink_to_outside(box):
    outer, sentinel = box
    data = make_tar(entry("link", tarfile.SYMTYPE, link=str(sentinel)), entry("link/pwned", data=b"pwn"))
    assert_refused(data, box, "symlink")


def test_file_through_relative_symlink_to_dir_outside(box):
    data = make_tar(entry("d", tarfile.DIRTYPE, mode=0o755),
                    entry("d/up", tarfile.SYMTYPE, link="../../../sentinel"),
                    entry("d/up/deeper/pwned", data=b"pwn"))
    assert_refused(data, box, "symlink")


def test_dir_replaced_by_symlink_then_written_through(box):
    outer, sentinel = box
    data = make_tar(entry("a", tarfile.DIRTYPE, mode=0o755),
                    entry("a", tarfile.SYMTYPE, link=str(sentinel)),
                    entry("a/pwned", data=b"pwn"))
    assert_refused(data, box, "symlink")


def test_file_overwriting_symlink_replaces_the_link_not_its_target(box):
    outer, sentinel = box
    target = sentinel / "victim"
    data = make_tar(entry("f", tarfile.SYMTYPE, link=str(target)), entry("f", data=b"new"))
    extract(data, outer / "layer")
    assert not target.exists()
    assert (outer / "layer" / "f").read_bytes() == b"new"
    assert not (outer / "layer" / "f").is_symlink()


def test_symlink_from_an_earlier_layer_is_not_followed(box):
    """Layer 1 holds evil -> sentinel; layer 2 writes evil/x. Each layer only looks inside its own dir,
    so layer 2 gets a real directory `evil` (overlay shows it over the symlink) and nothing escapes."""
    outer, sentinel = box
    extract(make_tar(entry("evil", tarfile.SYMTYPE, link=str(sentinel))), outer / "l1")
    extract(make_tar(entry("evil/x", data=b"pwn")), outer / "l2")
    assert os.listdir(sentinel) == []
    assert (outer / "l1" / "evil").is_symlink()
    assert (outer / "l2" / "evil").is_dir() and not (outer / "l2" / "evil").is_symlink()
    assert (outer / "l2" / "evil" / "x").read_bytes() == b"pwn"


@pytest.mark.parametrize("link", ["/etc/shadow", "../../etc/shadow", "etc/shadow"])
def test_hardlink_outside_the_layer(box, link):
    assert_refused(make_tar(entry("etc", tarfile.DIRTYPE), entry("shadow", tarfile.LNKTYPE, link=link)),
                   box, "hard link|absolute|'\\.\\.'")


def test_hardlink_to_a_directory(box):
    assert_refused(make_tar(entry("d", tarfile.DIRTYPE), entry("h", tarfile.LNKTYPE, link="d")), box, "hard link")


def test_hardlink_through_symlink_in_layer(box):
    outer, sentinel = box
    (sentinel / "secret").write_text("s")
    try:
        data = make_tar(entry("s", tarfile.SYMTYPE, link=str(sentinel)),
                        entry("h", tarfile.LNKTYPE, link="s/secret"))
        with pytest.raises(ImageError, match="hard link"):
            extract(data, outer / "layer")
        assert os.listdir(outer) == []
        assert (sentinel / "secret").stat().st_nlink == 1
    finally:
        (sentinel / "secret").unlink()


@pytest.mark.parametrize("kind, dev", [(tarfile.CHRTYPE, (1, 3)), (tarfile.BLKTYPE, (8, 0)),
                                       (tarfile.BLKTYPE, (0, 0))])
def test_device_nodes_refused(box, kind, dev):
    assert_refused(make_tar(entry("dev/sda", kind, dev=dev)), box, "device node")


def test_truncated_in_file_data(box):
    data = make_tar(entry("a", data=b"x" * 5000), entry("b", data=b"y" * 5000))
    assert_refused(data[:512 + 2048], box, "truncated|unexpected end")


def test_truncated_at_a_header_boundary(box):
    """tarfile happily stops at a clean member boundary; a layer without its end block is refused."""
    data = make_tar(entry("a", data=b"x" * 512), entry("b", data=b"y" * 512))
    assert_refused(data[:1024], box, "truncated")


def test_truncated_gzip(box):
    data = gzip.compress(make_tar(entry("a", data=os.urandom(20000))))
    assert_refused(data[: len(data) // 2], box, "truncated|end")


def test_corrupt_header_mid_archive(box):
    """tarfile takes a bad checksum after the first member for the end of the archive."""
    data = bytearray(make_tar(entry("a", data=b"x" * 10), entry("b", data=b"y" * 10)))
    data[1024 + 148] ^= 0xFF  # checksum field of the second header
    assert_refused(bytes(data), box, "corrupt")


def test_not_a_tar(box):
    assert_refused(b"hello, this is not a tar archive\n" * 40, box, "not a tar")
    assert_refused(b"", box, "not a tar")


def test_oversized(box):
    outer, _ = box
    with pytest.raises(ImageError, match="larger than the limit"):
        extract(make_tar(entry("big", data=b"z" * 100_000)), outer / "layer", max_size=50_000)
    assert os.listdir(outer) == []


def test_digest_mismatch(box):
    outer, _ = box
    with pytest.raises(ImageError, match="digest mismatch"):
        extract(make_tar(entry("a", data=b"a")), outer / "layer", expected_diff_id="sha256:" + "0" * 64)
    assert os.listdir(outer) == []


def test_unsupported_member_type(box):
    info, _ = entry("weird")
    info.type = b"Z"
    assert_refused(make_tar((info, b"")), box, "unsupported type")


# ---- what real layers need ----

def test_diff_id_is_the_sha256_of_the_whole_uncompressed_tar(tmp_path):
    data = make_tar(entry("a", data=b"hello"))
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    assert extract(data, tmp_path / "plain").diff_id == expected
    info = extract(gzip.compress(data), tmp_path / "gz", expected_diff_id=expected)
    assert info.diff_id == expected and info.size == 5 and info.tar_size == len(data)


def test_modes_setuid_symlinks_mtimes_hardlinks(tmp_path):
    data = make_tar(
        entry("./", tarfile.DIRTYPE, mode=0o755),
        entry("./usr/bin/su", data=b"#!", mode=0o4755, mtime=1_500_000_000),
        entry("./usr/bin/wall", data=b"#!", mode=0o2755),
        entry("./etc/localtime", tarfile.SYMTYPE, link="/usr/share/zoneinfo/UTC"),
        entry("./etc/up", tarfile.SYMTYPE, link="../../../../etc"),
        entry("./etc/hard", tarfile.LNKTYPE, link="usr/bin/su"),
        entry("./ro", tarfile.DIRTYPE, mode=0o555, mtime=1_400_000_000),
        entry("./ro/file", data=b"in a read-only dir", mode=0o444),
        entry("./tmp", tarfile.DIRTYPE, mode=0o1777),
        entry("./fifo", tarfile.FIFOTYPE, mode=0o600),
        entry("./a", data=b"first"),
        entry("./a", data=b"second"),
    )
    root = tmp_path / "layer"
    extract(data, root)
    su = root / "usr/bin/su"
    assert stat.S_IMODE(su.lstat().st_mode) == 0o4755
    assert su.lstat().st_mtime == 1_500_000_000
    assert stat.S_IMODE((root / "usr/bin/wall").lstat().st_mode) == 0o2755
    assert stat.S_IMODE((root / "usr").lstat().st_mode) == 0o755  # implicit parent
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/UTC"
    assert os.readlink(root / "etc/up") == "../../../../etc"
    assert (root / "etc/hard").stat().st_ino == su.stat().st_ino
    assert stat.S_IMODE((root / "ro").lstat().st_mode) == 0o555
    assert (root / "ro").lstat().st_mtime == 1_400_000_000
    assert (root / "ro/file").read_bytes() == b"in a read-only dir"
    assert stat.S_IMODE((root / "tmp").lstat().st_mode) == 0o1777
    assert stat.S_ISFIFO((root / "fifo").lstat().st_mode)
    assert (root / "a").read_bytes() == b"second"


def test_directory_replaced_by_file(tmp_path):
    data = make_tar(entry("d/x", data=b"1"), entry("d", data=b"now a file"))
    extract(data, tmp_path / "layer")
    assert (tmp_path / "layer/d").read_bytes() == b"now a file"


def test_long_names_and_gnu_format(tmp_path):
    name = "/".join(["deep" * 20] * 5) + "/file"
    extract(make_tar(entry(name, data=b"x"), fmt=tarfile.GNU_FORMAT), tmp_path / "layer")
    assert (tmp_path / "layer" / name).read_bytes() == b"x"


@pytest.mark.root
def test_numeric_owners_kept(tmp_path):
    data = make_tar(entry("d", tarfile.DIRTYPE, uid=1234, gid=5678), entry("d/f", data=b"x", uid=4321, gid=8765,
                                                                          mode=0o4750),
                    entry("l", tarfile.SYMTYPE, link="/nowhere", uid=77, gid=88))
    root = tmp_path / "layer"
    extract(data, root)
    assert ((root / "d").stat().st_uid, (root / "d").stat().st_gid) == (1234, 5678)
    f = (root / "d/f").stat()
    assert (f.st_uid, f.st_gid, stat.S_IMODE(f.st_mode)) == (4321, 8765, 0o4750)  # chown kept setuid
    assert ((root / "l").lstat().st_uid, (root / "l").lstat().st_gid) == (77, 88)


@pytest.mark.root
def test_whiteouts_become_overlay_form(tmp_path):
    data = make_tar(entry("etc", tarfile.DIRTYPE), entry("etc/.wh.motd"),
                    entry("var/cache/.wh..wh..opq"), entry("var/cache/kept", data=b"k"),
                    entry(".wh..wh.plnk", tarfile.DIRTYPE), entry("dev/.wh.null"),
                    entry("already", tarfile.CHRTYPE, dev=(0, 0)))
    root = tmp_path / "layer"
    extract(data, root)
    motd = (root / "etc/motd").lstat()
    assert stat.S_ISCHR(motd.st_mode) and motd.st_rdev == os.makedev(0, 0)
    assert not (root / "etc/.wh.motd").exists()
    assert os.getxattr(root / "var/cache", "trusted.overlay.opaque") == b"y"
    assert not (root / "var/cache/.wh..wh..opq").exists()
    assert (root / "var/cache/kept").read_bytes() == b"k"
    assert not (root / ".wh..wh.plnk").exists()
    assert stat.S_ISCHR((root / "already").lstat().st_mode)


@pytest.mark.root
def test_xattrs_kept_only_when_harmless(tmp_path):
    pax = {"SCHILY.xattr.user.note": "hi", "SCHILY.xattr.trusted.overlay.redirect": "/etc"}
    extract(make_tar(entry("f", data=b"x", pax=pax)), tmp_path / "layer")
    assert os.getxattr(tmp_path / "layer/f", "user.note") == b"hi"
    with pytest.raises(OSError):
        os.getxattr(tmp_path / "layer/f", "trusted.overlay.redirect")


def test_bad_whiteout_name(box):
    assert_refused(make_tar(entry("d/.wh.")), box, "whiteout")
