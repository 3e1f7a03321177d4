"""Integration tests: the app deployed into LocalStack (API Gateway, Lambda on the host executor,
the SQS event source mapping) and called over real HTTP.

The `integration` stage is deployed once per session with tools.deploy.localstack and removed at the end;
each test starts from empty tables, keys and queues.
"""

import contextlib
import io
import json
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymysql
import pytest

from tools.admin import admin_connection
from tools.ops.reset import empty_tables, forget_redis_keys, purge_queues

if TYPE_CHECKING:
    from tests.integration.stack_checks import Stacks
from tools.aws import aws_client
from tools.deploy.localstack import Deployment, delete, deploy
from tools.stage import stage_secrets, stage_settings

STAGE = "integration"
SETTINGS = stage_settings(STAGE)


def aws(service: str) -> Any:
    return aws_client(service, SETTINGS)


@dataclass
class HTTPResult:
    status: int
    headers: dict[str, str]
    body: Any


class API:
    """A plain HTTP client for the deployed API; `headers` go with every request (a key, say)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})

    def with_key(self, key: str) -> "API":
        """The same API, called with an API key."""
        return API(self.base_url, {**self.headers, "Authorization": f"Bearer {key}"})

    def make_key(self, admin_token: str, **fields: Any) -> str:
        """A new API key (POST /keys with the admin token); every scope and source unless told."""
        body = {"name": "integration tests", "scopes": ["logs:write", "logs:read"], "sources": ["*"], **fields}
        made = self.post("/keys", body, headers={"Authorization": f"Bearer {admin_token}"})
        assert made.status == 201, made.body
        return str(made.body["key"])

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> HTTPResult:
        data = None
        all_headers = {**self.headers, **(headers or {})}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw, response_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, response_headers = error.code, error.read(), error.headers
        parsed = json.loads(raw) if raw else None
        return HTTPResult(status, {k.lower(): v for k, v in response_headers.items()}, parsed)

    def get(self, path: str, **kwargs: Any) -> HTTPResult:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> HTTPResult:
        return self.request("POST", path, body=body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> HTTPResult:
        return self.request("PUT", path, body=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> HTTPResult:
        return self.request("DELETE", path, **kwargs)


@pytest.fixture(scope="session")
def deployment() -> Iterator[Deployment]:
    """The integration stage deployed into LocalStack for the whole session, removed afterwards."""
    deployed = deploy(STAGE)
    yield deployed
    delete(STAGE)


@pytest.fixture(scope="session")
def api(deployment: Deployment) -> API:
    """The deployed API, anonymous."""
    return API(deployment.api_url)


@pytest.fixture(scope="session")
def keyed_api(api: API) -> API:
    """The deployed API, with a key of every scope and source."""
    return api.with_key(api.make_key(stage_secrets(STAGE).token("admin_token")))


@pytest.fixture(scope="session")
def sqs() -> Any:
    return aws("sqs")


@pytest.fixture(scope="session")
def queue_urls(sqs: Any, deployment: Deployment) -> dict[str, str]:
    return {
        "queue": sqs.get_queue_url(QueueName=SETTINGS.log_queue_name)["QueueUrl"],
        "dlq": sqs.get_queue_url(QueueName=SETTINGS.log_dlq_name)["QueueUrl"],
    }


@pytest.fixture
def admin_db() -> Iterator[pymysql.connections.Connection]:
    conn = admin_connection(SETTINGS.mysql.database, settings=SETTINGS)
    yield conn
    conn.close()


@pytest.fixture
def clean_state(deployment: Deployment, sqs: Any, queue_urls: dict[str, str]) -> Iterator[None]:
    """Empty tables, keys and queues of the integration stage before and after a test."""

    def clean() -> None:
        with admin_connection(SETTINGS.mysql.database, settings=SETTINGS) as conn:
            empty_tables(conn)
        forget_redis_keys(SETTINGS.redis_url, SETTINGS.redis_key_prefix)
        purge_queues(sqs, queue_urls.values())

    clean()
    yield
    clean()


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {stage_secrets(STAGE).token('admin_token')}"}


def rows(admin_db: pymysql.connections.Connection, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    with admin_db.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


# --- Probe functions (lambda_probe/probe.py): the host executor and custom resources ---

PROBE_DIR = Path(__file__).with_name("lambda_probe")


def probe_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for module in sorted(PROBE_DIR.glob("*.py")):
            archive.write(module, module.name)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lambda_client():
    return aws("lambda")


@pytest.fixture(scope="module")
def role():
    iam = aws("iam")
    name = f"probe-role-{uuid.uuid4().hex[:8]}"
    arn = iam.create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
    )
    yield arn["Role"]["Arn"]
    iam.delete_role(RoleName=name)


@pytest.fixture
def make_function(lambda_client, role):
    """Create probe functions for one test; delete them afterwards."""
    created: list[str] = []

    def create(handler: str, timeout: int = 3, environment: dict[str, str] | None = None) -> str:
        name = f"probe-{handler.split('.')[-1].replace('_', '-')}-{uuid.uuid4().hex[:8]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role,
            Handler=handler,
            Code={"ZipFile": probe_zip()},
            Timeout=timeout,
            Environment={"Variables": environment or {}},
        )
        created.append(name)
        lambda_client.get_waiter("function_active_v2").wait(FunctionName=name)
        return name

    yield create
    for name in created:
        # A test may have deleted its function itself.
        with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.delete_function(FunctionName=name)


# --- The packaged stack (tests/integration/stack_checks.py) -----------------------------------


@pytest.fixture(scope="session")
def stacks() -> Iterator["Stacks"]:
    """The `stack` stage's packaged stack, deployed once per emulator that a test asks for."""
    from tests.integration.stack_checks import Stacks

    deployed = Stacks()
    yield deployed
    deployed.remove_all()
