"""Migration files: naming, numbering, and how a file splits into statements."""

import pytest

from chalicelib.database.schema import Migration, latest_version, load_migrations
from chalicelib.errors import MigrationError


def test_the_projects_migrations_are_numbered_from_one_without_gaps():
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert latest_version(migrations) == len(migrations)
    assert all(m.statements() for m in migrations)


def test_a_file_splits_at_semicolons_that_end_a_line_and_drops_comment_lines():
    migration = Migration(
        1, "x", "-- a comment; not a statement\nCREATE TABLE a (s VARCHAR(3) DEFAULT ';');\n\nSELECT 1;\n"
    )
    assert migration.statements() == ["CREATE TABLE a (s VARCHAR(3) DEFAULT ';')", "SELECT 1"]


def test_the_checksum_follows_the_text():
    assert Migration(1, "x", "SELECT 1;").checksum == Migration(1, "x", "SELECT 1;").checksum
    assert Migration(1, "x", "SELECT 1;").checksum != Migration(1, "x", "SELECT 2;").checksum


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        (["0001_a.sql", "0003_c.sql"], "without gaps"),
        (["0002_b.sql"], "without gaps"),
        (["1_a.sql"], "not named NNNN_name.sql"),
        (["0001_Bad-Name.sql"], "not named NNNN_name.sql"),
    ],
)
def test_a_misnamed_or_misnumbered_file_is_refused(tmp_path, files, needle):
    for name in files:
        (tmp_path / name).write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=needle):
        load_migrations(tmp_path)


def test_a_guard_comment_goes_with_the_next_statement_only():
    migration = Migration(
        1, "x", "-- unless: SELECT 1 FROM t WHERE x = 'y'\nALTER TABLE t ADD INDEX i (x);\nSELECT 2;\n"
    )
    assert migration.guarded_statements() == [
        ("SELECT 1 FROM t WHERE x = 'y'", "ALTER TABLE t ADD INDEX i (x)"),
        (None, "SELECT 2"),
    ]
