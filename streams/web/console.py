"""The campaign console: a static page at ``/`` and its assets at ``static/``, shipped inside the package.

The page is plain HTML, CSS and ES modules (``streams/web/static/``); it
talks to the REST API from the browser with the person's bearer token, so
this module only serves files. Every URL the page uses is relative to its
own location, so it works unchanged behind a gateway that mounts the service
under a prefix (``/api/invite/``). Only the files in the folder are served,
by exact name — no directory listing, no path walking.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import faust
from aiohttp import web
from faust.web import Request, View

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX = "index.html"

_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


@dataclass(frozen=True)
class Asset:
    """One file of the page, read once at start-up."""

    body: bytes
    content_type: str


def load_assets(folder: Path = STATIC_DIR) -> dict[str, Asset]:
    """The servable files of ``folder`` by name (flat: the package ships no subfolders)."""
    assets: dict[str, Asset] = {}
    for path in sorted(folder.iterdir()):
        content_type = _TYPES.get(path.suffix)
        if path.is_file() and content_type is not None:
            assets[path.name] = Asset(path.read_bytes(), content_type)
    if INDEX not in assets:
        raise FileNotFoundError(f"the console page {folder / INDEX} is missing from the package")
    return assets


def content_security_policy(index_html: bytes) -> str:
    """Same-origin everything; the page's one inline script is allowed by its hash."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(index_html)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def register(app: faust.App) -> None:
    """Serve the console at ``/`` and its assets at ``/static/{name}``."""
    assets = load_assets()
    headers = {
        # Revalidate every time: a new release must not run against a cached old script.
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    page_headers = {**headers, "Content-Security-Policy": content_security_policy(assets[INDEX].body),
                    "X-Frame-Options": "DENY"}

    def answer(asset: Asset, extra: dict[str, str]) -> web.Response:
        return web.Response(body=asset.body, content_type=asset.content_type,
                            charset="utf-8" if asset.content_type.startswith("text/") else None, headers=extra)

    @app.page("/")
    class ConsolePage(View):
        """The console page (the same for every user: the data comes from the API)."""

        async def get(self, request: Request) -> web.Response:
            return answer(assets[INDEX], page_headers)

    @app.page("/static/{name}")
    class ConsoleAsset(View):
        """A file of the console, by exact name."""

        async def get(self, request: Request, name: str) -> web.Response:
            asset = assets.get(name)
            if asset is None:
                return web.Response(status=404, text=f"no such file: {name}", headers=headers)
            return answer(asset, headers)
