"""A client for the OCI distribution API v2 (what docker registries speak), on the stdlib's http.client.

- HTTPS; plain HTTP only where auth.plain_http_allowed() says so (loopback, opt-in; probed first there);
- auth: anonymous, then on a 401 the `WWW-Authenticate` challenge: a bearer token from the realm (with
  basic credentials from docker's config when there are any) cached per scope, or basic auth;
- one keep-alive connection per thread and host, so parallel layer downloads don't share a socket;
- redirects followed for GET/HEAD (blob storage), without the Authorization header to another host.
Errors become ImageError / NotFoundError with the registry's own message."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from typing import Any, BinaryIO

from composer.errors import ImageError, NotFoundError
from composer.images.auth import Credentials, credentials_for, parse_challenge, plain_http_allowed
from composer.images.manifest import ACCEPT, manifest_media_type, parse_json

_BLOCK = 1 << 20
_MANIFEST_MAX = 4 << 20  # distribution's own limit for a manifest
_REDIRECTS = 5


def registry_host(domain: str) -> str:
    return "registry-1.docker.io" if domain == "docker.io" else domain


class BlobStream:
    """A blob being downloaded: read() turns network failures into one clear error."""

    def __init__(self, resp: http.client.HTTPResponse, what: str, on_error: Any) -> None:
        self.resp, self.what, self.on_error = resp, what, on_error
        self.length = resp.length

    def read(self, n: int = -1) -> bytes:
        try:
            return self.resp.read(n if n and n > 0 else _BLOCK)
        except http.client.IncompleteRead as err:
            self.on_error()
            raise ImageError(f"{self.what}: truncated download ({len(err.partial)} bytes short of "
                             f"the announced length)") from None
        except (OSError, http.client.HTTPException) as err:
            self.on_error()
            raise ImageError(f"{self.what}: download failed ({err})") from None

    def close(self) -> None:
        self.resp.close()


class RegistryClient:
    def __init__(self, domain: str, *, credentials: Credentials | None = None, timeout: float = 60.0,
                 use_docker_config: bool = True) -> None:
        self.domain = domain
        self.host = registry_host(domain)
        self.credentials = credentials or (credentials_for(domain) if use_docker_config else None)
        self.timeout = timeout
        self.scheme: str | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}  # scope -> "Bearer ..." / "Basic ..."
        self._basic = False

    # ---- the API ----

    def ping(self) -> None:
        """GET /v2/: picks the scheme (HTTPS, or HTTP where allowed); a 401 is fine (auth comes later)."""
        if self.scheme is not None:
            return
        tried = []
        # Where plain HTTP is allowed it is probed first: an HTTPS server answers it with a quick 400,
        # while a TLS hello sent to a plain server may hang until the timeout.
        for scheme in ("http", "https") if plain_http_allowed(self.host) else ("https",):
            try:
                resp = self._send_once(scheme, self.host, "GET", "/v2/", {})
                resp.read()
                if scheme == "http" and resp.status not in (200, 401):
                    tried.append(f"http: HTTP {resp.status}")
                    self._drop_connection(scheme, self.host)
                    continue
                self.scheme = scheme
                return
            except (OSError, http.client.HTTPException) as err:
                self._drop_connection(scheme, self.host)
                tried.append(f"{scheme}: {_reason(err)}")
        hint = None if plain_http_allowed(self.host) else \
            f"for a registry without TLS, add {self.host} to COMPOSER_INSECURE_REGISTRIES"
        raise ImageError(f"cannot reach registry {self.host} ({'; '.join(tried)})", hint=hint)

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str]:
        """(manifest bytes, media type) of repo:tag or repo@digest."""
        resp = self._request("GET", f"/v2/{repo}/manifests/{reference}", repo, "pull",
                             headers={"Accept": ACCEPT}, what=f"manifest {repo}:{reference}")
        data = resp.read(_MANIFEST_MAX + 1)
        if len(data) > _MANIFEST_MAX:
            raise ImageError(f"manifest {repo}:{reference} is larger than {_MANIFEST_MAX} bytes")
        media = manifest_media_type(parse_json(data, f"manifest {repo}:{reference}"),
                                    resp.getheader("Content-Type") or "")
        return data, media

    def get_blob(self, repo: str, digest: str, limit: int) -> bytes:
        stream = self.open_blob(repo, digest)
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise ImageError(f"blob {digest} is larger than {limit} bytes")
        while len(data) < (stream.length or 0):
            more = stream.read(limit + 1 - len(data))
            if not more:
                break
            data += more
        return data

    def open_blob(self, repo: str, digest: str) -> BlobStream:
        what = f"blob {digest[:19]}"
        resp = self._request("GET", f"/v2/{repo}/blobs/{digest}", repo, "pull", what=what)
        conn_key = self._local.__dict__.get("last")
        return BlobStream(resp, what, lambda: self._drop_connection(*conn_key) if conn_key else None)

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self._request("HEAD", f"/v2/{repo}/blobs/{digest}", repo, "pull,push", ok=(200, 404),
                             what=f"blob {digest[:19]}")
        resp.read()
        return resp.status == 200

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount: the registry links a blob it already holds under `from_repo` (201),
        or answers 202 with an upload session, which is dropped here: the caller then uploads."""
        what = f"mount of {digest[:19]}"
        query = urllib.parse.urlencode({"mount": digest, "from": from_repo})
        resp = self._request("POST", f"/v2/{repo}/blobs/uploads/?{query}", repo, "pull,push", ok=(201, 202),
                             what=what, headers={"Content-Length": "0"})
        resp.read()
        if resp.status == 202:
            location = resp.getheader("Location")
            if location:  # cancel the session the registry opened instead of mounting
                try:
                    self._request("DELETE", self._location(resp, what), repo, "pull,push",
                                  ok=(200, 202, 204, 404), what=what).read()
                except ImageError:
                    pass
        return resp.status == 201

    def upload_blob(self, repo: str, digest: str, f: BinaryIO, size: int, chunk_size: int | None = None) -> None:
        """POST an upload session, then one PUT with the whole blob (monolithic) or PATCHes of
        chunk_size bytes (chunked) and a closing PUT with the digest."""
        scope, what = "pull,push", f"upload of {digest[:19]}"
        resp = self._request("POST", f"/v2/{repo}/blobs/uploads/", repo, scope, ok=(202,), what=what,
                             headers={"Content-Length": "0"})
        resp.read()
        location = self._location(resp, what)
        if chunk_size:
            offset = 0
            while offset < size:
                n = min(chunk_size, size - offset)
                chunk = f.read(n)
                if len(chunk) != n:
                    raise ImageError(f"{what}: the blob in the store is shorter than its size")
                resp = self._request("PATCH", location, repo, scope, ok=(202,), what=what, body=chunk, headers={
                    "Content-Type": "application/octet-stream", "Content-Length": str(n),
                    "Content-Range": f"{offset}-{offset + n - 1}"})
                resp.read()
                location = self._location(resp, what)
                offset += n
            body: Any = b""
            length = 0
        else:
            body, length = f, size
        sep = "&" if "?" in location else "?"
        resp = self._request("PUT", f"{location}{sep}digest={urllib.parse.quote(digest)}", repo, scope,
                             ok=(201,), what=what, body=body, headers={
                                 "Content-Type": "application/octet-stream", "Content-Length": str(length)})
        resp.read()

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        resp = self._request("PUT", f"/v2/{repo}/manifests/{reference}", repo, "pull,push", ok=(201,),
                             what=f"manifest {repo}:{reference}", body=data,
                             headers={"Content-Type": media_type, "Content-Length": str(len(data))})
        resp.read()
        return resp.getheader("Docker-Content-Digest") or ""

    # ---- transport ----

    def _request(self, method: str, target: str, repo: str, actions: str, *, headers: dict | None = None,
                 body: Any = None, ok: tuple[int, ...] = (200,), what: str) -> http.client.HTTPResponse:
        self.ping()
        assert self.scheme is not None
        scheme, host, path = self._split(target)
        scope = f"repository:{repo}:{actions}"
        start = body.tell() if hasattr(body, "tell") else None
        for attempt in range(2):
            hdrs = dict(headers or {})
            auth = self._tokens.get(scope) or (self._tokens.get("basic") if self._basic else None)
            if auth and host == self.host:
                hdrs["Authorization"] = auth
            resp = self._send(scheme, host, method, path, hdrs, body)
            if resp.status == 401 and attempt == 0:
                challenge = resp.getheader("WWW-Authenticate", "")
                resp.read()
                self._authenticate(challenge, scope, what)
                if start is not None:
                    body.seek(start)
                continue
            redirects = 0
            while resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                redirects += 1
                location = resp.getheader("Location") or ""
                resp.read()
                if redirects > _REDIRECTS or not location:
                    raise ImageError(f"{what}: too many redirects")
                scheme, host, path = self._split(urllib.parse.urljoin(f"{scheme}://{host}{path}", location))
                if scheme == "http" and not plain_http_allowed(host):
                    raise ImageError(f"{what}: refusing a redirect to plain HTTP ({host})")
                # storage backends get signed URLs, never our registry credentials
                extra = {"Authorization": hdrs["Authorization"]} if host == self.host and "Authorization" in hdrs \
                    else {}
                resp = self._send(scheme, host, method, path, {**(headers or {}), **extra}, None)
            if resp.status in ok:
                return resp
            raise self._error(resp, what)
        raise ImageError(f"{what}: authentication required (the registry refused the credentials)")

    def _authenticate(self, header: str, scope: str, what: str) -> None:
        challenge = parse_challenge(header)
        if challenge is None:
            raise ImageError(f"{what}: the registry demands authentication without saying how")
        if challenge.scheme == "basic":
            if self.credentials is None:
                raise ImageError(f"{what}: authentication required",
                                 hint=f"add credentials for {self.domain} to {_config_name()}")
            with self._lock:
                self._tokens["basic"], self._basic = self.credentials.basic(), True
            return
        if challenge.scheme != "bearer" or not challenge.params.get("realm"):
            raise ImageError(f"{what}: unsupported authentication scheme {challenge.scheme!r}")
        realm = challenge.params["realm"]
        query = {"scope": scope}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        scheme, host, path = self._split(realm)
        if scheme == "http" and not plain_http_allowed(host):
            raise ImageError(f"{what}: refusing to fetch a token over plain HTTP from {host}")
        sep = "&" if "?" in path else "?"
        hdrs = {"Authorization": self.credentials.basic()} if self.credentials else {}
        resp = self._send(scheme, host, "GET", f"{path}{sep}{urllib.parse.urlencode(query)}", hdrs, None)
        data = resp.read(1 << 20)
        if resp.status != 200:
            if resp.status in (401, 403):
                raise ImageError(f"{what}: access denied by the token server {host} (HTTP {resp.status})",
                                 hint=None if self.credentials else
                                 f"the repository may not exist or may need credentials in {_config_name()}")
            raise ImageError(f"{what}: token server {host} answered HTTP {resp.status}")
        obj = parse_json(data, f"token from {host}")
        token = (obj.get("token") or obj.get("access_token")) if isinstance(obj, dict) else None
        if not isinstance(token, str) or not token:
            raise ImageError(f"{what}: the token server {host} returned no token")
        with self._lock:
            self._tokens[scope] = f"Bearer {token}"

    def _send(self, scheme: str, host: str, method: str, path: str, headers: dict,
              body: Any) -> http.client.HTTPResponse:
        """One request on this thread's keep-alive connection, retried once on a stale connection."""
        start = body.tell() if hasattr(body, "tell") else None
        for attempt in range(2):
            try:
                return self._send_once(scheme, host, method, path, headers, body)
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest,
                    http.client.BadStatusLine) as err:
                self._drop_connection(scheme, host)
                if attempt or (start is None and body is not None and not isinstance(body, bytes)):
                    raise ImageError(f"registry {host}: {_reason(err)}") from None
                if start is not None:
                    body.seek(start)
            except (OSError, http.client.HTTPException) as err:
                self._drop_connection(scheme, host)
                raise ImageError(f"registry {host}: {_reason(err)}") from None
        raise AssertionError("unreachable")

    def _send_once(self, scheme: str, host: str, method: str, path: str, headers: dict,
                   body: Any = None) -> http.client.HTTPResponse:
        conns = self._local.__dict__.setdefault("conns", {})
        key = (scheme, host)
        conn = conns.get(key)
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(host, timeout=self.timeout, blocksize=_BLOCK,
                                                   context=ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(host, timeout=self.timeout, blocksize=_BLOCK)
            conns[key] = conn
        self._local.last = key
        headers = {"User-Agent": "composer", **headers}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        if resp.getheader("Connection", "").lower() == "close":
            conns.pop(key, None)
        return resp

    def _drop_connection(self, scheme: str, host: str) -> None:
        conn = self._local.__dict__.setdefault("conns", {}).pop((scheme, host), None)
        if conn is not None:
            conn.close()

    def _split(self, target: str) -> tuple[str, str, str]:
        if target.startswith("/"):
            assert self.scheme is not None
            return self.scheme, self.host, target
        url = urllib.parse.urlsplit(target)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ImageError(f"registry {self.host}: bad URL {target!r}")
        path = url.path or "/"
        return url.scheme, url.netloc, path + (f"?{url.query}" if url.query else "")

    def _location(self, resp: http.client.HTTPResponse, what: str) -> str:
        location = resp.getheader("Location")
        if not location:
            raise ImageError(f"{what}: the registry gave no upload location")
        scheme, host, path = self._split(urllib.parse.urljoin(f"{self.scheme}://{self.host}/", location))
        return path if (scheme, host) == (self.scheme, self.host) else f"{scheme}://{host}{path}"

    def _error(self, resp: http.client.HTTPResponse, what: str) -> ImageError:
        try:
            body = resp.read(64 << 10)
            errors = json.loads(body).get("errors") or []
            detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)
        except (ValueError, AttributeError, OSError, http.client.HTTPException):
            detail = ""
        detail = detail or f"HTTP {resp.status} {resp.reason}"
        if resp.status == 404:
            return NotFoundError(f"{what} not found in {self.host} ({detail})")
        if resp.status in (401, 403):
            return ImageError(f"{what}: access denied by {self.host} ({detail})")
        return ImageError(f"{what}: {self.host} answered {detail}")


def _reason(err: BaseException) -> str:
    if isinstance(err, ssl.SSLError):
        return f"TLS failed ({err.reason or err})"
    if isinstance(err, socket.timeout):
        return "timed out"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def _config_name() -> str:
    from composer.images.auth import docker_config_path

    return str(docker_config_path())
