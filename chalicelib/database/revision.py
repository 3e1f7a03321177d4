"""The migration's revision: a digest of what the migrate function does to a database.

`make package` writes it into the stack (the DatabaseMigration resource's Revision), so a deploy
runs the migration exactly when it changes; the deployed function computes its own from the same
files and settings, and so knows a request made for other code (a rollback's) from its own.
"""

import hashlib

from chalicelib.config import Settings
from chalicelib.database.schema import MIGRATIONS_DIR

_HERE = MIGRATIONS_DIR.parent
# The code besides the migrations that decides what a migration does.
PROVISION_SOURCES = (_HERE / "provision.py", _HERE / "accounts.py")


def provision_revision(settings: Settings) -> str:
    """A digest of the migrations, the account code and the settings they use."""
    digest = hashlib.sha256()
    for path in [*sorted(MIGRATIONS_DIR.glob("*.sql")), *PROVISION_SOURCES]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    used = {
        "MYSQL_DATABASE": settings.mysql.database,
        "MYSQL_TLS": settings.mysql.tls,
        "CONSUMER_MAX_CONCURRENCY": settings.consumer_max_concurrency,
        "API_READ_SLOTS": settings.api_read_slots,
    }
    for name, value in used.items():
        digest.update(f"{name}={value}\0".encode())
    return digest.hexdigest()[:16]


def migration_properties(settings: Settings) -> dict[str, str]:
    """The DatabaseMigration properties a stack sends this code in this configuration (the template
    fills MySQLHost, MySQLPort and MySQLAdminSecretArn from the same parameters as the function's
    environment): a request with others was made for other code, or another database."""
    return {
        "Revision": provision_revision(settings),
        "MySQLHost": settings.mysql.host,
        "MySQLPort": str(settings.mysql.port),
        "MySQLAdminSecretArn": settings.secrets.ids.get("mysql_admin", ""),
    }
