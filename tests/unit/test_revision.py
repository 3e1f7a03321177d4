"""The migration's revision: what the package writes into the stack and the function computes."""

import dataclasses

from chalicelib.database.revision import provision_revision
from tools.stage import stage_settings


def test_the_revision_follows_the_settings_the_migration_uses_and_no_other():
    # GIVEN the prod stage's settings
    settings = stage_settings("prod")
    # WHEN one setting the migration uses changes THEN the revision changes; a setting it does not
    # use leaves the revision as it was
    more_slots = dataclasses.replace(settings, api_read_slots=settings.api_read_slots + 1)
    other_cache = dataclasses.replace(settings, item_cache_ttl_s=settings.item_cache_ttl_s + 1)
    assert provision_revision(more_slots) != provision_revision(settings)
    assert provision_revision(other_cache) == provision_revision(settings)
