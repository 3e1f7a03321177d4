"""Which sources a key may touch: the source-pattern rule, defined once and rendered for Python
(chalicelib.keys, where a request's sources are checked once its body is parsed) and SQL (GET /logs).

A key's pattern is `*` (every source), a source name (that source), or a name ending in `*`
(every source that starts with what comes before the `*`). tests/functional/test_source_rule.py
runs one table of cases through both.
"""

ANY = "*"  # a pattern on its own: every source
PREFIX_MARK = "*"  # at the end of a pattern: the sources that start with the rest


def is_prefix(pattern: str) -> bool:
    """Whether the pattern names a prefix (and not every source)."""
    return pattern != ANY and pattern.endswith(PREFIX_MARK)


def source_allowed(source: str, patterns: list[str]) -> bool:
    """Whether a source matches one of the key's patterns."""
    for pattern in patterns:
        if pattern in (ANY, source) or (is_prefix(pattern) and source.startswith(pattern[:-1])):
            return True
    return False


def sql_condition(patterns: list[str], column: str = "source") -> tuple[str | None, list[str]]:
    """A WHERE condition on `column` that keeps the key's sources, and its arguments; None when the
    key may read every source."""
    if ANY in patterns:
        return None, []
    exact = [p for p in patterns if not is_prefix(p)]
    prefixes = [p[:-1] for p in patterns if is_prefix(p)]
    alternatives = [f"{column} IN (" + ", ".join(["%s"] * len(exact)) + ")"] if exact else []
    alternatives += [f"{column} LIKE %s"] * len(prefixes)
    if not alternatives:
        return "FALSE", []
    return "(" + " OR ".join(alternatives) + ")", [*exact, *(_like_prefix(p) for p in prefixes)]


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching what starts with `prefix` (whose _ and % are literal)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
