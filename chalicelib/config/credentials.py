"""Where a function's secrets come from: plain variables (local stages) or AWS Secrets Manager (a stack)."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from chalicelib.config.fields import FromSettings, Setting, setting

SECRETS_FROM_ENV = "env"  # local stages: plain values in environment variables
SECRETS_FROM_SECRETS_MANAGER = "secretsmanager"  # deployed stacks: AWS Secrets Manager

# Each secret a function may need, with its fields and, for the `env` source, the variable
# holding each field. With `secretsmanager`, <NAME>_SECRET_ID names the secret (an ARN), whose
# value is a JSON object with these fields (the shape RDS gives its own secrets).
SECRET_FIELDS: dict[str, dict[str, str]] = {
    "mysql_api": {"username": "MYSQL_API_USER", "password": "MYSQL_API_PASSWORD"},
    "mysql_writer": {"username": "MYSQL_WRITER_USER", "password": "MYSQL_WRITER_PASSWORD"},
    "mysql_admin": {"username": "MYSQL_ADMIN_USER", "password": "MYSQL_ADMIN_PASSWORD"},
    "mysql_maintainer": {"username": "MYSQL_MAINTAINER_USER", "password": "MYSQL_MAINTAINER_PASSWORD"},
    "admin_token": {"token": "ADMIN_TOKEN"},
    "redis": {"username": "REDIS_USERNAME", "password": "REDIS_PASSWORD"},
}

SECRET_MEANINGS = {
    "mysql_api": "the API's MySQL account (its connections are capped)",
    "mysql_writer": "the log writer's MySQL account (its connections are capped)",
    "mysql_admin": "the migration's administrator account (a stack's MySQLAdminSecretArn)",
    "mysql_maintainer": "the partition maintenance's MySQL account",
    "admin_token": "the administrator's bearer token: `PUT` and `DELETE /items`, `/keys`, `GET /health/dependencies`",
    "redis": "Redis's ACL user (none locally)",
}

# A plain field a stage may leave out when it sets the secret's other fields. A stack's template
# names its accounts the same way (deploy/stack.yaml, filled in by tools/deploy/package.py).
SECRET_DEFAULTS: dict[str, FromSettings] = {
    "MYSQL_API_USER": FromSettings("{MYSQL_DATABASE}_api"),
    "MYSQL_WRITER_USER": FromSettings("{MYSQL_DATABASE}_writer"),
    "MYSQL_MAINTAINER_USER": FromSettings("{MYSQL_DATABASE}_maintainer"),
}


# Never in a deployed function's environment: the development key the local bootstrap makes, and
# every secret's plain value (a stack reads its secrets from Secrets Manager).
LOCAL_ONLY_VARIABLES = ("DEV_API_KEY", *(variable for fields in SECRET_FIELDS.values() for variable in fields.values()))


def secret_id_variable(name: str) -> str:
    """The environment variable naming the Secrets Manager secret `name` (mysql_api -> MYSQL_API_SECRET_ID)."""
    return f"{name.upper()}_SECRET_ID"


def secret_variables() -> list[Setting]:
    """Every variable the two sources read, declared like the settings (for the loader's defaults and the docs)."""
    found = []
    for name, fields in SECRET_FIELDS.items():
        for key, variable in fields.items():
            meaning = f"`env` source: {SECRET_MEANINGS[name]}, its {key}"
            found.append(Setting(variable, meaning, default=SECRET_DEFAULTS.get(variable)))
        meaning = f"`secretsmanager` source: the secret (ARN) holding {SECRET_MEANINGS[name]}; set by the stack"
        found.append(Setting(secret_id_variable(name), meaning, default=None))
    return found


@dataclass(frozen=True)
class SecretSettings:
    """Where the function's secrets come from. Only the secrets a function needs are configured."""

    source: str = field(
        metadata=setting(
            env="SECRETS_SOURCE",
            meaning=(
                "where credentials and the admin token come from (chalicelib/secrets.py): `env`, plain variables"
                " (local stages), or `secretsmanager`, AWS Secrets Manager read once per cold start (a stack)."
                " A password MySQL refuses makes the function read its secret again, once (rotation)"
            ),
        )
    )
    ids: Mapping[str, str] = field(default_factory=dict)  # secretsmanager: name -> secret ARN or name
    plain: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # env: name -> fields
