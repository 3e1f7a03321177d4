"""The log viewer in a real browser: what a person pasting a read key sees, and what the page may
load. Entries are posted through the API and stored by the running consumer, as under `make up`."""

import json
import re
import urllib.parse
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Locator, Route, expect

from chalicelib.web.viewer import CONTENT_SECURITY_POLICY
from tests.browser.conftest import Viewer
from tests.browser.harness import call, make_key, post, rfc3339, wait_stored

FOLLOW_WAIT_MS = 60_000  # a deadline well past the 2 s poll and the consumer's 1 s window: no timing is asserted


def minute_start(minutes_ago: int) -> datetime:
    """The start of a whole minute `minutes_ago` minutes before this one (so entries fall in known buckets)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=minutes_ago)


def six_entries(web: str, db: str) -> list[dict[str, Any]]:
    """Entries each filter selects a known part of, oldest first, in four minute-buckets (two hold two:
    one of two levels, one of two errors)."""
    rows = [
        (web, "info", "GET /items/lamp 200", {"user": "ada", "status": 200}, minute_start(9) + timedelta(seconds=5)),
        (web, "error", "GET /items/lamp timeout after 30s", {"user": "bob"}, minute_start(9) + timedelta(seconds=40)),
        (db, "warning", "slow query: 2.1 s", {"user": "ada"}, minute_start(6) + timedelta(seconds=10)),
        (db, "critical", "upstream Timeout", {}, minute_start(4) + timedelta(seconds=20)),
        (web, "error", "time out of range", {"user": "carol"}, minute_start(2) + timedelta(seconds=30)),
        (web, "error", "disk full", {"user": "ada", "path": "/var"}, minute_start(2) + timedelta(seconds=50)),
    ]
    return [
        {"source": s, "level": level, "message": m, "attributes": a, "timestamp": rfc3339(t)}
        for s, level, m, a, t in rows
    ]


def newest_first(entries: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in sorted(entries, key=lambda e: e["timestamp"], reverse=True)]


@pytest.fixture
def stored(api: str, sources: tuple[str, str]) -> tuple[str, list[dict[str, Any]]]:
    """A key for the test's two sources, and the six entries posted with it and stored."""
    web, db = sources
    key = make_key(api, [f"{web.split('-')[0]}-*"])
    entries = six_entries(web, db)
    ids = post(api, key, entries)
    wait_stored(api, key, ids)
    return key, [{**entry, "id": id_} for entry, id_ in zip(entries, ids, strict=True)]


def test_the_page_shows_the_entries_posted_and_opens_one(viewer: Viewer, stored):
    """GIVEN six entries stored with a key
    WHEN the page is opened and the key pasted
    THEN the list shows exactly those entries, newest first, with time, level and source; and
    clicking one opens its attributes and ids."""
    key, entries = stored
    viewer.open(key)
    expect(viewer.page.locator("#entry-rows tr.entry")).to_have_count(6)
    assert viewer.messages() == newest_first(entries)
    newest = max(entries, key=lambda e: e["timestamp"])
    row = viewer.page.locator(f'#entry-rows tr.entry[data-id="{newest["id"]}"]')
    expect(row.locator("td.level")).to_have_text(newest["level"])
    expect(row.locator("td.source")).to_have_text(newest["source"])
    expect(row.locator("td.time")).to_have_text(newest["timestamp"].replace("T", " ")[:23])
    row.click()
    detail = viewer.page.locator(f'#entry-rows tr.detail[data-id="{newest["id"]}"]')
    expect(detail).to_be_visible()
    assert json.loads(detail.locator("pre.attributes").text_content() or "") == newest["attributes"]
    expect(detail.locator("dd").first).to_have_text(newest["id"])
    expect(detail).to_contain_text("key_")  # the key that wrote it


def stats(api: str, key: str, params: dict[str, str]) -> dict[str, Any]:
    status, answer = call("GET", f"{api}/logs/stats?{urllib.parse.urlencode(params)}", key)
    assert status == 200, answer
    return dict(answer)


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {level: n for level, n in counts.items() if n}


def drawn(bar: Locator) -> dict[str, int]:
    """The counts a bar shows: one stacked part per level, with its count."""
    parts = bar.locator("rect.bar").all()
    return {str(part.get_attribute("data-level")): int(part.get_attribute("data-count") or 0) for part in parts}


def test_the_histogram_counts_equal_the_apis_and_a_bar_narrows_the_list(api: str, viewer: Viewer, stored):
    """GIVEN six entries stored in four minute-buckets
    WHEN the page draws its histogram of the last hour
    THEN each bar's counts are GET /logs/stats's for the same range and interval, the levels add up
    to what was posted, and clicking a bar lists exactly the entries of its minute."""
    key, entries = stored
    viewer.open(key)
    chart = viewer.page.locator("#histogram")
    expect(chart.locator("g.bucket").first).to_be_attached()
    shown = {bar.get_attribute("data-start"): drawn(bar) for bar in chart.locator("g.bucket").all()}
    asked = {name: chart.get_attribute(f"data-{name}") or "" for name in ("since", "until", "interval")}
    answer = stats(api, key, {**asked, "by": "level"})
    assert asked["interval"] == "1m"
    assert shown == {bucket["start"]: nonzero(bucket["counts"]) for bucket in answer["buckets"]}
    heights_per_entry = {
        round(float(part.get_attribute("height") or 0) / int(part.get_attribute("data-count") or 0), 6)
        for part in chart.locator("rect.bar").all()
    }
    assert len(heights_per_entry) == 1, heights_per_entry  # every part's height is in proportion to its count
    by_level: Counter[str] = Counter()
    for counts in shown.values():
        by_level.update(counts)
    assert by_level == Counter(e["level"] for e in entries)
    for level, count in by_level.items():
        expect(viewer.page.locator(f'#histogram-legend [data-level="{level}"]')).to_have_attribute(
            "data-count", str(count)
        )
    # the minute the first two entries share: its bar narrows the list to them
    shared = datetime.fromisoformat(entries[0]["timestamp"]).replace(second=0, microsecond=0)
    bar = next(b for b in chart.locator("g.bucket").all() if _same_instant(b.get_attribute("data-start"), shared))
    bar.click()
    expect(viewer.page.locator("#range")).to_have_value("custom")
    expected = [e for e in entries if shared <= datetime.fromisoformat(e["timestamp"]) < shared + timedelta(minutes=1)]
    assert len(expected) == 2
    expect(viewer.page.locator("#entry-rows tr.entry td.message")).to_have_text(newest_first(expected))


def _same_instant(text: str | None, moment: datetime) -> bool:
    return text is not None and datetime.fromisoformat(text.replace("Z", "+00:00")) == moment


def apply_source(viewer: Viewer, value: str) -> None:
    viewer.page.fill("#source", value)
    viewer.page.press("#source", "Enter")


def apply_level(viewer: Viewer, value: str) -> None:
    viewer.page.select_option("#level", value)


def apply_q(viewer: Viewer, value: str) -> None:
    viewer.page.fill("#q", value)
    viewer.page.press("#q", "Enter")


def apply_attribute(viewer: Viewer, value: str) -> None:
    name, _, wanted = value.partition("=")
    viewer.page.click("#add-attribute")
    row = viewer.page.locator("#attribute-rows .attribute").last
    row.locator("input").nth(0).fill(name)
    row.locator("input").nth(1).fill(wanted)
    viewer.page.click("#search")


FILTERS = {
    "source": (apply_source, lambda e, web, db: e["source"] == db, "{db}"),
    "level": (apply_level, lambda e, web, db: e["level"] == "error", "error"),
    "q": (apply_q, lambda e, web, db: "timeout" in e["message"].lower(), "TIMEOUT"),
    "attribute": (apply_attribute, lambda e, web, db: e["attributes"].get("user") == "ada", "user=ada"),
}


@pytest.mark.parametrize("name", FILTERS)
def test_each_filter_narrows_the_list_to_exactly_its_entries(viewer: Viewer, stored, sources, name):
    """GIVEN the six entries listed
    WHEN one filter is set (source, level, message words, or an attribute)
    THEN the list holds exactly the entries that filter selects, newest first."""
    key, entries = stored
    web, db = sources
    apply, selects, value = FILTERS[name]
    viewer.open(key)
    expect(viewer.page.locator("#entry-rows tr.entry")).to_have_count(6)
    apply(viewer, value.format(db=db))
    expected = newest_first([e for e in entries if selects(e, web, db)])
    assert 2 <= len(expected) < 6  # the filter must leave some out and keep more than one
    expect(viewer.page.locator("#entry-rows tr.entry td.message")).to_have_text(expected)


def test_a_search_past_the_longest_span_is_refused_in_words(viewer: Viewer, stored):
    """GIVEN the six entries listed
    WHEN the message is searched over a custom range of three days (past SEARCH_MAX_SPAN_S)
    THEN the page shows the API's 400 in words and lists nothing, where the last hour found them."""
    key, _ = stored
    viewer.open(key)
    expect(viewer.page.locator("#entry-rows tr.entry")).to_have_count(6)
    viewer.page.select_option("#range", "custom")
    viewer.page.fill("#since", rfc3339(datetime.now(UTC) - timedelta(days=3)))
    apply_q(viewer, "timeout")
    expect(viewer.page.locator("#error")).to_contain_text("The API refused this search: ")
    expect(viewer.page.locator("#entry-rows tr")).to_have_count(0)


def test_follow_mode_shows_new_entries_within_the_bound_late_ones_too(api: str, viewer: Viewer, stored):
    """GIVEN the page following, the six entries listed
    WHEN an entry is posted now, and another whose timestamp is older than every entry shown
    THEN both appear in the list without a reload, each once, the late one in its place in time."""
    key, entries = stored
    web = entries[0]["source"]
    viewer.open(key)
    expect(viewer.page.locator("#entry-rows tr.entry")).to_have_count(6)
    viewer.page.check("#follow")
    now = datetime.now(UTC)
    fresh = {"source": web, "level": "info", "message": "arrived just now", "timestamp": rfc3339(now)}
    half_an_hour_ago = rfc3339(now - timedelta(minutes=30))
    late = {"source": web, "level": "warning", "message": "arrived late", "timestamp": half_an_hour_ago}
    fresh_id, late_id = post(api, key, [fresh, late])
    for entry_id in (fresh_id, late_id):
        viewer.page.wait_for_selector(f'#entry-rows tr.entry[data-id="{entry_id}"]', timeout=FOLLOW_WAIT_MS)
    messages = viewer.messages()
    assert messages[0] == "arrived just now" and messages[-1] == "arrived late", messages
    assert len(messages) == len(set(messages)) == 8


def test_a_wrong_key_is_refused_in_words(viewer: Viewer, stored):
    """GIVEN entries stored
    WHEN a key the API does not know is pasted
    THEN the page says the key is not valid and lists nothing."""
    viewer.open("slk_" + "x" * 43)
    expect(viewer.page.locator("#error")).to_be_visible()
    expect(viewer.page.locator("#error")).to_contain_text("This key is not valid")
    expect(viewer.page.locator("#entry-rows tr")).to_have_count(0)


def test_a_rate_limited_key_is_told_how_long_to_wait(api: str, viewer: Viewer, sources):
    """GIVEN a key allowed one request at a time (rate 1/s, burst 1)
    WHEN the page asks for the list and the chart at once
    THEN one is refused 429 and the page says to retry in the seconds of its Retry-After."""
    web, _ = sources
    key = make_key(api, [web], rate_per_s=1, burst=1)
    viewer.open(key)
    expect(viewer.page.locator("#error")).to_have_text(re.compile(r"^Rate limited, retry in \d+ s\.$"))


def test_the_key_is_kept_in_this_tab_only_and_forgotten_on_request(viewer: Viewer, stored):
    """GIVEN a key pasted into the page
    WHEN the tab reloads, another tab opens, and the user forgets the key
    THEN the key is in this tab's sessionStorage only (no localStorage, no cookie, not in the page),
    survives the reload, is not in the other tab, and is gone, with the entries, once forgotten."""
    key, _ = stored
    viewer.open(key)
    expect(viewer.page.locator("#entry-rows tr.entry")).to_have_count(6)
    where = "() => [Object.values(sessionStorage), localStorage.length, document.cookie, document.body.innerHTML]"
    session, local_items, cookie, html = viewer.page.evaluate(where)
    assert session == [key] and local_items == 0 and cookie == "" and key not in html
    viewer.page.reload()
    expect(viewer.page.locator("#entry-rows tr.entry")).to_have_count(6)
    other = viewer.context.new_page()
    other.goto(viewer.api + "/ui")
    assert other.evaluate("() => sessionStorage.length") == 0
    viewer.page.click("#forget-key")
    expect(viewer.page.locator("#entry-rows tr")).to_have_count(0)
    assert viewer.page.evaluate("() => sessionStorage.length") == 0


def served(url: str) -> tuple[int, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, {name.lower(): value for name, value in response.headers.items()}


def test_the_page_is_strict_about_what_it_loads_and_says_nothing_wrong(api: str, viewer: Viewer, stored):
    """GIVEN the page and its two files, served by the API
    WHEN they are fetched, and the page is used with a valid key (list, chart, an entry opened)
    THEN each answer has the strict CSP, nosniff and its content type; the browser logged no error
    and asked nothing of any other origin."""
    for path, media in (("/ui", "text/html"), ("/ui/viewer.js", "text/javascript"), ("/ui/viewer.css", "text/css")):
        status, headers = served(api + path)
        assert status == 200
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-type"].split(";")[0] == media
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY
    key, _ = stored
    viewer.open(key)
    expect(viewer.page.locator("#entry-rows tr.entry")).to_have_count(6)
    expect(viewer.page.locator("#histogram g.bucket").first).to_be_attached()
    viewer.page.locator("#entry-rows tr.entry").first.click()
    expect(viewer.page.locator("#entry-rows tr.detail")).to_be_visible()
    assert viewer.console_errors == [] and viewer.page_errors == []
    assert viewer.requests and all(url.startswith(api + "/") for url in viewer.requests), viewer.requests
    assert viewer.page.locator("#error").is_hidden()


STAGE_PATH = "/_aws/execute-api/abc123def4/api"  # where LocalStack (and API Gateway's stage) serves the API


def test_the_page_works_under_a_stage_base_path(api: str, viewer: Viewer, stored):
    """GIVEN the API reachable only under a stage's base path (as through LocalStack's API Gateway),
    imitated by forwarding <api><stage path>/<path> to <api>/<path>
    WHEN the page is opened at <stage path>/ui
    THEN it loads its files and the entries through that path, never from the host's root."""
    key, _ = stored

    def forward(route: Route) -> None:
        parts = urllib.parse.urlsplit(route.request.url)
        if not parts.path.startswith(STAGE_PATH + "/"):
            route.fulfill(status=404, body="not under the stage path")
            return
        inner = parts._replace(path=parts.path.removeprefix(STAGE_PATH))
        route.fulfill(response=route.fetch(url=urllib.parse.urlunsplit(inner)))

    viewer.context.route(f"{api}/**", forward)
    viewer.open(key, path=f"{STAGE_PATH}/ui")
    expect(viewer.page.locator("#entry-rows tr.entry")).to_have_count(6)
    assert all(urllib.parse.urlsplit(url).path.startswith(STAGE_PATH + "/") for url in viewer.requests)
