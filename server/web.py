"""The staff PWA as the server delivers it: the shell page, its ES modules, the service worker, the web app
manifest, the school's categories, and the few files it needs from ``pwa/node_modules``.

Nothing here reads or writes a concern: the app does all of that on the device. What this module adds is
a strict Content-Security-Policy and the other security headers (``SecurityHeaders``, a plain ASGI class
around the whole app), and a build id, a hash of every file the service worker caches, so that any change
to the app reaches devices as "update ready".
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

__all__ = ["routes", "SecurityHeaders", "WebAssets", "IMPORT_MAP", "csp"]

ROOT = Path(__file__).resolve().parents[1]
PWA = ROOT / "pwa"
NODE_MODULES = PWA / "node_modules"
CATEGORIES = ROOT / "sync" / "data" / "categories.json"
TEMPLATES = Path(__file__).resolve().parent / "templates"

# Only these files of node_modules are served: the ESM builds the import map names, nothing else.
VENDOR = {
    "libsodium-wrappers-sumo.mjs": "libsodium-wrappers-sumo/dist/modules-sumo-esm/libsodium-wrappers.mjs",
    "libsodium-sumo.mjs": "libsodium-sumo/dist/modules-sumo-esm/libsodium-sumo.mjs",
    "idb.js": "idb/build/index.js",
    "qrcode-generator.mjs": "qrcode-generator/dist/qrcode.mjs",
}
IMPORT_MAP = json.dumps(
    {
        "imports": {
            "libsodium-wrappers-sumo": "/vendor/libsodium-wrappers-sumo.mjs",
            "libsodium-sumo": "/vendor/libsodium-sumo.mjs",
            "idb": "/vendor/idb.js",
            "qrcode-generator": "/vendor/qrcode-generator.mjs",
        }
    },
    separators=(",", ":"),
)
MOUNTS = {"js": PWA / "js", "css": PWA / "css", "icons": PWA / "icons"}
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}
# The app's pages and API are never kept by the HTTP cache: the service worker keeps the shell, and it
# must see every change at once when it checks for an update.
NO_CACHE = "no-cache"


def _hash(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def csp() -> str:
    """The one Content-Security-Policy: modules from this origin, WebAssembly compilation for libsodium,
    the import map by its hash; no inline script, no eval, no framing, no other origin."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'wasm-unsafe-eval' 'sha256-{_hash(IMPORT_MAP)}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self'",
            "manifest-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """A plain ASGI middleware that adds the security headers to every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp().encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in self.headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class WebAssets:
    """Every URL the service worker caches, and a build id that changes whenever any of them changes."""

    def __init__(self) -> None:
        self._stamp: tuple | None = None
        self._build = ""
        self._urls: list[str] = []

    def files(self) -> list[tuple[str, Path]]:
        out = [(f"/vendor/{name}", NODE_MODULES / rel) for name, rel in VENDOR.items()]
        for mount, folder in MOUNTS.items():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.suffix in TYPES and "selfcheck" not in path.name:
                    out.append((f"/{mount}/{path.relative_to(folder).as_posix()}", path))
        out += [("/categories.json", CATEGORIES), ("/sw.js", PWA / "sw.js"), ("/manifest.webmanifest", TEMPLATES
                / "manifest.webmanifest"), ("/", TEMPLATES / "shell.html")]
        return out

    def current(self) -> tuple[str, list[str]]:
        """(build id, URLs to cache); recomputed only when a file's size or time changes."""
        files = self.files()
        stamp = tuple((url, p.stat().st_mtime_ns, p.stat().st_size) for url, p in files if p.exists())
        if stamp != self._stamp:
            digest = hashlib.sha256()
            for url, path in files:
                digest.update(url.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
            self._stamp, self._build = stamp, digest.hexdigest()[:16]
            self._urls = [url for url, _ in files if url != "/sw.js"]
        return self._build, self._urls


_assets = WebAssets()
_templates = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def _file(path: Path, content_type: str | None = None) -> Response:
    if not path.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    kind = content_type or TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=kind, headers={"cache-control": NO_CACHE})


async def shell(request: Request) -> Response:
    build, _ = _assets.current()
    html = _templates.get_template("shell.html").render(import_map=IMPORT_MAP, build=build)
    return HTMLResponse(html, headers={"cache-control": NO_CACHE})


async def service_worker(request: Request) -> Response:
    """``pwa/sw.js`` with its build id and cache list filled in: any change to the app changes these bytes,
    which is how a browser finds an update."""
    build, urls = _assets.current()
    text = (PWA / "sw.js").read_text("utf-8")
    text = text.replace("'__CAIRN_BUILD__'", json.dumps(build)).replace("['__CAIRN_ASSETS__']", json.dumps(urls))
    return Response(text, media_type=TYPES[".js"], headers={"cache-control": NO_CACHE})


async def manifest(request: Request) -> Response:
    return _file(TEMPLATES / "manifest.webmanifest", "application/manifest+json")


async def categories(request: Request) -> Response:
    return _file(CATEGORIES)


async def vendor(request: Request) -> Response:
    rel = VENDOR.get(request.path_params["name"])
    return _file(NODE_MODULES / rel) if rel else Response("not found", status_code=404, media_type="text/plain")


async def static(request: Request) -> Response:
    mount = MOUNTS[request.url.path.split("/", 2)[1]]
    path = (mount / request.path_params["path"]).resolve()
    if not path.is_relative_to(mount) or path.suffix not in TYPES:
        return Response("not found", status_code=404, media_type="text/plain")
    return _file(path)


def routes() -> list[Route]:
    return [
        Route("/", shell, methods=["GET"]),
        Route("/sw.js", service_worker, methods=["GET"]),
        Route("/manifest.webmanifest", manifest, methods=["GET"]),
        Route("/categories.json", categories, methods=["GET"]),
        Route("/vendor/{name}", vendor, methods=["GET"]),
        *(Route(f"/{mount}/{{path:path}}", static, methods=["GET"]) for mount in MOUNTS),
    ]
