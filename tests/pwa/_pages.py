"""Playwright helpers shared by the PWA tests and ``python -m bench.pwa``: contexts at phone and tablet sizes,
signing in, waiting on the app's own state, screenshots, axe-core, and a raw read of the app's IndexedDB."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tests.pwa._live import CONTRIBUTOR, PASSWORD_FOR_TESTS, LiveSchool

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

ROOT = Path(__file__).parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "pwa"
AXE = ROOT / "pwa" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 768, "height": 1024}
TIMEOUT = 30_000


def new_context(browser: Browser, viewport: dict) -> BrowserContext:
    context = browser.new_context(
        viewport=viewport, locale="en-GB", timezone_id="Europe/London", service_workers="allow",
        has_touch=viewport == PHONE,
    )
    context.set_default_timeout(TIMEOUT)
    _tell_on_failure(context)
    return context


def _tell_on_failure(context: BrowserContext) -> None:
    """Keep the context's console, page errors and refused requests; if it is closed while a test's exception
    is on its way out (a ``finally`` block), first print them and what each page says on screen, so that a
    failure seen once under load says why (a timeout alone never does)."""
    log: list[str] = []
    context.on("console", lambda m: log.append(f"console.{m.type}: {m.text}"))
    context.on("weberror", lambda e: log.append(f"page error: {e.error}\n{e.error.stack}"))
    context.on("requestfailed", lambda r: log.append(f"request failed: {r.method} {r.url} {r.failure}"))
    context.on("response", lambda r: r.status >= 400 and log.append(f"response {r.status}: {r.request.method} {r.url}"))
    close = context.close

    def close_and_tell(*args: object, **kwargs: object) -> None:
        if sys.exc_info()[0] is not None:
            try:
                for n, page in enumerate(context.pages):
                    screen = page.locator("section.screen:not([hidden])").first.get_attribute("id", timeout=2000)
                    said = [t.strip() for t in page.locator("[role=alert], [role=status]").all_inner_texts()]
                    said = [t for t in said if t]
                    print(f"--- page {n}: {page.url} screen={screen} says={said}", file=sys.stderr)
                    shot(page, f"failure-{id(context):x}-{n}")
            except Exception as error:  # the page may be the thing that broke; say so, then close anyway
                print(f"--- could not read the pages: {error}", file=sys.stderr)
            print("--- context log:\n" + "\n".join(log[-80:]), file=sys.stderr)
        close(*args, **kwargs)  # type: ignore[arg-type]

    context.close = close_and_tell  # type: ignore[method-assign]


def watch(page: Page, problems: list[str]) -> None:
    """Collect console errors and uncaught exceptions (a test ends by asserting there were none)."""
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}\n{e.stack}"))  # where, not only what


def shot(page: Page, name: str) -> None:
    """Two screenshots: what the screen shows, and the whole page."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.screenshot(path=str(ARTIFACTS / f"{name}-full.png"), full_page=True)


def open_app(page: Page, school: LiveSchool) -> None:
    page.goto(f"{school.base}/?school={school.school_code}")
    page.wait_for_selector("html[data-ready=true]")


def sign_in(page: Page, school: LiveSchool, login: str = CONTRIBUTOR) -> None:
    open_app(page, school)
    if page.is_visible("#add-person"):
        page.click("#add-person")
    page.fill("#sign-in-login", login)
    page.fill("#sign-in-password", PASSWORD_FOR_TESTS)
    page.click("#sign-in-submit")
    page.wait_for_selector("#screen-capture:not([hidden])")


def unlock(page: Page) -> None:
    page.click("#people-list button")
    page.fill("#unlock-password", PASSWORD_FOR_TESTS)
    page.click("#unlock-submit")
    page.wait_for_selector("#screen-capture:not([hidden])")


def offline_ready(page: Page) -> None:
    """Wait until a service worker controls the page, which the app signals on <html> (a selector wait, which
    the page's Content-Security-Policy allows; a polled ``wait_for_function`` would need ``eval``)."""
    page.wait_for_selector("html[data-offline=ready]", state="attached")


def pending(page: Page, count: int) -> None:
    page.wait_for_selector(f"#pending-count[data-count='{count}']")


def axe(page: Page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now (axe is evaluated through the
    DevTools protocol, which the page's Content-Security-Policy does not govern)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text("utf-8") + "\n;0")
    found = page.evaluate("""async () => {
      const result = await axe.run(document, {resultTypes: ['violations']});
      return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def layout_problems(page: Page) -> list[str]:
    """Horizontal scrolling, and visible controls smaller than 44 by 44 CSS pixels."""
    problems = []
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        problems.append(f"scrolls sideways: {width[0]} > {width[1]}")
    small = page.evaluate("""() => [...document.querySelectorAll('button, input, select, textarea')]
      .filter(e => e.offsetParent !== null || getComputedStyle(e).position === 'fixed')
      .map(e => {
        const r = e.getBoundingClientRect();
        return [e.id || e.textContent.trim().slice(0, 30), r.width, r.height];
      })
      .filter(([, w, h]) => w > 0 && (w < 44 || h < 44))""")
    problems += [f"small target {name!r}: {w:.0f}x{h:.0f}" for name, w, h in small]
    return problems


def dump_indexeddb(page: Page) -> dict:
    """Every store of the app's database, raw, with byte strings as hex (read beside the app, not through it)."""
    return page.evaluate(DUMP)


DUMP = """async () => {
  const request = (r) => new Promise((ok, no) => { r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  const plain = (v) => v instanceof Uint8Array ? {hex: Array.from(v, b => b.toString(16).padStart(2, '0')).join('')}
    : Array.isArray(v) ? v.map(plain)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) : v;
  const db = await request(indexedDB.open('cairn'));
  const out = {};
  for (const name of db.objectStoreNames) {
    out[name] = plain(await request(db.transaction(name).objectStore(name).getAll()));
  }
  db.close();
  return out;
}"""


def blobs(value: object) -> Iterator[bytes]:
    """Every byte string in a dump."""
    if isinstance(value, dict):
        if set(value) == {"hex"}:
            yield bytes.fromhex(value["hex"])
        else:
            for v in value.values():
                yield from blobs(v)
    elif isinstance(value, list):
        for v in value:
            yield from blobs(v)
