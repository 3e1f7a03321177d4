"""Nobody can starve the API: a request is refused before its body is read, anonymous routes are
limited per client address (an IPv6 client by its /64), key lookups are capped across addresses
and have read slots of their own. The app through chalice.test.Client (every caller is 127.0.0.1)
or its own wiring, against the real MariaDB, Redis and SQS."""

import json
import math
import uuid
from typing import Any

import pytest

from chalicelib import validation, wiring
from chalicelib.errors import BudgetExhaustedError, RateLimitedError, UnauthorizedError
from chalicelib.keys.model import SCOPE_WRITE, token_hash
from chalicelib.web import http
from tests.functional.conftest import JSON, SETTINGS, body, closed_port, queue_depth
from tests.functional.test_keys import api_user, make_key, with_key
from tests.support.mysql import Statements
from tests.support.waiting import wait_for

ENTRY = {"level": "info", "source": "web-1", "message": "hello"}
NO_REFILL = 2**-12  # one unit per 68 minutes: no test step can refill a bucket (GCRA takes any positive rate)


def made_up_token() -> str:
    return "slk_" + uuid.uuid4().hex * 2


class ParseCount:
    """How many request bodies the app parsed as JSON (a spy on the one parser every route uses)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = validation.parse_json

        def counted(raw: bytes) -> Any:
            self.calls += 1
            return real(raw)

        monkeypatch.setattr(http, "parse_json", counted)


def test_a_made_up_key_is_refused_before_its_body_is_read(client, sqs, queue_urls, monkeypatch, override_settings):
    # GIVEN failed attempts that do not refill during the test, and a 4 MiB batch body that is not valid
    override_settings(auth_failure_rate_per_s=NO_REFILL)
    parsed = ParseCount(monkeypatch)
    invalid = json.dumps({"logs": [{"level": "loud", "source": "?", "message": "x" * 100}] * 30_000})
    assert 4 * 2**20 <= len(invalid) <= SETTINGS.max_batch_body_bytes
    # WHEN one address posts it with made-up keys, more times than its failure burst
    answers = [
        client.http.post("/logs/batch", headers=with_key(made_up_token()), body=invalid)
        for _ in range(SETTINGS.auth_failure_burst + 3)
    ]
    # THEN the burst's worth are 401 and the rest 429, none a 400: no body was parsed, nothing queued
    statuses = [a.status_code for a in answers]
    assert statuses == [401] * SETTINGS.auth_failure_burst + [429] * 3
    assert answers[-1].headers["RateLimit-Policy"].startswith('"address";')
    assert parsed.calls == 0
    assert queue_depth(sqs, queue_urls) == 0


def test_a_key_pays_a_unit_for_a_body_it_sends_invalid(client, admin_headers, monkeypatch):
    # GIVEN a key of 1 entry/s with a burst of 100
    key = with_key(make_key(client, admin_headers, rate_per_s=1, burst=100)["key"])
    parsed = ParseCount(monkeypatch)
    # WHEN it sends 50 bodies that are not valid entries
    invalid = [client.http.post("/logs", headers=key, body=json.dumps({"level": "loud"})) for _ in range(50)]
    assert {a.status_code for a in invalid} == {400}
    assert parsed.calls == 50
    # THEN each was charged before its body was read: a valid entry then finds the bucket short of
    # those 50 units, less what refilled meanwhile (under 25 unless the 51 requests took 25 s)
    after = client.http.post("/logs", headers=key, body=json.dumps(ENTRY))
    assert after.status_code == 202
    remaining = int(after.headers["RateLimit"].split(";r=")[1].split(";")[0])
    assert remaining < 100 - 1 - 25, after.headers["RateLimit"]


def test_anonymous_requests_are_limited_per_client_address(client, monkeypatch, override_settings):
    # GIVEN anonymous requests with a burst of 5 per address that does not refill during the test
    override_settings(public_burst=5, public_rate_per_s=NO_REFILL)
    statements = Statements(monkeypatch, api_user())
    # WHEN one address reads random items, the item list, /health and the description
    paths = [f"/items/{uuid.uuid4().hex}" for _ in range(4)] + ["/items", "/health", "/openapi.json"]
    answers = [client.http.get(path) for path in paths]
    # THEN the first five are answered and the rest refused, with when to come back
    assert [a.status_code for a in answers] == [404, 404, 404, 404, 200, 429, 429]
    refused = answers[-1]
    assert body(refused)["error"]["code"] == "rate_limited"
    assert refused.headers["RateLimit-Policy"] == f'"public";q=5;w={math.ceil(5 / NO_REFILL)}'
    assert int(refused.headers["Retry-After"]) >= 1
    # AND MySQL read no more than the five answered (four items and a page)
    assert len(statements.selects()) <= 5


def test_an_ipv6_client_counts_by_its_64_and_another_64_is_apart(override_settings):
    # GIVEN a burst of 3 per address that does not refill during the test
    override_settings(public_burst=3, public_rate_per_s=NO_REFILL)
    callers = wiring.get_callers()
    # WHEN four addresses of one /64 each call once
    for host in range(1, 4):
        callers.admit_public(f"2001:db8:1:2::{host}")
    # THEN the fourth is refused: they share a bucket
    with pytest.raises(RateLimitedError):
        callers.admit_public("2001:db8:1:2:ffff:ffff:ffff:ffff")
    # AND an address of the next /64, or an IPv4 client, has its own
    callers.admit_public("2001:db8:1:3::1")
    callers.admit_public("192.0.2.1")


def test_key_lookups_are_capped_across_every_address(monkeypatch, override_settings):
    # GIVEN key lookups capped at a burst of 3 that does not refill during the test
    override_settings(key_lookup_burst=3, key_lookup_rate_per_s=NO_REFILL)
    statements = Statements(monkeypatch, api_user())
    gate = wiring.get_gate()
    # WHEN made-up tokens come from ten addresses (each well within its own failure limit)
    outcomes = []
    for i in range(10):
        try:
            gate.admit_key(made_up_token(), f"198.51.100.{i}", SCOPE_WRITE)
        except (UnauthorizedError, BudgetExhaustedError) as exc:
            outcomes.append(type(exc).__name__)
    # THEN three were looked up in MySQL (401); the others got 503 without a MySQL read
    assert outcomes == ["UnauthorizedError"] * 3 + ["BudgetExhaustedError"] * 7
    assert len(statements.selects()) == 3, statements.selects()


def test_a_known_key_still_works_while_lookups_are_at_their_cap(client, override_settings):
    # GIVEN key lookups capped at a burst of 2 that does not refill, and the test key in use (its
    # lookup took one of them; now cached)
    override_settings(key_lookup_burst=2, key_lookup_rate_per_s=NO_REFILL)
    assert client.http.post("/logs", headers=JSON, body=json.dumps(ENTRY)).status_code == 202
    # WHEN made-up tokens use up the lookups
    answers = [client.http.post("/logs", headers=with_key(made_up_token()), body="{}") for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 503, 503]
    # THEN the known key is not held back: it needs no lookup
    assert client.http.post("/logs", headers=JSON, body=json.dumps(ENTRY)).status_code == 202


def test_with_redis_down_a_made_up_token_costs_its_address_before_mysql(client, monkeypatch, override_settings):
    # GIVEN Redis down, and failed attempts that do not refill during the test
    override_settings(redis_url=f"redis://127.0.0.1:{closed_port()}/0", auth_failure_rate_per_s=NO_REFILL)
    statements = Statements(monkeypatch, api_user())
    # WHEN one address tries more made-up tokens than its burst
    statuses = [
        client.http.post("/logs", headers=with_key(made_up_token()), body="{}").status_code
        for _ in range(SETTINGS.auth_failure_burst + 5)
    ]
    # THEN past the burst they are refused before MySQL is asked: one lookup per unit of the burst
    assert statuses == [401] * SETTINGS.auth_failure_burst + [429] * 5
    assert len(statements.selects()) == SETTINGS.auth_failure_burst


def test_key_lookups_have_read_slots_no_other_read_can_take(client, admin_headers):
    # GIVEN a new key (not in the cache), and every read slot but the key lookups' held
    token = make_key(client, admin_headers, sources=["web-*"])["key"]
    assert client.http.put("/items/lamp", headers=admin_headers, body=json.dumps({"name": "L"})).status_code == 201
    wiring.get_cache().invalidate("item", "lamp", 60)
    held = []
    for database in (wiring.get_public_database(), wiring.get_database()):
        pool = database.slots
        assert pool is not None
        held += [(pool, pool.try_acquire()) for _ in range(pool.limit)]
    try:
        # WHEN an anonymous read and the new key's first request come
        item = client.http.get("/items/lamp")
        logged = client.http.post("/logs", headers=with_key(token), body=json.dumps(ENTRY))
    finally:
        for pool, slot in held:
            if slot:
                pool.release(slot)
    # THEN the read waits in vain (503) while the key is read in its own slots and the entry queued
    assert all(slot for _, slot in held)
    assert item.status_code == 503
    assert logged.status_code == 202, body(logged)


def test_no_503_body_carries_sqs_text(client, override_settings):
    # GIVEN SQS unreachable
    override_settings(sqs_endpoint_url=f"http://127.0.0.1:{closed_port()}")
    # WHEN an entry is posted THEN the 503 names the dependency, never an address or a driver's words
    answer = client.http.post("/logs", headers=JSON, body=json.dumps(ENTRY))
    assert answer.status_code == 503
    text = json.dumps(body(answer))
    assert "127.0.0.1" not in text and "Errno" not in text and "botocore" not in text.lower()


def test_an_item_page_is_served_from_the_cache_within_its_ttl(client, admin_headers, monkeypatch, override_settings):
    # GIVEN pages cached for an hour, and a first page read
    override_settings(items_page_cache_ttl_s=3600)
    assert client.http.put("/items/chair", headers=admin_headers, body=json.dumps({"name": "C"})).status_code == 201
    first = client.http.get("/items")
    statements = Statements(monkeypatch, api_user())
    # WHEN it is read 20 times more THEN MySQL is not asked again, and each answer is the same page
    again = [client.http.get("/items") for _ in range(20)]
    assert {a.status_code for a in again} == {200}
    assert all(body(a) == body(first) for a in again)
    assert statements.selects() == []


def test_a_known_key_is_refreshed_even_while_its_address_is_over_its_failure_limit(
    client, admin_headers, redis_client, override_settings
):
    # GIVEN a key in use (cached for 1 s), and its address then over its failure limit (made-up keys
    # from the same address, as behind a NAT), which does not refill during the test
    override_settings(key_cache_ttl_s=1, auth_failure_rate_per_s=NO_REFILL)
    made = make_key(client, admin_headers)
    key = with_key(made["key"])
    assert client.http.post("/logs", headers=key, body=json.dumps(ENTRY)).status_code == 202
    statuses = [
        client.http.post("/logs", headers=with_key(made_up_token()), body="{}").status_code
        for _ in range(SETTINGS.auth_failure_burst + 1)
    ]
    assert statuses[-1] == 429
    # WHEN its cached copy is past its fresh period (Redis's clock says so)
    data = f"{SETTINGS.redis_key_prefix}apikey:{{{token_hash(made['key'])}}}:data"
    fresh_until = json.loads(redis_client.get(data))["fresh_until"]
    wait_for(lambda: redis_time(redis_client) > fresh_until + 0.1, timeout_s=30, interval_s=0.05)
    # THEN the key is read again without charging the address: its request is let in
    assert client.http.post("/logs", headers=key, body=json.dumps(ENTRY)).status_code == 202


def redis_time(client: Any) -> float:
    seconds, micros = client.time()
    return float(seconds) + float(micros) / 1_000_000


def test_a_request_a_key_may_not_make_still_costs_it_a_unit(client, admin_headers):
    # GIVEN a read-only key with a burst of 50 at 1 a second
    key = with_key(make_key(client, admin_headers, scopes=["logs:read"], rate_per_s=1, burst=50)["key"])
    # WHEN it posts entries it may not write, 200 times (a refill of 150 would take 150 s)
    statuses = [client.http.post("/logs", headers=key, body=json.dumps(ENTRY)).status_code for _ in range(200)]
    # THEN each 403 was charged: once the burst is spent they are 429s, before the body is read
    assert statuses[0] == 403
    assert 429 in statuses and set(statuses) == {403, 429}


def test_the_admins_item_writes_are_not_held_back_by_anonymous_reads(client, admin_headers):
    # GIVEN every read slot anonymous reads may use held (a flood of them)
    pool = wiring.get_public_database().slots
    assert pool is not None
    held = [pool.try_acquire() for _ in range(pool.limit)]
    try:
        # WHEN the admin writes an item THEN it is written, in slots the flood cannot take
        answer = client.http.put("/items/desk", headers=admin_headers, body=json.dumps({"name": "Desk"}))
    finally:
        for slot in held:
            if slot:
                pool.release(slot)
    assert all(held)
    assert answer.status_code == 201, body(answer)
