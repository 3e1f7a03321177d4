"""TLS contexts that verify the server against a CA bundle the stage names, with host name checks.

A bundle is a PEM file named by a setting (MYSQL_CA_BUNDLE, REDIS_CA_BUNDLE): a path relative to
the app's root (the function package's root on Lambda), or an absolute path. `make package`
puts the named file into the package. A missing or unreadable bundle is a ConfigError naming the
setting: there is no fallback to another CA store, let alone to no verification.
"""

import ssl
from functools import cache
from pathlib import Path

from chalicelib.errors import ConfigError

APP_ROOT = Path(__file__).resolve().parent.parent


def bundle_path(bundle: str, setting: str) -> Path:
    """The file a CA bundle setting names (relative paths start at the app's root); ConfigError if it is missing."""
    path = Path(bundle)
    path = path if path.is_absolute() else APP_ROOT / path
    if not path.is_file():
        raise ConfigError(f"{setting} names {bundle}, which is not in the package: see certs/README.md")
    return path


@cache
def verified_context(bundle: str, setting: str) -> ssl.SSLContext:
    """A client context trusting only the CA bundle `bundle`, built once per bundle (PyMySQL would
    otherwise build one per connection: about 38 ms each)."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(bundle_path(bundle, setting)))
    except ssl.SSLError as exc:
        raise ConfigError(f"{setting} names {bundle}, which is not a PEM bundle of CA certificates") from exc
    if context.cert_store_stats()["x509_ca"] == 0:
        raise ConfigError(f"{setting} names {bundle}, which holds no CA certificate")
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
