"""Bring a stage's MySQL database to what this code needs, as an administrator: the database, its
schema (the migrations), the API and writer accounts, and a connection budget that fits the server.

The `migrate` function runs this after each deploy (a CloudFormation custom resource, or
`make migrate`); the local bootstrap runs the same code with the local server's root account.
"""

import dataclasses
from dataclasses import dataclass
from typing import Any

import pymysql.cursors
from pymysql.connections import Connection

from chalicelib.config import Settings
from chalicelib.database.accounts import (
    API_GRANTS,
    MAINTAINER_CONNECTIONS,
    MAINTAINER_GRANTS,
    WRITER_GRANTS,
    DatabaseUser,
    ensure_user,
)
from chalicelib.database.budget import fit_problem
from chalicelib.database.schema import Migration, load_migrations, migrate
from chalicelib.errors import ConfigError
from chalicelib.mysql.connector import MySQLConnector
from chalicelib.secrets import Credentials, SecretStore


@dataclass(frozen=True)
class ProvisionResult:
    database: str
    schema_version: int
    applied: list[int]
    max_connections: int
    budget: int  # W + R + reserve

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "schema_version": self.schema_version,
            "applied": self.applied,
            "max_connections": self.max_connections,
            "budget": self.budget,
        }


def provision(
    admin: Connection,
    settings: Settings,
    api: Credentials,
    writer: Credentials,
    maintainer: Credentials,
    migrations: list[Migration] | None = None,
) -> ProvisionResult:
    """Database, migrations, accounts. Raises ConfigError when the budget does not fit the server,
    before anything is changed; MigrationError when the schema cannot be brought up to date."""
    max_connections = _max_connections(admin)
    problem = fit_problem(
        settings.consumer_max_concurrency, settings.api_read_slots, settings.admin_reserve_connections, max_connections
    )
    if problem:
        raise ConfigError(problem)
    database = settings.mysql.database
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    admin.select_db(database)
    result = migrate(admin, load_migrations() if migrations is None else migrations)
    require_tls = settings.mysql.tls
    ensure_user(admin, database, DatabaseUser(api, settings.api_read_slots, API_GRANTS), require_tls)
    ensure_user(admin, database, DatabaseUser(writer, settings.consumer_max_concurrency, WRITER_GRANTS), require_tls)
    ensure_user(admin, database, DatabaseUser(maintainer, MAINTAINER_CONNECTIONS, MAINTAINER_GRANTS), require_tls)
    budget = settings.consumer_max_concurrency + settings.api_read_slots + settings.admin_reserve_connections
    return ProvisionResult(database, result.version_after, result.applied, max_connections, budget)


def provision_database(settings: Settings, secrets: SecretStore) -> dict[str, Any]:
    """provision() with the stage's administrator account (the mysql_admin secret), over the
    stage's connection settings (TLS and CA bundle included). Each run reads the secrets afresh:
    it sets the accounts' passwords, so it must use the current values."""
    for name in ("mysql_admin", "mysql_api", "mysql_writer", "mysql_maintainer"):
        secrets.forget(name)
    conn = admin_connector(settings, secrets).connect()
    try:
        return provision(
            conn,
            settings,
            secrets.credentials("mysql_api"),
            secrets.credentials("mysql_writer"),
            secrets.credentials("mysql_maintainer"),
        ).to_dict()
    finally:
        conn.close()


def admin_connector(settings: Settings, secrets: SecretStore) -> MySQLConnector:
    """The administrator's connections: a wait for a lock ends at MYSQL_STATEMENT_TIMEOUT_S (DDL stalls
    writers); the client waits MYSQL_ADMIN_READ_TIMEOUT_S for a statement (a migration's DDL is long)."""
    return MySQLConnector(
        dataclasses.replace(settings.mysql, read_timeout_s=settings.mysql.admin_read_timeout_s),
        secrets.source("mysql_admin"),
        use_database=False,
        lock_wait_s=settings.mysql.statement_timeout_s,
    )


def _max_connections(admin: Connection) -> int:
    with admin.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute("SELECT @@GLOBAL.max_connections")
        row = cur.fetchone()
    assert row is not None
    return int(row[0])
