"""TLS to the local MariaDB and Redis, verified against the CA bundle a stage names (the local CA
of tools/devstack/devcerts.py here, Amazon RDS's on AWS): what verifies, and what is refused."""

import dataclasses
import socket
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.errors import ConfigError
from chalicelib.mysql.connector import MySQLConnector, connect_within
from chalicelib.secrets import Credentials
from chalicelib.tls import verified_context
from tests.functional.conftest import SETTINGS
from tools.admin import admin_connection
from tools.devstack import devcerts
from tools.devstack.services import REDIS_TLS_PORT
from tools.stage import ROOT

CA = str(devcerts.PACKAGED_CA.relative_to(ROOT))  # certs/local-dev-ca.pem, as the stack stage names it
TLS_MYSQL = dataclasses.replace(SETTINGS.mysql, tls=True, ca_bundle=CA)


@pytest.fixture
def tls_only_user() -> Iterator[Credentials]:
    """An account that MySQL lets in over TLS only (REQUIRE SSL, as the migration makes them)."""
    credentials = Credentials(f"sluice_tls_{uuid.uuid4().hex[:8]}", "tls-password")
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s REQUIRE SSL", (credentials.username, credentials.password))
    yield credentials
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute("DROP USER IF EXISTS %s@'%%'", (credentials.username,))


def test_mysql_over_tls_verified_against_the_named_bundle(tls_only_user):
    conn = MySQLConnector(TLS_MYSQL, tls_only_user, use_database=False).connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
            row: Any = cur.fetchone()
            assert row["Value"].startswith("TLSv1.")
    finally:
        conn.close()


def test_a_tls_only_account_is_refused_without_tls(tls_only_user):
    with pytest.raises(Exception, match="1045"):
        MySQLConnector(SETTINGS.mysql, tls_only_user, use_database=False).connect()


def test_a_server_whose_certificate_the_bundle_does_not_trust_is_a_configuration_error(tmp_path, tls_only_user):
    # GIVEN a bundle with another CA than the one that signed the server's certificate
    other = tmp_path / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=another CA",
         "-keyout", str(tmp_path / "other.key"), "-out", str(other),
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
        check=True, capture_output=True,
    )  # fmt: skip
    connector = MySQLConnector(dataclasses.replace(TLS_MYSQL, ca_bundle=str(other)), tls_only_user, use_database=False)
    # WHEN the function connects THEN it refuses the server, and says it is the setting, not an outage
    with pytest.raises(ConfigError, match="does not verify against MYSQL_CA_BUNDLE"):
        connect_within(connector.connect, deadline=0)


def test_the_host_name_is_checked_against_the_certificate():
    # GIVEN Redis's TLS port, whose certificate names 127.0.0.1 and localhost
    context = verified_context(CA, "REDIS_CA_BUNDLE")
    with (
        socket.create_connection(("127.0.0.1", REDIS_TLS_PORT), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as verified,
    ):
        assert verified.version() in ("TLSv1.2", "TLSv1.3")
    # WHEN a client expects another name THEN the handshake fails, though the CA is trusted
    with (
        socket.create_connection(("127.0.0.1", REDIS_TLS_PORT), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match=r"mismatch|doesn't match"),
    ):
        context.wrap_socket(raw, server_hostname="sluice.invalid")
