"""Search in GET /logs (`q`, `attr.<name>`): what matches, hostile values taken literally, and the
time range every search is held to."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.logs.search import ATTR_VALUE_MAX_CHARS, Q_MAX_CHARS
from tests.functional.conftest import JSON, SETTINGS, body
from tests.functional.test_keys import make_key, with_key


def store(client, consume, entries: list[dict[str, Any]]) -> list[str]:
    """Post the entries as one batch, run the consumer; their ids."""
    response = client.http.post("/logs/batch", headers=JSON, body=json.dumps({"logs": entries}))
    assert response.status_code == 202, body(response)
    assert consume()["stored"] == len(entries)
    return list(body(response)["ids"])


def found(client, params: dict[str, str], headers: dict[str, str] = JSON) -> list[str]:
    """The messages GET /logs answers for the parameters, newest first."""
    response = client.http.get(f"/logs?{urlencode(params)}", headers=headers)
    assert response.status_code == 200, body(response)
    return [entry["message"] for entry in body(response)["logs"]]


def entry(message: str, **attributes: Any) -> dict[str, Any]:
    return {"level": "info", "source": "web-1", "message": message, "attributes": attributes}


def test_q_finds_every_word_in_any_case_and_quoted_phrases_as_written(client, consume):
    # GIVEN entries whose messages share some words
    store(
        client,
        consume,
        [
            entry("Upstream TIMEOUT after 30s"),
            entry("disk full on /var"),
            entry("full disk on /tmp"),
            entry("timeout talking to the disk"),
        ],
    )
    # WHEN searched THEN each word must appear (as a substring, any case), a phrase as written
    assert sorted(found(client, {"q": "timeout"})) == ["Upstream TIMEOUT after 30s", "timeout talking to the disk"]
    assert found(client, {"q": "time DISK"}) == ["timeout talking to the disk"]
    assert found(client, {"q": '"disk full"'}) == ["disk full on /var"]
    assert sorted(found(client, {"q": "disk full"})) == ["disk full on /var", "full disk on /tmp"]
    assert found(client, {"q": "nowhere"}) == []


@pytest.mark.parametrize(
    "needle",
    ["100%", "a_b", "back\\slash", "it's", 'say "hi"', "🦀 crab", "!bang", "%", "_", "\\"],
    ids=["percent", "underscore", "backslash", "quote", "double-quotes", "4-byte", "escape-char", "%", "_", "\\"],
)
def test_hostile_values_in_q_match_literally(client, consume, needle):
    # GIVEN one entry that contains the hostile text and others that a pattern reading of it would match
    decoys = ["100 percent", "axb", "backslash", "its", "say hi", "crab", "bang", "plain", "plain2", "plain3"]
    store(client, consume, [entry(f"x {needle} y"), *(entry(d) for d in decoys)])
    # WHEN q is the hostile text as a phrase (a quote and a backslash escaped) THEN only that entry matches
    q = '"' + needle.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert found(client, {"q": q}) == [f"x {needle} y"]


def test_the_longest_q_is_taken_and_a_longer_one_refused(client, consume):
    # GIVEN an entry whose message is the longest q itself (one word)
    word = "w" * Q_MAX_CHARS
    store(client, consume, [entry(word)])
    # THEN it is found; one character more is a 400 naming q
    assert found(client, {"q": word}) == [word]
    response = client.http.get(f"/logs?{urlencode({'q': word + 'w'})}", headers=JSON)
    assert response.status_code == 400
    assert body(response)["error"]["details"][0]["field"] == "q"


def test_attr_filters_match_strings_numbers_and_booleans_as_written(client, consume):
    # GIVEN entries with top-level attributes of each kind, and a nested one
    store(
        client,
        consume,
        [
            entry("number", status=500, route="/a"),
            entry("string", status="500", route="/b"),
            entry("other", status=200, route="/a"),
            entry("bool", ok=True),
            entry("nested", http={"status": 500}),
            entry("dotted", **{"http.status_code": 404}),
        ],
    )
    # THEN equality is on the value as written, for strings, numbers and booleans alike
    assert sorted(found(client, {"attr.status": "500"})) == ["number", "string"]
    assert found(client, {"attr.status": "500", "attr.route": "/a"}) == ["number"]
    assert found(client, {"attr.ok": "true"}) == ["bool"]
    assert found(client, {"attr.http.status_code": "404"}) == ["dotted"]
    # AND an object is never equal to a text, nor is an absent attribute
    assert found(client, {"attr.http": '{"status": 500}'}) == []
    assert found(client, {"attr.missing": ""}) == []


@pytest.mark.parametrize("value", ["' OR '1'='1", "%", "a\\b", "🦀", "x" * ATTR_VALUE_MAX_CHARS])
def test_hostile_attribute_values_match_literally(client, consume, value):
    # GIVEN an entry whose attribute holds the hostile value, and one whose does not
    store(client, consume, [entry("it", tag=value), entry("not", tag="other")])
    # THEN only the entry with exactly that value matches
    assert found(client, {"attr.tag": value}) == ["it"]


@pytest.mark.parametrize("name", ["a b", 'a"b', "a\\b", "", "x" * 129, "$.a", "a[0]"])
def test_an_attribute_name_outside_the_allowed_characters_is_refused(client, name):
    # WHEN an attribute filter names something that is not a plain key THEN 400 naming it
    response = client.http.get(f"/logs?{urlencode({f'attr.{name}': 'v'})}", headers=JSON)
    assert response.status_code == 400
    assert body(response)["error"]["details"][0]["field"] == f"attr.{name}"


def test_a_search_looks_back_the_default_span_and_refuses_a_longer_range(client, consume):
    # GIVEN an entry of two hours ago and one of now, both with the word
    now = datetime.now(UTC)
    old = (now - timedelta(hours=2)).isoformat()
    store(client, consume, [{**entry("needle old"), "timestamp": old}, entry("needle new")])
    # WHEN searched without since THEN only the default span (the last hour) is searched
    assert found(client, {"q": "needle"}) == ["needle new"]
    # AND with since, the older one too
    since = (now - timedelta(hours=3)).isoformat()
    assert found(client, {"q": "needle", "since": since}) == ["needle new", "needle old"]
    # AND a range longer than SEARCH_MAX_SPAN_S is refused, naming since
    too_long = (now - timedelta(seconds=SETTINGS.search_max_span_s + 60)).isoformat()
    response = client.http.get(f"/logs?{urlencode({'q': 'needle', 'since': too_long})}", headers=JSON)
    assert response.status_code == 400
    assert body(response)["error"]["details"][0]["field"] == "since"


def test_a_search_sees_only_the_keys_sources(client, consume, admin_headers):
    # GIVEN entries of two sources, and a read key for one of them
    store(client, consume, [entry("needle web"), {**entry("needle billing"), "source": "billing"}])
    key = make_key(client, admin_headers, scopes=["logs:read"], sources=["billing"])["key"]
    # THEN its search finds only its source's entries
    assert found(client, {"q": "needle"}, with_key(key)) == ["needle billing"]
