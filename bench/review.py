"""The review side's benchmark: ``python -m bench.review``. A DSL's browser (Debian's Chromium through
Playwright, against a real server) holding 20,000 concerns, after unlock.

A fictional school of 420 pupils in 14 classes; a lunchtime supervisor's Python device writes the concerns
(``--concerns N``, default 20,000: mixed categories, a few alert-flagged) and sends them; the DSL signs in
on the browser, whose Casebook pulls, opens and keeps them sealed. Then the DSL locks and unlocks again:

- ``inbox_open_ms``: from the end of unlock (the keys derived; the app's ``cairn:casebook-load`` mark, just
  before the Casebook opens its sealed index) to the inbox's first rows (``#inbox-list [data-concern]``)
  visible, "Inbox" pressed (in the page) as soon as the Casebook is open and counted. Timed in the page.
- ``chronology_open_ms``: on a concern's page, from the click on a pupil's chronology to its entries
  (``#chronology-list [data-entry]``) in the page; a pupil holds about 48 entries (20,000 over 420).
- ``unlock_to_inbox_ms``: the same as a person sees it, wall clock from pressing Unlock to the inbox rows,
  including Argon2id (slow on purpose) and the harness's own round trips.
- ``pull_20000_s``: how long the first pull took (open, fold and seal 20,000 envelopes), for reference.

Every name and note is fictional.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import httpx

from bench._measure import report
from sync.device import ROSTER_STAFF
from sync.writer import ConcernWriter
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.pwa._live import CONTRIBUTOR, PASSWORD_FOR_TESTS, LiveSchool, LiveServer
from tests.pwa._pages import PHONE, new_context
from tests.pwa._review import sign_in_reader
from tests.server.harness import build_school, running_server

CLASSES = tuple(f"{year}{tree}" for year in range(1, 8) for tree in ("oak", "ash"))  # 14 classes
PUPILS_PER_CLASS = 30
FIRST = ["Ada", "Bilal", "Cora", "Dev", "Elsie", "Finn", "Gia", "Hal", "Iona", "Jude", "Kit", "Lena", "Milo", "Nia"]
LAST = ["Fernsby", "Hartwell", "Linnet", "Marrow", "Quillon", "Ostrander", "Pell", "Rook", "Sallow", "Thorne"]
CATEGORIES = ["neglect", "bullying", "cyberbullying", "physical_abuse", "emotional_abuse", "sexual_harassment"]
KINDS = ["safeguarding_concern", "behaviour_incident", "parental_contact", "general_note"]
WORDS = (
    "arrived late without a coat said the heating was off again seemed tired and hungry at lunch was "
    "upset after break told a lunchtime supervisor about an argument at home sat alone in the playground"
).split()


class ReviewSchool(LiveServer):
    """The live school, larger: 420 pupils with fictional names on the staff roster."""

    async def _start(self) -> LiveSchool:
        import contextlib

        self._stack = contextlib.AsyncExitStack()
        running = await self._stack.enter_async_context(running_server(f"sqlite+aiosqlite:///{self.folder}/cairn.db"))
        http = await self._stack.enter_async_context(httpx.AsyncClient(base_url=running.base, timeout=120))
        school = await build_school(running, http, self.folder, pupils_per_class=PUPILS_PER_CLASS, classes=CLASSES)
        dsl = school.dsl.device
        await dsl.found_groups((ROSTER_STAFF,))
        await dsl.refresh()
        contributor = await school.invite(CONTRIBUTOR, ["contributor"])
        staff_key, version, _ = dsl.group_key(ROSTER_STAFF)
        await dsl.grant([(staff_key, version, contributor.device.user_id, contributor.device.identity.box.public)])
        await contributor.device.refresh()
        rng = random.Random(6)
        pupils: dict[str, bytes] = {}
        entries = []
        for label in CLASSES:
            for pupil in school.classes[label]:
                name = f"{rng.choice(FIRST)} {rng.choice(LAST)}-{len(pupils) + 1}"
                pupils[name] = pupil
                entries.append((pupil, ROSTER_STAFF, json.dumps({"name": name, "class": label}).encode()))
        await dsl.publish_roster(entries)
        return LiveSchool(running, school, contributor, pupils)


async def _write(school: LiveSchool, count: int) -> None:
    """The contributor's Python device writes ``count`` concerns and sends them."""
    rng = random.Random(20000)
    member = school.contributor
    writer = ConcernWriter(member.device, member.outbox)
    pupils = list(school.pupils.values())
    client = member.client or await member.connect(school.running)
    for n in range(count):
        day = 1 + n * 730 // count
        record = {
            "kind": rng.choice(KINDS),
            "category": rng.choice(CATEGORIES),
            "occurred_at": time.strftime(
                "%Y-%m-%dT%H:%M", time.gmtime(1_730_000_000 + day * 86400 + rng.randrange(30000))
            ),
            "observed": f"Fictional entry {n}: " + " ".join(rng.choice(WORDS) for _ in range(30)) + ".",
            "pupils": [{"pupil": rng.choice(pupils).hex(), "role": "subject"}],
        }
        if rng.random() < 0.02:
            record["urgent"] = True
        writer.create(record)
        if n % 2000 == 1999:
            await client.flush()
    await client.flush()


ROWS_AT = """([list, item]) => new Promise((resolve) => {
  const found = () => {
    const row = document.querySelector(`${list} ${item}`);
    return row && row.offsetParent !== null;
  };
  if (found()) { resolve(performance.now()); return; }
  const observer = new MutationObserver(() => {
    if (found()) { observer.disconnect(); resolve(performance.now()); }
  });
  observer.observe(document.body, { childList: true, subtree: true, attributes: true, attributeFilter: ['hidden'] });
})"""

OPEN_WHEN_COUNTED = """(count) => {
  const badge = document.getElementById('unread-count');
  const observer = new MutationObserver(() => {
    if (badge.dataset.count === String(count)) { observer.disconnect(); document.getElementById('nav-inbox').click(); }
  });
  observer.observe(badge, { attributes: true });
}"""

CLICK_AT = """(selector) => new Promise((resolve) => {
  addEventListener('click', (e) => { if (e.target.closest(selector)) resolve(performance.now()); },
    { capture: true, once: true });
})"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(prog="python -m bench.review", description=__doc__.split("\n")[0])
    parser.add_argument("--concerns", type=int, default=20_000)
    args = parser.parse_args()
    count = args.concerns

    with tempfile.TemporaryDirectory() as folder, sync_playwright() as pw:
        server = ReviewSchool(Path(folder))
        with server as school:
            server.run(_write(school, count), timeout=3600)
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = new_context(browser, PHONE)
            page = context.new_page()
            started = time.perf_counter()
            sign_in_reader(page, server, school, "dsl")
            page.wait_for_selector(f"#unread-count[data-count='{count}']", state="attached", timeout=3_600_000)
            report(f"pull_{count}_s", time.perf_counter() - started, "s")

            page.click("#lock-now")  # straight to this person's unlock screen
            page.fill("#unlock-password", PASSWORD_FOR_TESTS)
            page.evaluate(f"() => {{ window.__rowsP = ({ROWS_AT})(['#inbox-list', '[data-concern]']); }}")
            page.evaluate(OPEN_WHEN_COUNTED, count)
            pressed = time.perf_counter()
            page.click("#unlock-submit")
            rows = page.evaluate("() => window.__rowsP")
            page.wait_for_selector("#inbox-list [data-concern]")
            seen = time.perf_counter()
            loaded = page.evaluate("performance.getEntriesByName('cairn:casebook-load').at(-1).startTime")
            assert rows > loaded, "the inbox kept its rows across a lock"
            report("inbox_open_ms", rows - loaded, "ms")
            report("unlock_to_inbox_ms", (seen - pressed) * 1000, "ms")

            page.click("#inbox-list [data-concern] button")
            page.wait_for_selector("[data-chronology]")
            page.evaluate(
                f"() => {{ window.__clickP = ({CLICK_AT})('[data-chronology]'); "
                f"window.__rowsP = ({ROWS_AT})(['#chronology-list', '[data-entry]']); }}"
            )
            page.click("[data-chronology]")
            clicked = page.evaluate("() => window.__clickP")
            rows = page.evaluate("() => window.__rowsP")
            entries = page.locator("#chronology-list [data-entry]").count()
            assert rows > clicked, "the chronology was drawn before it was asked for"
            report("chronology_open_ms", rows - clicked, "ms")
            report("chronology_entries", entries, "entries")
            context.close()
            browser.close()


if __name__ == "__main__":
    main()
