"""A CA bundle setting that names nothing usable is refused by name, never worked around."""

import pytest

from chalicelib.errors import ConfigError
from chalicelib.tls import bundle_path, verified_context


def test_a_missing_bundle_names_the_setting():
    with pytest.raises(ConfigError, match=r"MYSQL_CA_BUNDLE names certs/nowhere\.pem, which is not in the package"):
        bundle_path("certs/nowhere.pem", "MYSQL_CA_BUNDLE")


def test_a_file_without_certificates_is_refused(tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"REDIS_CA_BUNDLE names .*(not a PEM bundle|no CA certificate)"):
        verified_context(str(empty), "REDIS_CA_BUNDLE")
