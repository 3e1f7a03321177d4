"""Write docs/viewer.png: the log viewer with an hour of realistic entries, as the README shows it.

    .venv/bin/python -m tests.browser.screenshot   (the services running: .venv/bin/python -m tools.devstack up)

It empties the `browser` stage's tables first (the browser tests' stage; their keys stay), so
run it while those tests are not running.
"""

import random
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import sync_playwright

from tests.browser import harness
from tools.admin import admin_connection
from tools.ops.reset import empty_tables
from tools.stage import ROOT, stage_settings

OUT = ROOT / "docs" / "viewer.png"
ROUTES = ("/items/lamp", "/items/desk", "/items", "/cart", "/checkout", "/health")


def an_hour_of_entries(now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """About 400 entries over the last hour from four sources, with a burst of errors 20 minutes ago."""
    entries = []
    for n in range(420):
        in_burst = n >= 340  # the last 80: a few minutes of trouble
        ago_s = rng.uniform(18 * 60, 22 * 60) if in_burst else rng.uniform(20, 3590)
        at = now - timedelta(seconds=ago_s)
        source = rng.choice(("web-1", "web-1", "web-2", "web-2", "billing", "worker"))
        level = rng.choices(
            ("debug", "info", "warning", "error", "critical"),
            weights=(1, 12, 2, 12 if in_burst else 0.6, 1 if in_burst else 0.05),
        )[0]
        route = rng.choice(ROUTES)
        ms = int(rng.lognormvariate(3, 0.8))
        status = {"debug": 200, "info": 200, "warning": 429, "error": 503, "critical": 500}[level]
        message = {
            "debug": f"cache hit {route}",
            "info": f"GET {route} {status} {ms}ms",
            "warning": f"GET {route} {status} rate limited (retry in 1 s)",
            "error": f"POST {route} {status} upstream timeout after 30s",
            "critical": "payment provider unreachable: connection reset by peer",
        }[level]
        attributes = {"route": route, "status": status, "ms": ms, "request_id": f"req-{rng.getrandbits(40):010x}"}
        entry = {"source": source, "level": level, "message": message, "attributes": attributes}
        entries.append({**entry, "timestamp": harness.rfc3339(at)})
    return entries


def main() -> int:
    settings = stage_settings(harness.STAGE)
    with harness.serving() as api:
        with admin_connection(settings.mysql.database, settings=settings) as conn:
            empty_tables(conn)
        key = harness.make_key(api, ["*"], rate_per_s=5000, burst=10000)
        ids = harness.post(api, key, an_hour_of_entries(datetime.now(UTC), random.Random(23)))
        harness.wait_stored(api, key, ids[-1:])
        harness.wait_stored(api, key, ids)
        with sync_playwright() as playwright:
            browser = harness.launch(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"{api}/ui")
            page.fill("#key", key)
            page.click("#use-key")
            page.locator("#histogram g.bucket").first.wait_for(state="attached")
            page.locator("#entry-rows tr.level-error").first.click()
            page.locator("#entry-rows tr.detail").wait_for()
            page.screenshot(path=str(OUT))
            browser.close()
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
