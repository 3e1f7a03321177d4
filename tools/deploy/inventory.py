"""What the packaged stack makes, counted from its template, for the README and docs/deploy-aws.md.

    python -m tools.deploy.inventory .data/lint/prod/sam.yaml           rewrite the marked blocks
    python -m tools.deploy.inventory .data/lint/prod/sam.yaml --check   fail if a block is stale (make lint)

Each document holds the sentence between `<!-- stack-inventory -->` and `<!-- /stack-inventory -->`;
nobody counts resources by hand.
"""

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from tools.stage import ROOT

DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "deploy-aws.md")
_BLOCK = re.compile(r"(<!-- stack-inventory -->)(.*?)(<!-- /stack-inventory -->)", re.DOTALL)
# What is counted, by resource type, with its name in the singular and the plural.
KINDS = {
    "AWS::Serverless::Function": ("function", "functions"),
    "AWS::IAM::Role": ("IAM role", "IAM roles"),
    "AWS::SQS::Queue": ("queue", "queues"),
    "AWS::SecretsManager::Secret": ("generated secret", "generated secrets"),
    "AWS::Logs::LogGroup": ("log group", "log groups"),
    "AWS::CloudWatch::Alarm": ("alarm", "alarms"),
    "AWS::EC2::VPCEndpoint": ("VPC endpoint", "VPC endpoints"),
    "AWS::SNS::Topic": ("alarm topic", "alarm topics"),
}
_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def counts(template: dict[str, Any]) -> dict[str, int]:
    """How many resources of each counted type the template makes (conditional ones included)."""
    found = dict.fromkeys(KINDS, 0)
    for resource in template["Resources"].values():
        if resource["Type"] in found:
            found[resource["Type"]] += 1
    return found


def sentence(template: dict[str, Any]) -> str:
    """The inventory as one sentence."""
    parts = []
    for kind, number in counts(template).items():
        singular, plural = KINDS[kind]
        parts.append(f"{_WORDS.get(number, str(number))} {singular if number == 1 else plural}")
    return (
        "The stack makes "
        + ", ".join(parts[:-1])
        + f" and {parts[-1]} (counted from the packaged template; the SQS and Secrets Manager endpoints"
        + ' unless CreateVpcEndpoints is "false", the S3 one when RouteTableIds are given, the topic unless'
        + " AlarmTopicArn names one)"
        + ", and runs its database migration at every deploy that changes it."
    )


def render(text: str, inventory: str) -> str:
    return _BLOCK.sub(lambda m: f"{m.group(1)}{inventory}{m.group(3)}", text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("template", type=Path, help="a packaged stage's sam.yaml")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    inventory = sentence(yaml.safe_load(args.template.read_text()))
    stale = []
    for document in DOCUMENTS:
        text = document.read_text()
        if not _BLOCK.search(text):
            raise SystemExit(f"{document.relative_to(ROOT)} has no <!-- stack-inventory --> block")
        if render(text, inventory) != text:
            stale.append(document)
            if not args.check:
                document.write_text(render(text, inventory))
    if args.check and stale:
        names = ", ".join(str(d.relative_to(ROOT)) for d in stale)
        raise SystemExit(f"{names}: the stack's inventory is stale; python -m tools.deploy.inventory {args.template}")
    print(inventory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
