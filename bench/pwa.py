"""PWA benchmarks: ``python -m bench.pwa``. Debian's Chromium (through Playwright) against a real server.

- ``shell_load_ms``: a new page of an installed app, with the network off: from navigation to the app being
  ready (store open, categories read, first screen drawn), everything served by the service worker's cache.
  The median of 5.
- ``seal_to_outbox_ms``: one concern saved from the form: validate, encode, seal and sign the envelope, and
  commit it with the chain state to IndexedDB (the app's own ``cairn:seal-to-outbox`` measure). The median of 5.
- ``sync_500_pending_s``: 500 entries queued offline by the app's own modules, then the network comes back:
  from the ``online`` event to an empty outbox (connect, device proof, puts of 128, acks, deletes).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench._measure import report
from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.pwa._live import PASSWORD_FOR_TESTS, LiveServer
from tests.pwa._pages import PHONE, new_context, offline_ready, pending, sign_in, unlock

QUEUE_500 = """async ([password, count]) => {
  const { openStore } = await import('/js/db.js');
  const { Api } = await import('/js/sync/device.js');
  const { unlock } = await import('/js/app/people.js');
  const { ConcernWriter } = await import('/js/sync/writer.js');
  const store = await openStore();
  const [record] = await store.accounts();
  const session = await unlock(store, new Api(), record, password);
  const categories = (await (await fetch('/categories.json')).json()).categories;
  const writer = new ConcernWriter(session.device, session.outbox, categories);
  const pupil = session.pupils[0].id;
  for (let i = 0; i < count; i++) {
    await writer.create({ kind: 'safeguarding_concern', category: 'neglect', occurred_at: '2026-11-02T12:15',
      observed: `Fictional benchmark entry ${i}: arrived without a coat.`, pupils: [{ pupil, role: 'subject' }] });
  }
  session.wipe();
  store.close();
}"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder, LiveServer(Path(folder)) as school, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = new_context(browser, PHONE)
        page = context.new_page()
        sign_in(page, school)
        offline_ready(page)

        context.set_offline(True)
        loads = []
        for _ in range(5):
            fresh = context.new_page()
            fresh.goto(f"{school.base}/")
            fresh.wait_for_selector("html[data-ready=true]")
            loads.append(fresh.evaluate("performance.getEntriesByName('cairn:ready')[0].startTime"))
            fresh.close()
        report("shell_load_ms", statistics.median(loads), "ms")

        seals = []
        for n in range(5):
            page.fill("#pupil-search", "Ada")
            page.click("#pupil-results button")
            page.fill("#category-search", "neglect")
            page.click("#category-results button")
            page.fill("#observed", f"Fictional benchmark concern {n}: arrived without a coat.")
            page.click("#capture-save")
            page.wait_for_selector("#capture-message.ok")
            seals.append(page.evaluate("performance.getEntriesByName('cairn:seal-to-outbox').at(-1).duration"))
        report("seal_to_outbox_ms", statistics.median(seals), "ms")

        page.click("#switch-person")
        page.evaluate(QUEUE_500, [PASSWORD_FOR_TESTS, 495])
        page.reload()
        page.wait_for_selector("html[data-ready=true]")
        pending(page, 500)
        unlock(page)
        started = time.perf_counter()
        context.set_offline(False)
        page.wait_for_selector("#pending-count[data-count='0']", timeout=600_000)
        report("sync_500_pending_s", time.perf_counter() - started, "s")
        context.close()
        browser.close()


if __name__ == "__main__":
    main()
