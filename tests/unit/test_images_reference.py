"""Image references follow docker's rules (distribution/reference)."""

import pytest

from composer.errors import ImageError
from composer.images.reference import familiar, looks_like_id, normalize, parse_reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("text, normalized, short", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox:x", "docker.io/library/busybox:x", "busybox:x"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("user/app/sub:v1", "docker.io/user/app/sub:v1", "user/app/sub:v1"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
    ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:latest"),
    ("ghcr.io/o/r:1.0-rc_1", "ghcr.io/o/r:1.0-rc_1", "ghcr.io/o/r:1.0-rc_1"),
    ("Registry/app", "Registry/app:latest", "Registry/app:latest"),  # capitals: a registry host
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
    (f"busybox:1@{DIGEST}", f"docker.io/library/busybox:1@{DIGEST}", f"busybox:1@{DIGEST}"),
    ("a__b-c---d/e.f_g", "docker.io/a__b-c---d/e.f_g:latest", "a__b-c---d/e.f_g:latest"),
])
def test_normalise(text, normalized, short):
    assert normalize(text) == normalized
    assert familiar(normalized) == short


@pytest.mark.parametrize("text", [
    "", " busybox", "BusyBox", "busybox:", "busybox:-tag", ":tag", "a//b", "a/", "/a", "a..b", "a_-b",
    "busybox@sha256:abc", "busybox@md5", "localhost:port/app", "x:" + "t" * 129, "a" * 256,
    "busy box", "ex!ample",
])
def test_invalid(text):
    with pytest.raises(ImageError, match="invalid reference format"):
        parse_reference(text)


def test_parts():
    ref = parse_reference("localhost:5000/team/app:2")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "team/app", "2", None)
    assert ref.repository == "localhost:5000/team/app"
    assert parse_reference("busybox").familiar_repository == "busybox"
    assert parse_reference("docker.io/user/app").familiar_repository == "user/app"
    assert parse_reference(f"x@{DIGEST}").tag is None


def test_digest_refused_where_not_allowed():
    with pytest.raises(ImageError, match="digest"):
        parse_reference(f"busybox@{DIGEST}", allow_digest=False)


def test_looks_like_id():
    assert looks_like_id("3bf9c65a2224")
    assert looks_like_id("sha256:" + "0" * 64)
    assert not looks_like_id("busybox")
    assert not looks_like_id("0" * 65)
