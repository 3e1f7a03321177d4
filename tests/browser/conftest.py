"""Browser tests: the log viewer (GET /ui) in headless Chromium against the API and consumer as `make up`
runs them (stage `browser`, tests/browser/harness.py). Each test makes its own key for sources of its
own, so no test sees another's entries; each page records what the browser said and asked for.

    make browser   (part of make test)
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser import harness


@pytest.fixture(scope="session")
def api() -> Iterator[str]:
    """The stage's API (chalice local) and consumer, started once for the session."""
    with harness.serving() as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = harness.launch(playwright)
        yield launched
        launched.close()


@dataclass
class Viewer:
    """A browser tab on the viewer, with what it logged and which URLs it asked for."""

    page: Page
    context: BrowserContext
    api: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self, key: str | None = None, path: str = "/ui") -> None:
        """Load the page and, if given, paste the key as a user would."""
        self.page.goto(self.api + path)
        if key is not None:
            self.page.fill("#key", key)
            self.page.click("#use-key")

    def messages(self) -> list[str]:
        """The messages of the list's rows, top to bottom."""
        return self.page.locator("#entry-rows tr.entry td.message").all_text_contents()


@pytest.fixture
def viewer(browser: Browser, api: str) -> Iterator[Viewer]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    seen = Viewer(page, context, api)
    page.on("console", lambda message: seen.console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: seen.page_errors.append(str(error)))
    page.on("request", lambda request: seen.requests.append(request.url))
    yield seen
    context.close()


@pytest.fixture
def sources() -> tuple[str, str]:
    """Two source names no other test uses (the test's key is made for their common prefix)."""
    prefix = f"b{uuid.uuid4().hex[:10]}"
    return f"{prefix}-web", f"{prefix}-db"
