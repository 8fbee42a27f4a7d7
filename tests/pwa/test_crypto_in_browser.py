"""Every shared crypto vector, run through pwa/js/crypto/selfcheck.js inside Chromium under the app's CSP.

A small static server stands in for the real one: it serves pwa/js, pwa/node_modules and tests/vectors
with the MIME types a browser insists on for modules and WebAssembly, and a page whose import map
resolves the bare libsodium names. The page carries the strict policy the app will have
(``default-src 'self'; script-src 'self' 'wasm-unsafe-eval'`` plus the import map's hash), so the test
also proves libsodium.js needs nothing broader than ``'wasm-unsafe-eval'``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import pytest

from crypto.selfcheck import RULE_FOLDERS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage

ROOT = Path(__file__).parents[2]
VECTORS = ROOT / "tests" / "vectors"
OTHER_SUITES = RULE_FOLDERS  # fold/ and entitlement/ hold rules, not crypto constructions
MOUNTS = {"/js/": ROOT / "pwa" / "js", "/node_modules/": ROOT / "pwa" / "node_modules", "/vectors/": VECTORS}
MIME = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".wasm": "application/wasm",
}
IMPORT_MAP = json.dumps({
    "imports": {
        "libsodium-wrappers-sumo": "/node_modules/libsodium-wrappers-sumo/dist/modules-sumo-esm/libsodium-wrappers.mjs",
        "libsodium-sumo": "/node_modules/libsodium-sumo/dist/modules-sumo-esm/libsodium-sumo.mjs",
    },
})
IMPORT_MAP_HASH = base64.b64encode(hashlib.sha256(IMPORT_MAP.encode()).digest()).decode()
CSP = f"default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'sha256-{IMPORT_MAP_HASH}'"
PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cairn crypto self-check</title>
<script type="importmap">{IMPORT_MAP}</script>
</head>
<body><main><h1>Cairn crypto self-check</h1></main></body>
</html>
"""

RUN_VECTORS = """async () => {
  const { checkVector, SelfCheckFailed } = await import('/js/crypto/selfcheck.js');
  const paths = await (await fetch('/vectors/index.json')).json();
  const vectors = await Promise.all(paths.map(async (p) => [p, await (await fetch('/vectors/' + p)).json()]));
  const failures = [];
  let passed = 0;
  for (const [path, vector] of vectors) {
    try {
      checkVector(vector);
      passed += 1;
    } catch (e) {
      failures.push(`${path}: ${e.name}: ${e.message}`);
    }
  }
  const ok = vectors.find(([p]) => p === 'wrap/unwrap_success.json')[1];
  let relabelled = 'passed';
  try {
    checkVector({ ...ok, expect: 'auth_failure' });
  } catch (e) {
    relabelled = e instanceof SelfCheckFailed ? 'SelfCheckFailed' : String(e);
  }
  return { listed: paths.length, passed, failures, relabelled };
}"""


def crypto_vector_paths() -> list[str]:
    """Every crypto vector on disk, relative to tests/vectors, the rule folders left out."""
    return sorted(
        p.relative_to(VECTORS).as_posix()
        for p in VECTORS.rglob("*.json")
        if p.relative_to(VECTORS).parts[0] not in OTHER_SUITES
    )


class _Handler(BaseHTTPRequestHandler):
    """GET only: the test page, a generated /vectors/index.json, and files under the three mounts."""

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        if path in ("/", "/selfcheck.html"):
            self._send(PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/vectors/index.json":
            self._send(json.dumps(crypto_vector_paths()).encode(), MIME[".json"])
        elif path == "/favicon.ico":
            self._send(b"", "image/x-icon", HTTPStatus.NO_CONTENT)
        else:
            self._send_file(path)

    def _send_file(self, path: str) -> None:
        for prefix, root in MOUNTS.items():
            if path.startswith(prefix):
                file = (root / path[len(prefix):]).resolve()
                if file.is_relative_to(root.resolve()) and file.is_file() and file.suffix in MIME:
                    self._send(file.read_bytes(), MIME[file.suffix])
                    return
        self._send(b"not found", "text/plain; charset=utf-8", HTTPStatus.NOT_FOUND)

    def _send(self, body: bytes, content_type: str, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        if status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != HTTPStatus.NO_CONTENT:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the stdlib's name)
        pass


@pytest.fixture
def site() -> Iterator[str]:
    """The static server on an ephemeral port of 127.0.0.1; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="static-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.browser
def test_every_crypto_vector_passes_in_chromium_under_the_app_csp(browser: Browser, site: str) -> None:
    on_disk = crypto_vector_paths()
    assert len(on_disk) > 100
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console {message.type}: {message.text}")

    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("console", on_console)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        response = page.goto(f"{site}/selfcheck.html", wait_until="load")
        assert response is not None and response.ok
        assert response.headers["content-security-policy"] == CSP
        result = page.evaluate(RUN_VECTORS)
    finally:
        context.close()

    assert result["failures"] == []
    assert result["listed"] == result["passed"] == len(on_disk)
    assert result["relabelled"] == "SelfCheckFailed", "the runner in the page can fail"
    assert problems == []
