"""Search in the logs (`q=` and `attr.<name>=` of GET /logs and GET /logs/tail), and its SQL.

`q` holds words and "quoted phrases"; an entry matches when its message contains every one of
them, ignoring case (as `grep -i -F` would find each): `time` matches `Timeout`, `"disk full"`
matches those two words with one space between. A `"` that starts a word starts a phrase; `\"`
is a quote and `\\` a backslash (any other backslash is itself).

`attr.<name>=<value>` matches an entry whose top-level attribute `name` is a string, number or
boolean written exactly as `value` (`attr.status=500` finds 500 and "500"; `attr.ok=true` finds
true and "true").

Every value reaches MySQL as a parameter, and LIKE's own characters (`%`, `_`) are escaped, so a
search matches its text literally and never changes the query. A search scans the rows of its
time range (no index holds words): GET /logs bounds the range (SEARCH_MAX_SPAN_S).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import ValidationError

Q_MAX_CHARS = 512
SEARCH_HELP = (
    'words and "phrases" the message contains, any case (\\" a quote, \\\\ a backslash); with attr.<name>=<value>'
    " (top-level attribute equals), a search of since..until (default: the last hour; at most SEARCH_MAX_SPAN_S)"
)
Q_MAX_TERMS = 16
ATTR_PREFIX = "attr."
ATTR_NAME = re.compile(r"^[A-Za-z0-9_.:@/-]{1,128}$")
ATTR_VALUE_MAX_CHARS = 1024
ATTR_MAX_FILTERS = 8
_ESCAPABLE = ('"', "\\")
_LIKE_ESCAPE = "!"


@dataclass(frozen=True)
class Search:
    """What the message must contain, and the attributes it must have."""

    terms: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms or self.attributes)


def parse_search(params: Mapping[str, str]) -> Search:
    """The search of a query string; ValidationError naming the parameter that is not one."""
    terms = _terms(params.get("q", ""))
    attributes = []
    for name, value in params.items():
        if not name.startswith(ATTR_PREFIX):
            continue
        attribute = name[len(ATTR_PREFIX) :]
        if not ATTR_NAME.match(attribute):
            raise _invalid(name, "the attribute's name: 1..128 of letters, digits and _.:@/-")
        if len(value) > ATTR_VALUE_MAX_CHARS:
            raise _invalid(name, f"at most {ATTR_VALUE_MAX_CHARS} characters")
        attributes.append((attribute, value))
    if len(attributes) > ATTR_MAX_FILTERS:
        raise _invalid("attr.*", f"at most {ATTR_MAX_FILTERS} attribute filters")
    return Search(terms, tuple(sorted(attributes)))


def _terms(q: str) -> tuple[str, ...]:
    if len(q) > Q_MAX_CHARS:
        raise _invalid("q", f"at most {Q_MAX_CHARS} characters")
    found: list[str] = []
    i = 0
    while i < len(q):
        if q[i].isspace():
            i += 1
            continue
        phrase = q[i] == '"'
        i += 1 if phrase else 0
        text: list[str] = []
        while i < len(q) and (q[i] != '"' if phrase else not q[i].isspace()):
            escaped = q[i] == "\\" and i + 1 < len(q) and q[i + 1] in _ESCAPABLE
            text.append(q[i + 1] if escaped else q[i])
            i += 2 if escaped else 1
        if phrase and i >= len(q):
            raise _invalid("q", 'a phrase\'s closing " is missing (\\" is a quote)')
        i += 1 if phrase else 0
        if text:
            found.append("".join(text))
    if len(found) > Q_MAX_TERMS:
        raise _invalid("q", f"at most {Q_MAX_TERMS} words and phrases")
    return tuple(found)


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError(f"invalid query: {field}", details=[{"field": field, "message": message}])


def search_conditions(search: Search) -> tuple[list[str], list[Any]]:
    """The WHERE conditions (over `message` and `attributes`) and their arguments."""
    where: list[str] = []
    args: list[Any] = []
    for term in search.terms:
        where.append(f"LOWER(message) LIKE LOWER(%s) ESCAPE '{_LIKE_ESCAPE}'")
        args.append(f"%{like_literal(term)}%")
    for name, value in search.attributes:
        path = f'$."{name}"'
        where.append(
            "JSON_TYPE(JSON_EXTRACT(attributes, %s)) NOT IN ('OBJECT', 'ARRAY', 'NULL')"
            " AND JSON_UNQUOTE(JSON_EXTRACT(attributes, %s)) = %s"
        )
        args.extend([path, path, value])
    return where, args


def like_literal(text: str) -> str:
    """`text` as a LIKE pattern that matches exactly it (escaped with `!`)."""
    e = _LIKE_ESCAPE
    return text.replace(e, e + e).replace("%", e + "%").replace("_", e + "_")
