"""The operator's commands with `--target aws` (make key, migrate, status and redrive with TARGET=aws),
run as an operator runs them, against the packaged stack `make deploy-stack` puts into LocalStack.

botocore takes its endpoint from AWS_ENDPOINT_URL: set to LocalStack's, with LocalStack's test
credentials, every AWS client of these commands reaches the emulator, and the code that runs is
the code that runs against AWS (the stack found by name through CloudFormation, its outputs, its
secret, its functions). One thing differs: the API's EndpointURL output
(https://<id>.execute-api.<region>.amazonaws.com/api/) resolves only on AWS, so make key is given
LocalStack's URL of the same API with --url; the tests check that both name the same API.
"""

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from chalicelib.database.schema import latest_version, load_migrations
from tests.integration.conftest import API
from tests.integration.stack_checks import ENTRY, SETTINGS, STAGE, clean
from tools.aws import LOCAL_AWS_ENV
from tools.deploy.stack import StackDeployment, stack_name, targets
from tools.stage import ROOT

TIMEOUT_S = 300  # a migration through LocalStack's Lambda, with room to spare


@pytest.fixture(scope="module")
def stack(stacks) -> Iterator[StackDeployment]:
    """The `stack` stage's stack in LocalStack, with empty tables, keys and queues."""
    deployment = stacks.get("localstack")
    clean(deployment)
    yield deployment
    clean(deployment)


def run_on_aws(*command: str) -> str:
    """`python -m tools.ops.<command> --stage stack --target aws` as an operator runs it on AWS, its
    AWS clients pointed at LocalStack by AWS_ENDPOINT_URL; its output (it must succeed)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}  # no profile
    env.update(LOCAL_AWS_ENV)
    env["AWS_ENDPOINT_URL"] = targets()["localstack"].endpoint
    module, *args = command
    ran = subprocess.run(
        [sys.executable, "-m", f"tools.ops.{module}", *args, "--stage", STAGE, "--target", "aws"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert ran.returncode == 0, f"{command}: {ran.returncode}\n{ran.stdout}\n{ran.stderr}"
    return ran.stdout


def test_make_key_on_aws_makes_a_key_the_stacks_api_takes_then_revokes_it(stack):
    """GIVEN the stack, found through CloudFormation by name, its admin token in the secret its output
    names WHEN make key creates a key for web-1, lists the keys and revokes it
    THEN the key writes web-1's entries (202) and no other source's, is listed, and is refused once revoked."""
    # the API the command would call on AWS is the one LocalStack serves at the URL it is given
    assert stack.outputs["RestAPIId"] in stack.outputs["EndpointURL"]
    assert stack.outputs["RestAPIId"] in stack.api_url
    name = f"ops on aws {uuid.uuid4().hex[:8]}"
    made = run_on_aws("keys", "create", "--name", name, "--sources", "web-1", "--url", stack.api_url)
    found = re.fullmatch(r"key (\S+) \((.+)\): (slk_\S+)\n  \(its token is shown only now\)\n", made)
    assert found, made
    key_id, made_name, token = found.groups()
    assert made_name == name
    keyed = API(stack.api_url).with_key(token)
    written = keyed.post("/logs", ENTRY)
    assert (written.status, written.body["status"]) == (202, "queued"), written.body
    assert keyed.post("/logs", {**ENTRY, "source": "billing"}).status == 403

    listed = json.loads(run_on_aws("keys", "list", "--url", stack.api_url))
    assert [(k["id"], k["sources"]) for k in listed["keys"] if k["name"] == name] == [(key_id, ["web-1"])]

    assert run_on_aws("keys", "revoke", key_id, "--url", stack.api_url) == f"revoked {key_id}\n"
    assert keyed.post("/logs", ENTRY).status == 401


def test_make_migrate_on_aws_runs_the_stacks_migrate_function(stack):
    """GIVEN the stack, migrated by its deploy WHEN make migrate invokes its migrate function
    THEN the function answers with the database at this code's schema version, nothing left to apply."""
    said = run_on_aws("migrate")
    version = latest_version(load_migrations())
    assert said.startswith(
        f"migrate ({STAGE}): database {SETTINGS.mysql.database} at schema version {version} (applied now: none);"
    ), said
    assert re.search(r"budget \d+ below max_connections \d+\n$", said), said


def test_make_status_on_aws_reads_the_stacks_queues_and_says_what_it_skips(stack):
    """GIVEN the stack, its queues empty WHEN make status reads it
    THEN it shows the stack, its queues and its alarms, and says the database's figures are skipped."""
    said = run_on_aws("status")
    version = latest_version(load_migrations())
    assert re.search(rf"stage {STAGE}: stack {stack_name(STAGE)} \(\w+_COMPLETE, schema version {version}\)", said), (
        said
    )
    assert re.search(r"\n  log queue:    \d+ waiting, \d+ in flight, \d+ delayed\n", said), said
    assert "\n  dead letters: 0\n" in said, said
    assert "\n  oldest:       " in said, said
    # the stack's alarms were found and read (whether one fires depends on what ran before)
    assert re.search(r"\n  alarms:       \d+ of [1-9]\d* in ALARM(: \w+(, \w+)*)?\n", said), said
    assert "stored, lag, connections, partitions: skipped for a deployed stack" in said, said


def test_make_redrive_on_aws_finds_the_stacks_dead_letter_queue(stack):
    """GIVEN the stack, its dead-letter queue empty WHEN make redrive DRY_RUN=1 reads it
    THEN it reports nothing waiting and nothing moved."""
    report = json.loads(run_on_aws("redrive", "dead-letters", "--dry-run"))
    assert (report["method"], report["waiting"], report["moved"], report["sample"]) == ("dry run", 0, 0, [])
