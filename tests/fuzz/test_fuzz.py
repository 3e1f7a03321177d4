"""Schemathesis against the running API (chalice local and the local event source, stage `test`),
from openapi.json: every check on (no 5xx but the documented 503s, every answer matching its
schema, auth not ignored, invalid data refused), a bounded number of examples per operation,
then every entry answered 202 found stored.

    make fuzz   (part of make test; FUZZ_EXAMPLES sets the examples per operation, default 50)
"""

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from chalicelib.web.openapi import ADMIN, KEY
from tests.support.waiting import wait_for
from tools.admin import admin_connection
from tools.devstack.bootstrap import bootstrap
from tools.devstack.processes import Processes, wait_http
from tools.ops.openapi import PATH
from tools.ops.reset import empty_tables
from tools.stage import ROOT, stage_environment, stage_settings

STAGE = "test"
PORT = 8600
BASE_URL = f"http://127.0.0.1:{PORT}"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
ENV = stage_environment(STAGE)
TOKENS = {KEY: ENV["DEV_API_KEY"], ADMIN: ENV["ADMIN_TOKEN"]}

# A log entry's timestamp must fall in a window around the time received, which a schema cannot
# say: generated date-times fall inside it (an hour within each edge), taken from the clock when each
# is drawn (not at import), so valid data is accepted however long the run takes.
_SETTINGS = stage_settings(STAGE)
schemathesis.openapi.format(
    "date-time",
    st.floats(
        min_value=-_SETTINGS.log_timestamp_max_age_s + 3600, max_value=_SETTINGS.log_timestamp_max_ahead_s / 2
    ).map(lambda offset_s: (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat()),
)
schema = schemathesis.openapi.from_path(
    PATH, config=SchemathesisConfig.from_path(Path(__file__).with_name("schemathesis.toml"))
)
schema.config.update(base_url=BASE_URL)
queued: set[str] = set()
queued_lock = threading.Lock()


@pytest.fixture(scope="module", autouse=True)
def live_api() -> Iterator[None]:
    """The stage's API and consumer as `make up` runs them, on empty tables."""
    bootstrap(STAGE)
    with admin_connection(_SETTINGS.mysql.database) as conn:
        empty_tables(conn)
    processes = Processes(ROOT / ".data" / "fuzz")
    python = str(ROOT / ".venv" / "bin" / "python")
    # Failed attempts per address are limited (2/s, 20 at once): the fuzzer's many requests without
    # a key would then get 429 where it checks for 401. Its limit is tested in tests/functional.
    unlimited = ["--env=AUTH_FAILURE_RATE_PER_S=100000", "--env=AUTH_FAILURE_BURST=1000000"]
    processes.start(
        "api", [python, "-m", "tools.devstack.chalice_local", "--stage", STAGE, "--port", str(PORT), *unlimited]
    )
    processes.start("consumer", [python, "-m", "tools.devstack.local_consumer", "--stage", STAGE])
    try:
        wait_http(f"{BASE_URL}/health")
        yield
    finally:
        processes.stop()


def token_for(operation: object) -> dict[str, str]:
    """The credential an operation's security names (none for a public one)."""
    security = getattr(operation, "definition", None)
    raw = security.raw if security is not None else {}
    names = [name for requirement in raw.get("security", []) for name in requirement]
    return {"Authorization": f"Bearer {TOKENS[names[0]]}"} if names else {}


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_description(case):
    # WHEN fuzzed inputs reach each operation THEN every answer passes every check
    response = case.call_and_validate(headers=token_for(case.operation))
    if response.status_code == 202:
        answer = response.json()
        with queued_lock:
            queued.update(answer.get("ids") or [answer["id"]])


def test_every_entry_answered_202_is_stored():
    # (runs after the fuzzing: pytest keeps the module's order)
    assert queued, "the fuzzing queued nothing"

    def stored() -> bool:
        with admin_connection(_SETTINGS.mysql.database) as conn, conn.cursor() as cur:
            cur.execute("SELECT id FROM logs")
            return queued <= {row[0] for row in cur.fetchall()}

    wait_for(stored, timeout_s=120)
