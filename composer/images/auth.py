"""Registry credentials and transport policy: docker's `~/.docker/config.json` (`auths`, base64 `auth`
or username/password), the bearer-token challenge of `WWW-Authenticate`, and which registries may be
spoken to over plain HTTP (loopback ones, as docker does, and COMPOSER_INSECURE_REGISTRIES)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from composer.errors import ImageError

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
_CHALLENGE_PARAM = re.compile(r'([a-zA-Z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" or "basic"
    params: dict[str, str]


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return Path(base) / "config.json"


def _key_host(key: str) -> str:
    """'https://host:5000/v2/' -> 'host:5000', as docker matches `auths` keys."""
    key = re.sub(r"^[a-z]+://", "", key.strip())
    return key.split("/", 1)[0]


def credentials_for(domain: str, config_path: Path | None = None) -> Credentials | None:
    """Credentials from docker's config for a registry domain (docker.io matches docker's Hub keys).
    Credential helpers (credsStore, credHelpers) are not run: such registries are used anonymously."""
    path = config_path or docker_config_path()
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ImageError(f"cannot read {path}: {err}") from None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    wanted = {_key_host(k) for k in DOCKER_HUB_KEYS} if domain == "docker.io" else {domain}
    for key, entry in auths.items():
        if _key_host(key) not in wanted or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise ImageError(f"{path}: the auth entry for {key!r} is not base64 of user:password") from None
            if not sep:
                raise ImageError(f"{path}: the auth entry for {key!r} is not base64 of user:password")
            return Credentials(user, password)
        if entry.get("username"):
            return Credentials(str(entry["username"]), str(entry.get("password", "")))
    return None


def parse_challenge(header: str) -> Challenge | None:
    """`Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _CHALLENGE_PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def insecure_registries() -> set[str]:
    return {h.strip() for h in os.environ.get("COMPOSER_INSECURE_REGISTRIES", "").split(",") if h.strip()}


def plain_http_allowed(host: str) -> bool:
    """Plain HTTP only to loopback registries (as docker) or to registries the user opted in for."""
    return is_loopback(host) or host in insecure_registries() or host.rsplit(":", 1)[0] in insecure_registries()
