"""The source-pattern rule (chalicelib/keys/sources.py) holds the same in its two renderings:
Python (the API's own check) and SQL (GET /logs's filter, against the logs table's own column type)."""

import pytest

from chalicelib.keys.sources import source_allowed, sql_condition

# (source, the key's patterns, allowed)
CASES = [
    ("web-1", ["*"], True),
    ("web-1", ["web-1"], True),
    ("web-10", ["web-1"], False),
    ("web-1", ["web-1*"], True),  # a prefix covers the name itself
    ("web-10", ["web-1*"], True),
    ("web", ["web-*"], False),
    ("billing.eu", ["billing.*"], True),
    ("billing", ["billing.*"], False),
    ("api", ["web-*", "api"], True),
    ("web_1", ["web_*"], True),
    ("webx1", ["web_*"], False),  # _ is literal, not SQL's one-character wildcard
    ("Web-1", ["web-1", "web-*"], False),  # names are case-sensitive
    ("a:b/c", ["a:b/*"], True),
    ("ab", ["abc*"], False),
    ("api", [], False),
]


@pytest.mark.parametrize(("source", "patterns", "allowed"), CASES)
def test_python_and_sql_agree_on_each_case(source, patterns, allowed, admin_db):
    # GIVEN a source and a key's patterns
    # WHEN each rendering of the rule decides
    in_python = source_allowed(source, patterns)
    condition, args = sql_condition(patterns)
    with admin_db.cursor() as cur:
        # a one-row table whose column is the logs table's own (charset and collation included)
        cur.execute("CREATE TEMPORARY TABLE source_rule AS SELECT source FROM logs LIMIT 0")
        try:
            cur.execute("INSERT INTO source_rule (source) VALUES (%s)", (source,))
            cur.execute(f"SELECT COUNT(*) FROM source_rule WHERE {condition or 'TRUE'}", args)
            row = cur.fetchone()
        finally:
            cur.execute("DROP TEMPORARY TABLE source_rule")
    in_sql = row is not None and row[0] == 1
    # THEN both give the expected answer
    assert (in_python, in_sql) == (allowed, allowed)
