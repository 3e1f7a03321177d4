"""A private certificate authority for the local servers, so the packaged stack runs with TLS on,
verified, as it does on AWS.

    .data/tls/ca.pem, ca.key          the CA (10 years)
    .data/tls/server.pem, server.key  MariaDB's and Redis's certificate for 127.0.0.1 and localhost
    certs/local-dev-ca.pem            the CA certificate again, where the `stack` stage names it
                                      (MYSQL_CA_BUNDLE, REDIS_CA_BUNDLE) so its package carries it

Made with the openssl command when missing, and again when the server certificate has less than
30 days left. The other local stages connect without TLS and do not care.
"""

import shutil
import subprocess
from pathlib import Path

from tools.stage import ROOT

TLS_DIR = ROOT / ".data" / "tls"
CA_CERT = TLS_DIR / "ca.pem"
CA_KEY = TLS_DIR / "ca.key"
SERVER_CERT = TLS_DIR / "server.pem"
SERVER_KEY = TLS_DIR / "server.key"
PACKAGED_CA = ROOT / "certs" / "local-dev-ca.pem"
RENEW_BEFORE_S = 30 * 24 * 3600

# Python 3.13 verifies strictly (VERIFY_X509_STRICT): key usages and key identifiers must be there.
_CA_CONFIG = """[req]
prompt = no
distinguished_name = name
x509_extensions = ca
[name]
CN = sluice local development CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""
_SERVER_EXTENSIONS = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("openssl is not installed; run scripts/ensure-system-packages.sh (make up does)")
    subprocess.run([openssl, *args], check=True, capture_output=True, cwd=TLS_DIR)


def _valid_for_a_while(cert: Path) -> bool:
    if not cert.is_file():
        return False
    openssl = shutil.which("openssl") or "openssl"
    check = subprocess.run(
        [openssl, "x509", "-checkend", str(RENEW_BEFORE_S), "-noout", "-in", str(cert)],
        check=False,
        capture_output=True,
    )
    return check.returncode == 0


def ensure() -> None:
    """Make the CA and the server certificate if they are missing or about to expire."""
    TLS_DIR.mkdir(parents=True, exist_ok=True)
    if not (_valid_for_a_while(CA_CERT) and CA_KEY.is_file()):
        (TLS_DIR / "ca.cnf").write_text(_CA_CONFIG)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650", "-config", "ca.cnf",
                 "-keyout", CA_KEY.name, "-out", CA_CERT.name)  # fmt: skip
        SERVER_CERT.unlink(missing_ok=True)
    if not (_valid_for_a_while(SERVER_CERT) and SERVER_KEY.is_file()):
        (TLS_DIR / "server.ext").write_text(_SERVER_EXTENSIONS)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", SERVER_KEY.name,
                 "-out", "server.csr")  # fmt: skip
        _openssl(
            "x509", "-req", "-sha256", "-days", "825", "-in", "server.csr", "-CA", CA_CERT.name,
            "-CAkey", CA_KEY.name, "-CAcreateserial", "-extfile", "server.ext", "-out", SERVER_CERT.name,
        )  # fmt: skip
    PACKAGED_CA.parent.mkdir(parents=True, exist_ok=True)
    if not PACKAGED_CA.is_file() or PACKAGED_CA.read_bytes() != CA_CERT.read_bytes():
        shutil.copyfile(CA_CERT, PACKAGED_CA)
