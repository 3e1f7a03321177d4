"""GET /logs/tail: what was stored after the cursor, in the order of storage, missing nothing."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from tests.functional.conftest import JSON, body
from tests.functional.test_search import entry, store


def tail(client, **params: str) -> tuple[list[str], str]:
    response = client.http.get(f"/logs/tail?{urlencode(params)}", headers=JSON)
    assert response.status_code == 200, body(response)
    answer = body(response)
    return [e["message"] for e in answer["logs"]], str(answer["next_cursor"])


def test_an_entry_stored_late_with_an_old_timestamp_is_not_skipped(client, consume):
    # GIVEN a follower that has seen what was stored so far (a recent entry)
    store(client, consume, [entry("recent")])
    seen, cursor = tail(client)
    assert seen == ["recent"]
    # WHEN an entry whose timestamp is older than the one seen is stored afterwards
    old = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    store(client, consume, [{**entry("late but old"), "timestamp": old}])
    # THEN the next poll shows it (a tail by timestamp would have skipped it), and then nothing new
    late, cursor = tail(client, cursor=cursor)
    assert late == ["late but old"]
    assert tail(client, cursor=cursor)[0] == []


def test_pages_follow_the_order_of_storage_without_loss_or_repeat(client, consume):
    # GIVEN three batches stored one after another, the later ones with older timestamps
    now = datetime.now(UTC)
    _, cursor = tail(client)
    for n in range(3):
        ts = (now - timedelta(minutes=10 * n)).isoformat()
        store(client, consume, [{**entry(f"b{n}-{i}"), "timestamp": ts} for i in range(4)])
    # WHEN followed three entries at a time
    seen: list[str] = []
    for _ in range(6):
        page, cursor = tail(client, cursor=cursor, limit="3")
        seen += page
    # THEN every entry came once, batch by batch in the order stored
    assert [m.split("-")[0] for m in seen] == ["b0"] * 4 + ["b1"] * 4 + ["b2"] * 4
    assert sorted(seen) == sorted(f"b{n}-{i}" for n in range(3) for i in range(4))


def test_filters_narrow_the_tail_and_its_cursor_still_moves(client, consume):
    # GIVEN a follower, then entries of two levels stored
    _, cursor = tail(client)
    store(client, consume, [entry("an info"), {**entry("an error"), "level": "error"}, entry("timeout here")])
    # THEN filtered by level or q, only the matching entries come, and a poll after them finds nothing
    errors, after = tail(client, cursor=cursor, level="error")
    assert errors == ["an error"]
    assert tail(client, cursor=after, level="error")[0] == []
    assert tail(client, cursor=cursor, q="TIMEOUT")[0] == ["timeout here"]


def test_a_cursor_that_is_not_one_is_refused(client):
    response = client.http.get("/logs/tail?cursor=nonsense", headers=JSON)
    assert response.status_code == 400
