"""`make migrate STAGE=<stage>`: bring a stage's database to this code's schema and accounts.

    python -m tools.ops.migrate --stage local                          a local stage: as root, here
    python -m tools.ops.migrate --stage stack [--target localstack]    a deployed stack: its migrate function
    python -m tools.ops.migrate --stage prod --target aws [--stack-name sluice-prod]

Both run the same code (chalicelib.database.provision): the migrations the database has not run yet, the
API and writer accounts with their grants and connection caps, the budget checked against the
server's max_connections. A deployed stack also runs it at every deploy that changes it (its
DatabaseMigration custom resource); this runs it on demand, for example after restoring a backup.
On AWS it uses your usual credentials (AWS_PROFILE, AWS_REGION).
"""

import argparse
import json
import sys
from typing import Any

from tools.aws import aws_client
from tools.deploy.stack import stack_name, targets
from tools.devstack.bootstrap import bootstrap_mysql
from tools.stage import is_packaged, stage_settings


def invoke_migrate(function_name: str, lambda_client: Any) -> dict[str, Any]:
    """Invoke a stack's migrate function; SystemExit with its error if it fails."""
    response = lambda_client.invoke(FunctionName=function_name, InvocationType="RequestResponse", Payload=b"{}")
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        raise SystemExit(f"{function_name} failed: {payload.get('errorType')}: {payload.get('errorMessage')}")
    return dict(payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--target", choices=[*sorted(targets()), "aws"], default="localstack")
    parser.add_argument("--stack-name", help="default: sluice-<stage>")
    args = parser.parse_args(argv)
    if not is_packaged(args.stage):
        result = bootstrap_mysql(stage_settings(args.stage)).to_dict()
    else:
        function = f"{args.stack_name or stack_name(args.stage)}-migrate"
        endpoint = None if args.target == "aws" else targets()[args.target].endpoint
        lambda_client = aws_client("lambda", endpoint_url=endpoint)
        result = invoke_migrate(function, lambda_client)
    print(
        f"migrate ({args.stage}): database {result['database']} at schema version {result['schema_version']}"
        f" (applied now: {result['applied'] or 'none'}); budget {result['budget']} below max_connections"
        f" {result['max_connections']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
