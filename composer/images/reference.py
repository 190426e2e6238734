"""Image references as docker reads them: `[domain/]path[:tag][@digest]`, with docker.io/library
defaults. One normalised spelling (`docker.io/library/busybox:latest`) is what the store keys on;
the familiar spelling (`busybox`) is what tables show."""

from __future__ import annotations

import re
from dataclasses import dataclass

from composer.errors import ImageError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

# The grammar of distribution/reference (the Go package docker uses).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")
NAME_MAX = 255


@dataclass(frozen=True)
class Reference:
    """A parsed image reference: registry domain, path, tag, digest."""

    domain: str  # "docker.io", "localhost:5000"
    path: str  # "library/busybox"
    tag: str | None = None  # None only when a digest was given without a tag
    digest: str | None = None  # "sha256:<hex>"

    @property
    def repository(self) -> str:
        """Normalised repository name: docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """What docker prints: busybox, user/app, localhost:5000/a/b."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        if self.path.startswith(OFFICIAL_PREFIX) and "/" not in self.path[len(OFFICIAL_PREFIX):]:
            return self.path[len(OFFICIAL_PREFIX):]
        return self.path

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    @property
    def familiar(self) -> str:
        text = self.familiar_repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str, *, allow_digest: bool = True) -> Reference:
    """Parse and normalise; a missing tag becomes `latest` unless a digest pins the image.
    Raises ImageError naming the reference when it is not valid."""
    if not isinstance(text, str) or not text or text != text.strip():
        raise ImageError(f"invalid reference format: {text!r}")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not allow_digest:
            raise ImageError(f"invalid reference format: {text!r} (a digest is not allowed here)")
        if not _DIGEST_RE.match(digest) or (digest.startswith("sha256:") and not _HEX64.match(digest[7:])):
            raise ImageError(f"invalid reference format: {text!r} (bad digest)")
    tag = None
    # A ':' after the last '/' is a tag; one before it belongs to a registry's port.
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise ImageError(f"invalid reference format: {text!r} (bad tag {tag!r})")
    domain, path = _split_domain(rest, text)
    if not _PATH_RE.match(path):
        hint = "repository names must be lowercase" if path.lower() != path else None
        raise ImageError(f"invalid reference format: {text!r}", hint=hint)
    if len(f"{domain}/{path}") > NAME_MAX:
        raise ImageError(f"invalid reference format: {text!r} (name longer than {NAME_MAX} characters)")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def _split_domain(name: str, text: str) -> tuple[str, str]:
    slash = name.find("/")
    first = name[:slash] if slash >= 0 else ""
    # docker: the first component is a registry when it has a '.' or ':', is localhost, or has capitals.
    if slash < 0 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, name[slash + 1:]
        if not _DOMAIN_RE.match(domain):
            raise ImageError(f"invalid reference format: {text!r} (bad registry {domain!r})")
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def normalize(text: str) -> str:
    """The store's key for a reference: docker.io/library/busybox:latest."""
    return str(parse_reference(text))


def familiar(normalized: str) -> str:
    """busybox:latest for docker.io/library/busybox:latest."""
    return parse_reference(normalized).familiar


def looks_like_id(text: str) -> bool:
    """A full or short image id (hex, optionally `sha256:`-prefixed), as docker accepts them."""
    hexpart = text[7:] if text.startswith("sha256:") else text
    return 1 <= len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart)
