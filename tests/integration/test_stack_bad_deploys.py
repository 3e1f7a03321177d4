"""A deploy with a missing parameter, secret or CA bundle fails with a message naming it, and
leaves no half-working stack. In MiniStack (its CloudFormation rolls a failed create back);
each attempt is its own stack with its own queue names, beside the stack the other tests use."""

import contextlib
import copy
import io
import json
import socket
import uuid
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.stack_checks import STAGE
from tools.aws import aws_client
from tools.deploy.package import DIST
from tools.deploy.smoke import SmokeFailed, smoke
from tools.deploy.stack import apply_stack, packaged_template, stack_parameters, targets

TARGET = "ministack"


@pytest.fixture(scope="module")
def base(stacks) -> tuple[dict[str, Any], dict[str, str]]:
    """The packaged template and this machine's parameters (the MiniStack stack deployed first)."""
    stacks.get(TARGET)
    return packaged_template(STAGE, TARGET), stack_parameters(STAGE, targets()[TARGET])


class Attempts:
    """Deploys variants, each as a stack of its own; `names` are the stacks tried, last one last."""

    def __init__(self, base: tuple[dict[str, Any], dict[str, str]]) -> None:
        self.base = base
        self.names: list[str] = []
        self.cfn = aws_client("cloudformation", endpoint_url=targets()[TARGET].endpoint)
        self.sqs = aws_client("sqs", endpoint_url=targets()[TARGET].endpoint)

    def __call__(self, template: dict[str, Any] | None = None, parameters: dict[str, str] | None = None) -> str | None:
        """The failure message of deploying the variant, or None."""
        name = f"sluice-bad-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        variant = copy.deepcopy(template or self.base[0])
        for queue in ("LogQueue", "LogDeadLetterQueue"):
            variant["Resources"][queue]["Properties"]["QueueName"] = f"{name}-{queue}"
        try:
            apply_stack(self.cfn, name, variant, self.base[1] if parameters is None else parameters)
        except SystemExit as failed:
            return str(failed)
        return None

    def remove(self) -> None:
        for name in self.names:
            self.cfn.delete_stack(StackName=name)
            for queue in ("LogQueue", "LogDeadLetterQueue"):  # kept by the stack's DeletionPolicy once created
                with contextlib.suppress(self.sqs.exceptions.QueueDoesNotExist):
                    self.sqs.delete_queue(QueueUrl=self.sqs.get_queue_url(QueueName=f"{name}-{queue}")["QueueUrl"])


@pytest.fixture
def attempt(base) -> Iterator[Attempts]:
    """Deploy variants as stacks of their own; remove them after."""
    attempts = Attempts(base)
    yield attempts
    attempts.remove()


def test_a_missing_parameter_is_named_by_cloudformation(attempt, base):
    parameters = {k: v for k, v in base[1].items() if k != "MySQLAdminSecretArn"}
    with pytest.raises(Exception, match="MySQLAdminSecretArn"):
        attempt(parameters=parameters)


def test_a_secret_that_does_not_exist_fails_the_deploy_naming_its_setting(attempt, base):
    missing = "arn:aws:secretsmanager:us-east-1:000000000000:secret:sluice-stack/nowhere-AbCdEf"
    failure = attempt(parameters={**base[1], "MySQLAdminSecretArn": missing})
    assert failure is not None
    assert "DatabaseMigration" in failure
    assert "cannot read the secret named by MYSQL_ADMIN_SECRET_ID" in failure
    # AND the failed create took its queues with it (RetainExceptOnCreate): a retry is not blocked by
    # queues of the same names
    made = attempt.sqs.list_queues(QueueNamePrefix=attempt.names[-1]).get("QueueUrls", [])
    assert made == []


def test_a_package_without_its_ca_bundle_fails_the_deploy_naming_the_setting(attempt, base):
    # GIVEN the function package without the CA bundle the stage names
    s3 = aws_client("s3", endpoint_url=targets()[TARGET].endpoint)
    stripped = io.BytesIO()
    with zipfile.ZipFile(DIST / STAGE / "deployment.zip") as source, zipfile.ZipFile(stripped, "w") as target:
        for item in source.infolist():
            if not item.filename.startswith("certs/"):
                target.writestr(item, source.read(item.filename))
    key = f"{STAGE}/without-ca-{uuid.uuid4().hex[:8]}.zip"
    s3.put_object(Bucket="sluice-artifacts", Key=key, Body=stripped.getvalue())
    template = copy.deepcopy(base[0])
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = {"Bucket": "sluice-artifacts", "Key": key}
    # WHEN it is deployed THEN the migration refuses to connect without verification, naming the setting
    failure = attempt(template=template)
    assert failure is not None
    assert "MYSQL_CA_BUNDLE names certs/local-dev-ca.pem, which is not in the package" in failure


def test_a_wrong_redis_setting_deploys_but_fails_the_smoke_step(attempt, base):
    # GIVEN the stack deployed with a Redis port nothing listens on (the migration never uses Redis,
    # so CloudFormation sees nothing wrong)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    assert attempt(parameters={**base[1], "RedisPort": str(closed_port)}) is None
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in attempt.cfn.describe_stacks(StackName=attempt.names[-1])["Stacks"][0]["Outputs"]
    }
    api_url = f"{targets()[TARGET].endpoint}/_aws/execute-api/{outputs['RestAPIId']}/api/"
    secrets = aws_client("secretsmanager", endpoint_url=targets()[TARGET].endpoint)
    token = json.loads(secrets.get_secret_value(SecretId=outputs["AdminTokenSecretArn"])["SecretString"])["token"]
    # WHEN the deploy's smoke step runs THEN it fails, naming the dependency, before any user finds out
    with pytest.raises(SmokeFailed, match=r'GET /health/dependencies answered 503: .*"redis": "unavailable"'):
        smoke(api_url, token)
