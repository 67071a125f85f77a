"""An HTTP server on 127.0.0.1 that serves images to ``image_url`` fetches, and tells what it saw.

Pages are looked up by path (the query is ignored). Besides them it has a few routes that
misbehave on purpose: ``/hop`` redirects to ``/cat.png``; ``/drip.png`` promises 100,000 bytes
and drips one every 50 ms; ``/big.png`` (no length) and ``/big-declared.png`` push 64 MiB.
Anything else is a 404.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Mapping
from typing import Any

from tests import imaging

CAT = imaging.png()  # 64x48, red with a green box
BIG_TOTAL = 64 * 1024 * 1024

Page = tuple[int, bytes, str]  # status, body, Content-Type


class ImageServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, pages: Mapping[str, Page] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pages: dict[str, Page] = {"/cat.png": (200, CAT, "image/png"), **(pages or {})}
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []  # (path with query, Host header)
        self.connections = 0
        self.big_written = 0
        self.big_done = threading.Event()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _host in self.seen]

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.lock:
            self.connections += 1
        return True

    def start(self) -> ImageServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> ImageServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: ImageServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.seen.append((self.path, self.headers.get("Host", "")))
        path = self.path.split("?", 1)[0]
        if path == "/hop":
            self.send_response(302)
            self.send_header("Location", "/cat.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/drip.png":
            self._drip()
        elif path in ("/big.png", "/big-declared.png"):
            self._big(declared=path == "/big-declared.png")
        else:
            self._send(*self.server.pages.get(path, (404, b"not found", "text/plain")))

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(100_000):
                if self.server.stopping.wait(0.05):
                    return
                self.wfile.write(b"\0")
                self.wfile.flush()
        except OSError:
            return

    def _big(self, *, declared: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        if declared:
            self.send_header("Content-Length", str(BIG_TOTAL))
        self.end_headers()  # HTTP/1.0 without a length: the body runs until close
        chunk = b"\0" * 65536
        try:
            while self.server.big_written < BIG_TOTAL and not self.server.stopping.is_set():
                self.wfile.write(chunk)
                self.server.big_written += len(chunk)
        except OSError:
            pass
        finally:
            self.server.big_done.set()
