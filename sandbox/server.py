"""Any sandbox app on a real loopback socket: a threaded HTTP/1.1 server, Nagle's algorithm off.

with SandboxServer(app) as server:
    httpx.get(server.url + "/clients.json")
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.framework import App, Request


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body waits for
    # the client's delayed ACK (~40 ms per response). Real API servers do not add that delay.
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.server.app.serve(Request.parse(self.command, self.path, self.headers.items(), body))
        if response.delay and self.server.stopping.wait(response.delay):
            return  # a silent answer outlived the server
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except OSError:  # the client gave up waiting (timeouts, silent faults)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    app: App
    stopping: threading.Event


class SandboxServer:
    """Serves an `App` on a loopback port in a background thread."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server = _Server((host, port), _Handler)
        self._server.app = app
        self._server.stopping = threading.Event()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> SandboxServer:
        name = f"sandbox-{self.app.name}"
        threading.Thread(target=self._server.serve_forever, name=name, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _factories(attribute: str) -> dict[str, Callable[..., App]]:
    import sandbox

    names = sorted(module.name for module in pkgutil.iter_modules(sandbox.__path__) if module.ispkg)
    packages = {name: importlib.import_module(f"sandbox.{name}") for name in names}
    return {name: getattr(package, attribute) for name, package in packages.items() if hasattr(package, attribute)}


def available() -> dict[str, Callable[..., App]]:
    """Every provider sandbox package's `create_app`, by provider name."""
    return _factories("create_app")


def feeds() -> dict[str, Callable[..., App]]:
    """Every data-feed sandbox package's `create_feed` (the ECB's rates), by source name: served
    like a provider's, but no provider account to load."""
    return _factories("create_feed")
