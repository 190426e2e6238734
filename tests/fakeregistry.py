"""A tiny distribution-API registry in a thread (http.server on 127.0.0.1, a free port), for what a real
registry can't easily be made to do: bearer-token and basic auth challenges with a token server,
tampered and truncated blobs. Serves what `repos` holds; records the requests it saw. Takes pushes too:
upload sessions (POST, PATCH chunks with Content-Range, the closing PUT checked against its digest),
cross-repository mounts (`?mount=&from=`, for blobs held under `from`) and manifest PUTs."""

from __future__ import annotations

import base64
import json
import hashlib
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests import imagekit as kit


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class FakeRegistry:
    def __init__(self, *, auth: str | None = None, user: str = "alice", password: str = "s3cret") -> None:
        self.auth, self.user, self.password = auth, user, password
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.tamper: dict[str, bytes] = {}  # digest -> bytes served instead (same Content-Length rules)
        self.truncate: set[str] = set()  # digests served with the full length announced, then cut
        self.requests: list[tuple[str, str, str]] = []  # (method, path, authorization)
        self.token = "tok-" + base64.b16encode(b"fake").decode()
        self.scopes: list[str] = []
        self.blob_repos: dict[str, set[str]] = {}  # digest -> repositories it was pushed to or mounted in
        self.uploads: dict[str, bytearray] = {}  # upload session -> bytes so far
        self.mounts = True  # False: answer mounts with 202 (a new session), as registries may
        self._servers: list[_Server] = []
        self.port = self._serve(self._registry_handler())
        self.token_port = self._serve(self._token_handler()) if auth == "bearer" else 0

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, repo: str, tag: str, img: kit.Img) -> None:
        self.blobs.update(img.blobs)
        self.manifests[(repo, tag)] = (img.manifest, img.media_type)
        self.manifests[(repo, img.digest)] = (img.manifest, img.media_type)

    def add_index(self, repo: str, tag: str, data: bytes, media_type: str) -> None:
        self.manifests[(repo, tag)] = (data, media_type)
        self.manifests[(repo, kit.sha(data))] = (data, media_type)

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def _serve(self, handler: type) -> int:
        server = _Server(("127.0.0.1", 0), handler)
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return server.server_address[1]

    def _authorized(self, header: str) -> bool:
        if self.auth is None:
            return True
        if self.auth == "basic":
            expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return header == f"Basic {expected}"
        return header == f"Bearer {self.token}"

    def _registry_handler(self) -> type:
        reg = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                self.do_GET(head=True)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _push_allowed(self) -> bool:
                auth = self.headers.get("Authorization", "")
                reg.requests.append((self.command, self.path, auth))
                if reg._authorized(auth):
                    return True
                challenge = 'Basic realm="fake"' if reg.auth == "basic" else \
                    (f'Bearer realm="http://127.0.0.1:{reg.token_port}/token",service="fake-registry"')
                self._body()
                self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge}, False)
                return False

            def do_POST(self):
                if not self._push_allowed():
                    return
                self._body()
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                repo = url.path[len("/v2/"):-len("/blobs/uploads/")]
                digest, source = query.get("mount", [""])[0], query.get("from", [""])[0]
                if digest and reg.mounts and source in reg.blob_repos.get(digest, set()):
                    reg.blob_repos[digest].add(repo)
                    return self._send(201, b"", {"Location": f"/v2/{repo}/blobs/{digest}"}, False)
                session = uuid.uuid4().hex
                reg.uploads[session] = bytearray()
                self._send(202, b"", {"Location": f"/v2/{repo}/blobs/uploads/{session}?state=s0",
                                      "Docker-Upload-UUID": session}, False)

            def do_PATCH(self):
                if not self._push_allowed():
                    return
                url = urllib.parse.urlsplit(self.path)
                session = url.path.rsplit("/", 1)[1]
                data = self._body()
                buf = reg.uploads[session]
                start = int((self.headers.get("Content-Range") or f"{len(buf)}-").split("-")[0])
                if start != len(buf):
                    return self._send(416, b'{"errors":[{"code":"RANGE_INVALID"}]}', {}, False)
                buf += data
                repo = url.path[len("/v2/"):url.path.index("/blobs/uploads/")]
                self._send(202, b"", {"Location": f"/v2/{repo}/blobs/uploads/{session}?state=s{len(buf)}",
                                      "Range": f"0-{len(buf) - 1}"}, False)

            def do_PUT(self):
                if not self._push_allowed():
                    return
                url = urllib.parse.urlsplit(self.path)
                data = self._body()
                if "/manifests/" in url.path:
                    repo, ref = url.path[len("/v2/"):].split("/manifests/")
                    digest = "sha256:" + hashlib.sha256(data).hexdigest()
                    mtype = self.headers.get("Content-Type", "")
                    reg.manifests[(repo, ref)] = reg.manifests[(repo, digest)] = (data, mtype)
                    return self._send(201, b"", {"Docker-Content-Digest": digest}, False)
                session = url.path.rsplit("/", 1)[1]
                repo = url.path[len("/v2/"):url.path.index("/blobs/uploads/")]
                blob = bytes(reg.uploads.pop(session)) + data
                digest = urllib.parse.parse_qs(url.query).get("digest", [""])[0]
                if digest != "sha256:" + hashlib.sha256(blob).hexdigest():
                    return self._send(400, b'{"errors":[{"code":"DIGEST_INVALID"}]}', {}, False)
                reg.blobs[digest] = blob
                reg.blob_repos.setdefault(digest, set()).add(repo)
                self._send(201, b"", {"Location": f"/v2/{repo}/blobs/{digest}"}, False)

            def do_DELETE(self):
                if self._push_allowed():
                    reg.uploads.pop(urllib.parse.urlsplit(self.path).path.rsplit("/", 1)[1], None)
                    self._send(204, b"", {}, False)

            def do_GET(self, head=False):
                auth = self.headers.get("Authorization", "")
                reg.requests.append((self.command, self.path, auth))
                if not reg._authorized(auth):
                    challenge = 'Basic realm="fake"' if reg.auth == "basic" else \
                        (f'Bearer realm="http://127.0.0.1:{reg.token_port}/token",service="fake-registry"')
                    return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication '
                                           b'required"}]}', {"WWW-Authenticate": challenge}, head)
                parts = self.path.split("/")
                if self.path == "/v2/":
                    return self._send(200, b"{}", {}, head)
                if len(parts) >= 5 and parts[1] == "v2" and parts[-2] in ("manifests", "blobs"):
                    repo, kind, ref = "/".join(parts[2:-2]), parts[-2], parts[-1]
                    if kind == "manifests" and (repo, ref) in reg.manifests:
                        data, mtype = reg.manifests[(repo, ref)]
                        return self._send(200, data, {"Content-Type": mtype,
                                                      "Docker-Content-Digest": kit.sha(data)}, head)
                    if kind == "blobs" and ref in reg.blobs and repo in reg.blob_repos.get(ref, {repo}):
                        data = reg.tamper.get(ref, reg.blobs[ref])
                        if ref in reg.truncate and not head:
                            self.send_response(200)
                            self.send_header("Content-Length", str(len(data)))
                            self.end_headers()
                            self.wfile.write(data[: len(data) // 2])
                            self.wfile.flush()
                            self.close_connection = True
                            return
                        return self._send(200, data, {"Content-Type": "application/octet-stream"}, head)
                self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}', {}, head)

            def _send(self, code, body, headers, head):
                self.send_response(code)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        return Handler

    def _token_handler(self) -> type:
        reg = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                reg.scopes.append(query.get("scope", [""])[0])
                expected = base64.b64encode(f"{reg.user}:{reg.password}".encode()).decode()
                ok = self.headers.get("Authorization") == f"Basic {expected}" and \
                    query.get("service") == ["fake-registry"]
                body = json.dumps({"token": reg.token}).encode() if ok else b'{"details":"denied"}'
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
