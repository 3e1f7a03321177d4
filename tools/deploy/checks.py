"""What `make preflight`'s checks read (the stage's template and the parameters) and what each answers."""

from dataclasses import dataclass
from typing import Any

import botocore.exceptions


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    found: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.found}"
        return text if self.ok or not self.fix else f"{text}\n     fix: {self.fix}"


@dataclass(frozen=True)
class Preflight:
    """The stage, its packaged template (and its size), the parameters, the stack's name, the bucket."""

    stage: str
    template: dict[str, Any]
    template_bytes: int
    parameters: dict[str, str]
    stack: str
    bucket: str | None

    def value(self, name: str) -> str:
        """A parameter's value: the file's, else the template's default."""
        default = self.template["Parameters"].get(name, {}).get("Default", "")
        return str(self.parameters.get(name, default))

    def listed(self, name: str) -> list[str]:
        """A comma-separated parameter's items."""
        return [item for item in self.value(name).split(",") if item]

    @property
    def makes_endpoints(self) -> bool:
        """Whether the stack makes the SQS and Secrets Manager endpoints."""
        return self.value("CreateVpcEndpoints") == "true"

    @property
    def makes_s3_endpoint(self) -> bool:
        """Whether the stack makes the S3 gateway endpoint (on RouteTableIds)."""
        return bool(self.listed("RouteTableIds"))


def error_code(exc: botocore.exceptions.ClientError) -> str:
    """An AWS error's code (AccessDenied, ResourceNotFoundException, ...)."""
    return str(exc.response.get("Error", {}).get("Code", "error"))
