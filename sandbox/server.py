"""The plumbing every sandbox shares: a threaded HTTP/1.1 server, requests, responses,
a request log, a per-account rate budget and injected latency."""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import simplejson


@dataclass
class Request:
    """An incoming request: method, path, decoded query (lists), lower-cased headers, body."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def json(self) -> Any:
        return simplejson.loads(self.body, use_decimal=True) if self.body else None

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}


@dataclass
class Response:
    """An outgoing response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response; `Decimal` values are written as the exact numbers they hold."""
    body = simplejson.dumps(data, use_decimal=True).encode("utf-8")
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


def text_response(
    text: str,
    status: int = 200,
    content_type: str = "text/html; charset=utf-8",
    headers: Mapping[str, str] | None = None,
) -> Response:
    return Response(status, text.encode("utf-8"), {"Content-Type": content_type, **(headers or {})})


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    at: float


class RequestLog:
    """Every request a sandbox answered, for tests that prove what the pipeline asked for."""

    def __init__(self) -> None:
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def count(self, status: int | None = None, path_prefix: str = "") -> int:
        return sum(
            1 for e in self.entries() if (status is None or e.status == status) and e.path.startswith(path_prefix)
        )


class WindowBudget:
    """At most `limit` requests per `window` seconds per key (sliding window), like an API
    gateway's per-account limit. `check` returns None to allow, or the seconds to wait."""

    def __init__(self, limit: int | None, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> float | None:
        if not self.limit:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.0, hits[0] + self.window - now)
            hits.append(now)
            return None


class SandboxApp(ABC):
    """A provider simulator. Subclasses implement the documented endpoints in `handle`.

    Attributes:
        name: the provider name (same as the source folder).
        log: every request answered.
        latency: seconds added to every response (to measure the network path).
    """

    name: str = ""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.log = RequestLog()
        self.latency = latency
        self.lock = threading.RLock()

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """Answer one request."""

    @abstractmethod
    def pipeline_env(self, base_url: str) -> dict[str, str]:
        """Environment variables that point the pipeline at this sandbox with valid credentials."""

    @abstractmethod
    def summary(self) -> dict[str, Any]:
        """What the sandbox holds, computed from its own data: counts and exact totals per
        currency, for the demo's comparison and the tests' assertions."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        app = self.server.app
        if app.latency:
            time.sleep(app.latency)
        try:
            response = app.handle(request)
        except Exception as exc:  # a sandbox bug must show as a 500, like a real server's
            response = json_response({"error": f"sandbox error: {type(exc).__name__}: {exc}"}, 500)
        app.log.add(LoggedRequest(request.method, request.path, request.query, response.status, time.time()))
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    app: SandboxApp


class SandboxServer:
    """Serves a `SandboxApp` on a loopback port in a background thread.

    with SandboxServer(app) as server:
        httpx.get(server.url + "/clients.json")
    """

    def __init__(self, app: SandboxApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self._server = _Server((host, port), _Handler)
        self._server.app = app
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sandbox-{self.app.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def available() -> dict[str, Callable[..., SandboxApp]]:
    """Every sandbox package's `create_app`, by provider name."""
    import sandbox

    found: dict[str, Callable[..., SandboxApp]] = {}
    for module in pkgutil.iter_modules(sandbox.__path__):
        if module.ispkg:
            package = importlib.import_module(f"sandbox.{module.name}")
            if hasattr(package, "create_app"):
                found[module.name] = package.create_app
    return dict(sorted(found.items()))
