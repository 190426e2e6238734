"""`cp` into a container on Python < 3.11.4 (Debian 12's 3.11.2 has no tarfile filters): the same
rules as the 'tar' filter, applied by hand."""

from __future__ import annotations

import tarfile

import pytest

from composer.runtime.container.copy import _tar_filter
from composer.runtime.container.rootview import ChildError


def member(name: str, *, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type, m.linkname, m.mode = kind, link, mode
    return m


def test_leading_slash_dropped_and_high_bits_cleared(tmp_path):
    m = _tar_filter(member("/etc/passwd", mode=0o6777), str(tmp_path))
    assert m.name == "etc/passwd" and m.mode == 0o755


@pytest.mark.parametrize("m", [
    member("../escape"), member("a/../../escape"),
    member("ln", kind=tarfile.SYMTYPE, link="/etc/shadow"),
    member("ln", kind=tarfile.SYMTYPE, link="../../etc"),
    member("hard", kind=tarfile.LNKTYPE, link="../outside"),
])
def test_nothing_outside_the_destination(tmp_path, m):
    with pytest.raises(ChildError):
        _tar_filter(m, str(tmp_path))


def test_links_inside_pass(tmp_path):
    assert _tar_filter(member("d/ln", kind=tarfile.SYMTYPE, link="../file"), str(tmp_path)).linkname == "../file"
