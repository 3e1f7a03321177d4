"""`make package STAGE=<stage>`: a packaged stage's whole stack as one CloudFormation (SAM) template.

    python -m tools.deploy.package --stage prod [--out dist/prod]

1. Checks the stage's connection budget and queue settings (tools.ops.budget) and refuses to package
   a stage that breaks a rule. The fit below the server's max_connections is checked when this
   machine knows the server (see tools.ops.budget), and by the migration at every deploy.
2. Fills each {{NAME}} of deploy/stack.yaml with the stage's value of NAME, or PROVISION_REVISION
   with a digest of what the migration does (so a deploy runs it again exactly when that changes).
3. Runs `chalice package --merge-template` into OUT: sam.yaml and deployment.zip.
4. Puts the CA bundles the stage names (MYSQL_CA_BUNDLE, REDIS_CA_BUNDLE) into deployment.zip at
   the same relative path. A bundle that is missing is reported: the package is still written,
   and a stack deployed from it fails at its migration with a message naming the setting.
"""

import argparse
import hashlib
import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from chalicelib.database.schema import MIGRATIONS_DIR
from tools.aws import LOCAL_AWS_ENV
from tools.deploy import gateway_responses
from tools.ops.budget import check
from tools.stage import (
    DEPLOY_TIME_STAND_INS,
    ROOT,
    is_packaged,
    outside_environment,
    stage_environment,
    stage_variables,
)

CHALICE = ROOT / ".venv" / "bin" / "chalice"
MERGE_TEMPLATE = ROOT / "deploy" / "stack.yaml"
DIST = ROOT / "dist"
TEMPLATE_NAME = "sam.yaml"
CA_BUNDLE_SETTINGS = ("MYSQL_CA_BUNDLE", "REDIS_CA_BUNDLE")
_MARKER = re.compile(r"\{\{([A-Z0-9_]+)\}\}")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:/-]*$")
CODE_VALUES = ("GATEWAY_RESPONSES",)  # made by this code, not by a stage's settings: not checked as one
# What the migrate function does, besides the stage's settings: a change here means a new revision.
PROVISION_SOURCES = (
    ROOT / "chalicelib" / "database" / "provision.py",
    ROOT / "chalicelib" / "database" / "accounts.py",
)
PROVISION_SETTINGS = ("MYSQL_DATABASE", "MYSQL_TLS", "CONSUMER_MAX_CONCURRENCY", "API_READ_SLOTS")


@dataclass(frozen=True)
class Package:
    stage: str
    template: Path
    code: Path
    missing_bundles: list[str]


def stage_values(stage: str) -> dict[str, str]:
    """The stage's settings (declared defaults included), as {{NAME}} markers see them, and the
    values this code computes (CODE_VALUES)."""
    env = stage_variables(stage)
    return {
        **env,
        "PROVISION_REVISION": provision_revision(env),
        "GATEWAY_RESPONSES": json.dumps(gateway_responses.definition_extension()),  # JSON is YAML
    }


def provision_revision(env: dict[str, str]) -> str:
    """A digest of the migrations, the account code and the settings they use."""
    digest = hashlib.sha256()
    for path in [*sorted(MIGRATIONS_DIR.glob("*.sql")), *PROVISION_SOURCES]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for name in PROVISION_SETTINGS:
        digest.update(f"{name}={env.get(name, '')}\0".encode())
    return digest.hexdigest()[:16]


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


def add_ca_bundles(stage: str, zip_path: Path) -> list[str]:
    """Add the CA bundles the stage names to the package; return the settings whose bundle is missing."""
    env = stage_environment(stage)
    missing = []
    with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED) as package:
        present = set(package.namelist())
        for setting in CA_BUNDLE_SETTINGS:
            bundle = env.get(setting)
            if not bundle:
                continue
            if Path(bundle).is_absolute():
                raise SystemExit(f"{setting}={bundle}: a packaged stage names a bundle relative to the project")
            source = ROOT / bundle
            if not source.is_file():
                missing.append(setting)
            elif bundle not in present:
                package.write(source, arcname=bundle)
                present.add(bundle)
    return missing


def package(stage: str, out: Path, max_connections: int | None = None) -> Package:
    """Check, render, package; return where the template and code are. `max_connections` is the
    target server's, when the caller knows it."""
    if not is_packaged(stage):
        raise SystemExit(f"stage {stage} is not a packaged stage (its SECRETS_SOURCE is not secretsmanager)")
    _, problems = check(stage, max_connections)
    if problems:
        raise SystemExit(f"budget check FAILED for stage {stage}; not packaging:\n  - " + "\n  - ".join(problems))
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
    return Package(stage, template, code, add_ca_bundles(stage, code))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--out", type=Path, help="default: dist/<stage>")
    args = parser.parse_args(argv)
    result = package(args.stage, args.out or DIST / args.stage)
    print(f"package ({args.stage}): {result.template.relative_to(ROOT)} and {result.code.relative_to(ROOT)}")
    for setting in result.missing_bundles:
        bundle = stage_environment(args.stage)[setting]
        print(
            f"WARNING: {setting} names {bundle}, which is not on this machine, so the package does not carry it."
            f" A stack deployed from this package fails at its migration, naming {setting}. See certs/README.md.",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
