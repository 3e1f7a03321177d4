"""A CA bundle that is not on this machine, as `make package` and `make preflight` would see it."""

import pytest

from tools.stage import stage_environment


def name_a_missing_bundle(monkeypatch: pytest.MonkeyPatch, bundle: str) -> None:
    """Make every stage name `bundle` (a file that does not exist) as its MYSQL_CA_BUNDLE, for packaging."""
    monkeypatch.setattr(
        "tools.deploy.package.stage_environment", lambda stage: {**stage_environment(stage), "MYSQL_CA_BUNDLE": bundle}
    )
