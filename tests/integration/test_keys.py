"""Keys and limits through LocalStack's API Gateway and the deployed API function, over HTTP:
the same checks as under chalice local, and their headers reaching the client."""

import re

import pytest

from tests.integration.conftest import STAGE
from tools.stage import stage_secrets

pytestmark = pytest.mark.usefixtures("clean_state")

ENTRY = {"level": "info", "source": "web-1", "message": "through API Gateway"}


@pytest.fixture
def admin() -> str:
    return stage_secrets(STAGE).token("admin_token")


def test_a_key_over_its_limit_gets_429_with_when_to_come_back(api, admin):
    # GIVEN a key of 1 entry/s with a burst of 200
    limited = api.with_key(api.make_key(admin, rate_per_s=1, burst=200))
    # WHEN it spends the burst in one batch
    spent = limited.post("/logs/batch", {"logs": [ENTRY] * 200})
    assert spent.status == 202
    assert spent.headers["ratelimit-policy"] == '"key";q=200;w=200'
    # THEN its next batch of 100 is refused with when to come back: 100 entries come back in 100 s
    # at its rate, far more than a trip through API Gateway takes (no race with the clock)
    refused = limited.post("/logs/batch", {"logs": [ENTRY] * 100})
    assert (refused.status, refused.body["error"]["code"]) == (429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1
    # what came back since the burst was spent (a unit a second) is less than the refused cost
    assert re.fullmatch(r'"key";r=(\d+);t=\d+', refused.headers["ratelimit"])
    assert int(refused.headers["ratelimit"].split(";")[1].removeprefix("r=")) < 100
    assert refused.body["error"]["request_id"]


def test_a_key_is_held_to_its_sources_and_scopes_and_refused_once_revoked(api, admin):
    made = api.post("/keys", {"name": "web", "sources": ["web-*"]}, headers={"Authorization": f"Bearer {admin}"})
    key = api.with_key(made.body["key"])
    assert key.post("/logs", ENTRY).status == 202
    assert key.post("/logs", {**ENTRY, "source": "billing"}).status == 403
    assert key.get("/logs").status == 403  # logs:write only
    assert api.delete(f"/keys/{made.body['id']}", headers={"Authorization": f"Bearer {admin}"}).status == 204
    revoked = key.post("/logs", ENTRY)
    assert (revoked.status, revoked.body["error"]["code"]) == (401, "unauthorized")
    assert revoked.headers["www-authenticate"] == 'Bearer realm="sluice"'
