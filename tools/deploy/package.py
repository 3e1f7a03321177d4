"""`make package STAGE=<stage>`: a packaged stage's whole stack as one CloudFormation (SAM) template.

    python -m tools.deploy.package --stage prod [--out dist/prod]

1. Checks the stage's connection budget and queue settings (tools.ops.budget) and refuses to package
   a stage that breaks a rule. The fit below the server's max_connections is checked when this
   machine knows the server (see tools.ops.budget), and by the migration at every deploy.
2. Fills each {{NAME}} of deploy/stack.yaml with the stage's value of NAME, or PROVISION_REVISION
   with a digest of what the migration does (so a deploy runs it again exactly when that changes).
3. Runs `chalice package --merge-template` into OUT: sam.yaml and deployment.zip.
4. Puts the CA bundles the stage names (MYSQL_CA_BUNDLE, REDIS_CA_BUNDLE) into deployment.zip at
   the same relative path. A stage whose bundle is missing is refused before anything is written
   (a stack deployed without it would fail at its migration), except with --template-only: the
   template for checks (`make lint`), whose code must not be deployed.
"""

import argparse
import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from chalicelib.database import custom_resource
from chalicelib.database.revision import provision_revision
from tools.aws import LOCAL_AWS_ENV
from tools.deploy import gateway_responses
from tools.ops.budget import check
from tools.stage import (
    DEPLOY_TIME_STAND_INS,
    ROOT,
    chalice_config,
    function_settings,
    is_packaged,
    outside_environment,
    stage_environment,
    stage_settings,
    stage_variables,
)

CHALICE = ROOT / ".venv" / "bin" / "chalice"
MERGE_TEMPLATE = ROOT / "deploy" / "stack.yaml"
DIST = ROOT / "dist"
TEMPLATE_NAME = "sam.yaml"
CA_BUNDLE_SETTINGS = ("MYSQL_CA_BUNDLE", "REDIS_CA_BUNDLE")
_MARKER = re.compile(r"\{\{([A-Z0-9_]+)\}\}")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:/-]*$")
CODE_VALUES = ("GATEWAY_RESPONSES", "MIGRATION_FAILURE_MARKER")  # made by this code: not checked as a setting's
# The functions whose concurrency a packaged stage reserves (ReserveConcurrency "true"), by marker.
RESERVED_FUNCTIONS = {"API_RESERVED_CONCURRENCY": "api_handler", "CONSUMER_RESERVED_CONCURRENCY": "consume_logs"}


@dataclass(frozen=True)
class Package:
    stage: str
    template: Path
    code: Path
    missing_bundles: list[str]


def stage_values(stage: str) -> dict[str, str]:
    """The stage's settings (declared defaults included), as {{NAME}} markers see them, and the
    values this code computes (CODE_VALUES)."""
    config = chalice_config(stage)
    return {
        **stage_variables(stage),
        **reservations(stage),
        "PROVISION_REVISION": provision_revision(stage_settings(stage)),
        "GATEWAY_RESPONSES": json.dumps(gateway_responses.definition_extension()),  # JSON is YAML
        "MIGRATION_FAILURE_MARKER": custom_resource.FAILURE_MARKER,
        "API_STAGE": config.api_gateway_stage,
    }


def reservations(stage: str) -> dict[str, str]:
    """The reserved concurrency of each function a packaged stage must reserve it for."""
    values = {}
    for marker, function in RESERVED_FUNCTIONS.items():
        reserved = function_settings(stage, function).reserved_concurrency
        if reserved is None:
            raise SystemExit(f"stage {stage}: {function} has no reserved_concurrency in .chalice/config.json")
        values[marker] = str(reserved)
    return values


def render_merge_template(text: str, values: dict[str, str]) -> str:
    """Replace every {{NAME}}; a name the stage does not define, or an unsafe value, is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise SystemExit(f"{MERGE_TEMPLATE.relative_to(ROOT)} uses {{{{{name}}}}}, which the stage does not set")
        if name not in CODE_VALUES and not _SAFE_VALUE.match(values[name]):
            raise SystemExit(f"{name}={values[name]!r} cannot go into the template (letters, digits and _.:/- only)")
        return values[name]

    return _MARKER.sub(replace, text)


def ca_bundles(stage: str) -> dict[str, Path]:
    """The CA bundles the stage names, by setting, as files of this checkout."""
    env = stage_environment(stage)
    found = {}
    for setting in CA_BUNDLE_SETTINGS:
        bundle = env.get(setting)
        if not bundle:
            continue
        if Path(bundle).is_absolute():
            raise SystemExit(f"{setting}={bundle}: a packaged stage names a bundle relative to the project")
        found[setting] = ROOT / bundle
    return found


def missing_bundles(stage: str) -> list[str]:
    """The settings whose CA bundle is not on this machine."""
    return [setting for setting, path in ca_bundles(stage).items() if not path.is_file()]


def missing_bundle_message(stage: str, missing: list[str]) -> str:
    """What to do about missing CA bundles."""
    env = stage_environment(stage)
    named = ", ".join(f"{setting} names {env[setting]}" for setting in missing)
    return (
        f"stage {stage}: {named}, which is not on this machine; a stack without it fails at its migration."
        " Fetch it first (certs/README.md)"
    )


def add_ca_bundles(stage: str, zip_path: Path) -> None:
    """Add the CA bundles the stage names (those on this machine) to the package."""
    with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED) as package:
        present = set(package.namelist())
        for path in ca_bundles(stage).values():
            bundle = str(path.relative_to(ROOT))
            if path.is_file() and bundle not in present:
                package.write(path, arcname=bundle)
                present.add(bundle)


def package(stage: str, out: Path, max_connections: int | None = None, template_only: bool = False) -> Package:
    """Check, render, package; return where the template and code are. `max_connections` is the
    target server's, when the caller knows it; `template_only` packages a stage whose CA bundle is
    missing (for checking the template; its code cannot be deployed)."""
    if not is_packaged(stage):
        raise SystemExit(f"stage {stage} is not a packaged stage (its SECRETS_SOURCE is not secretsmanager)")
    _, problems = check(stage, max_connections)
    if problems:
        raise SystemExit(f"budget check FAILED for stage {stage}; not packaging:\n  - " + "\n  - ".join(problems))
    missing = missing_bundles(stage)
    if missing and not template_only:
        raise SystemExit(missing_bundle_message(stage, missing) + "; not packaging")
    out.mkdir(parents=True, exist_ok=True)
    rendered = out / "merge-template.yaml"
    rendered.write_text(render_merge_template(MERGE_TEMPLATE.read_text(), stage_values(stage)))
    for old in (out / TEMPLATE_NAME, out / "deployment.zip"):
        old.unlink(missing_ok=True)
    env = {**outside_environment(), **LOCAL_AWS_ENV, **DEPLOY_TIME_STAND_INS}  # chalice imports app.py; no AWS call
    subprocess.run(
        [str(CHALICE), "package", "--stage", stage, "--merge-template", str(rendered), str(out)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    template, code = out / TEMPLATE_NAME, out / "deployment.zip"
    if not template.is_file() or not code.is_file():
        raise SystemExit(f"chalice package wrote no {TEMPLATE_NAME} and deployment.zip into {out}")
    add_ca_bundles(stage, code)
    return Package(stage, template, code, missing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--out", type=Path, help="default: dist/<stage>")
    parser.add_argument(
        "--template-only", action="store_true", help="package even without the CA bundles, to check the template"
    )
    args = parser.parse_args(argv)
    result = package(args.stage, args.out or DIST / args.stage, template_only=args.template_only)
    print(f"package ({args.stage}): {result.template} and {result.code}")
    if result.missing_bundles:
        print(
            "NOT DEPLOYABLE (--template-only): " + missing_bundle_message(args.stage, result.missing_bundles),
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
