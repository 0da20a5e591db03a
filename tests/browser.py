"""The real headless Chromium the browser tests open pages in (Debian's `chromium`), driven
through its DevTools protocol. `CHROMIUM` is None when it is not installed: those tests skip."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser")) if p), None)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-allow-origins=*",
    "--remote-debugging-port=0",
    "--window-size=1400,1000",
)


class DevTools:
    """The smallest client of Chromium's DevTools protocol the browser tests need."""

    def __init__(self, url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            assert time.monotonic() < deadline, f"no {event} within {timeout}s"
            self.events.append(json.loads(self.ws.recv()))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"]["value"]


def open_in_chromium(url: str, profile: Path) -> tuple[subprocess.Popen[bytes], DevTools]:
    """Chromium started with its own profile folder, `url` loaded in its page."""
    assert CHROMIUM
    browser = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().strip()):
        if browser.poll() is not None or time.monotonic() > deadline:
            browser.kill()
            pytest.fail("chromium did not start its DevTools endpoint")
        time.sleep(0.1)
    port = port_file.read_text().split()[0]
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
    target = next(t for t in targets if t["type"] == "page")
    tools = DevTools(target["webSocketDebuggerUrl"])
    for domain in ("Page", "Runtime", "Log", "Network"):
        tools.call(f"{domain}.enable")
    tools.call("Page.navigate", url=url)
    tools.wait_for("Page.loadEventFired")
    return browser, tools


def use_width(tools: DevTools, width: int, height: int = 1000) -> None:
    """Lay the page out as a screen `width` CSS px wide: a phone's (touch, the page's own viewport
    meta tag honoured) below 800 px, a desktop's from there on."""
    tools.call(
        "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=width < 800
    )


def screenshot(tools: DevTools, width: int) -> bytes:
    """The whole page as a PNG, laid out `width` CSS px wide."""
    use_width(tools, width)
    height = tools.evaluate("Math.ceil(document.documentElement.scrollHeight)")
    use_width(tools, width, height)
    picture = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    return base64.b64decode(picture["data"])
