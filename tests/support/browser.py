"""Driving the campaign console in headless Chromium, and a gateway that mounts the service under a prefix.

The browser is Debian's ``chromium`` (``apt-get install -y chromium``),
driven by Playwright through its executable path — no browser download.
Screenshots go to ``docs/screenshots/`` (the README shows them) and to the
test's tmp dir (the run's artifacts).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import ClientSession, web
from multidict import CIMultiDict
from playwright.sync_api import Page, ViewportSize, sync_playwright

from adapters.embedded import free_port

from .worker import REPO

SCREENSHOTS = REPO / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1366, "height": 860}  # a laptop screen
INSTALL_HINT = "the console tests need Debian's chromium: apt-get install -y chromium"

# Headers that belong to one hop, not to the request or answer being forwarded.
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length"}


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(INSTALL_HINT)
    return found


@dataclass
class Console:
    """One browser page on the console, with what went wrong in it."""

    page: Page
    artifacts: Path
    page_errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str, *, docs: bool = True) -> Path:
        """Save a full-page screenshot as a test artifact and (``docs``) under docs/screenshots/."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        shot = self.artifacts / f"{name}.png"
        self.page.screenshot(path=str(shot), full_page=True)
        if docs:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, SCREENSHOTS / f"{name}.png")
        return shot

    def dismiss_toasts(self) -> None:
        """Close the notifications (after the test read them), so a screenshot shows the page under them."""
        # Not by clicking: a notice may time out between finding and clicking it.
        self.page.evaluate("document.querySelectorAll('.toast').forEach((t) => t.remove())")

    def use_token(self, token: str) -> None:
        self.page.get_by_label("API token", exact=True).fill(token)
        self.page.get_by_role("button", name="Use token").click()

    def wait_ready(self) -> None:
        """The page detected the API's features and rendered its first view."""
        self.page.wait_for_selector("body[data-ready]", timeout=30_000)


def open_console(artifacts: Path) -> Iterator[Console]:
    """Headless system Chromium with one page on a fresh profile; closed afterwards, leaving a last screenshot.

    Playwright's synchronous API keeps an event loop running on this thread
    while it is open, so ``asyncio.run`` (the database fixtures, ``query``)
    cannot be used until it closes: set up everything else first.
    """
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
        # Reduced motion: no progress-bar animation caught half-way in a screenshot.
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, reduced_motion="reduce")
        page = context.new_page()
        page.set_default_timeout(20_000)
        console = Console(page, artifacts)
        page.on("pageerror", lambda exc: console.page_errors.append(str(exc)))
        try:
            yield console
        finally:
            with contextlib.suppress(Exception):  # the artifact is a courtesy; the test's own result stands
                artifacts.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(artifacts / "last.png"), full_page=True)
            browser.close()


class Gateway:
    """A reverse proxy serving the service under ``prefix`` (as the platform's gateway does at /api/invite/).

    ``/api/invite/x`` is forwarded to ``upstream/x``; anything outside the
    prefix is a 404, so a page that uses an absolute URL breaks here.
    """

    def __init__(self, upstream: str, prefix: str = "/api/invite/") -> None:
        self.upstream = upstream.rstrip("/")
        self.prefix = prefix
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.forwarded: list[str] = []
        self.refused: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gateway", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    async def _start(self) -> None:
        self._session = ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path
        if raw.startswith(self.prefix):
            tail = raw[len(self.prefix):]
        elif raw.split("?")[0] == self.prefix.rstrip("/"):
            tail = raw[len(self.prefix) - 1:]  # "/api/invite?x" -> "?x": the service's "/"
        else:
            self.refused.append(raw)
            return web.Response(status=404, text=f"outside the gateway prefix {self.prefix}: {raw}")
        self.forwarded.append(raw)
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP)
        body = await request.read()
        async with self._session.request(request.method, f"{self.upstream}/{tail.lstrip('/')}", headers=headers,
                                         data=body or None, allow_redirects=False) as answer:
            payload = await answer.read()
            out = CIMultiDict((k, v) for k, v in answer.headers.items() if k.lower() not in _HOP)
            return web.Response(status=answer.status, body=payload, headers=out)

    def stop(self) -> None:
        async def close() -> None:
            await self._runner.cleanup()
            await self._session.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
