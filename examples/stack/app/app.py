"""Counts visits in redis and says which replica answered. Standard library only: a few lines of
RESP (redis's protocol) instead of a client package, so the image needs nothing from PyPI."""

import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REDIS = (os.environ.get("REDIS_HOST", "redis"), int(os.environ.get("REDIS_PORT", "6379")))
REPLICA = socket.gethostname()


def incr(key: str) -> int:
    with socket.create_connection(REDIS, timeout=2) as conn:
        conn.sendall(f"*2\r\n$4\r\nINCR\r\n${len(key)}\r\n{key}\r\n".encode())
        reply = conn.makefile("rb").readline()
    if not reply.startswith(b":"):
        raise RuntimeError(reply.decode(errors="replace").strip())
    return int(reply[1:])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body, status = b"ok\n", 200
        else:
            try:
                body, status = f"visit {incr('visits')}, served by {REPLICA}\n".encode(), 200
            except (OSError, RuntimeError) as err:
                body, status = f"redis unavailable: {err}\n".encode(), 503
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print(f"{REPLICA} {self.address_string()} {fmt % args}")


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("APP_PORT", "8000"))), Handler).serve_forever()
