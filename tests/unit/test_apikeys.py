"""What a key's token looks like, and which sources its patterns cover."""

import pytest

from chalicelib.errors import ValidationError
from chalicelib.keys.model import KeyIn, looks_like_token, new_token, token_hash
from chalicelib.keys.sources import source_allowed
from chalicelib.validation import validate


def test_a_new_token_is_long_random_and_recognisable():
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(t.startswith("slk_") and len(t) == 4 + 43 and looks_like_token(t) for t in tokens)
    assert len(token_hash(next(iter(tokens)))) == 64


@pytest.mark.parametrize("text", ["", "slk_", "slk_short", "key_" + "a" * 43, "slk_" + "a" * 42, "slk_" + "é" * 43])
def test_text_without_a_tokens_shape_is_not_one(text):
    assert not looks_like_token(text)


@pytest.mark.parametrize(
    ("source", "patterns", "allowed"),
    [
        ("web-1", ["web-1"], True),
        ("web-10", ["web-1"], False),
        ("billing.eu", ["billing.*"], True),
        ("billing", ["billing.*"], False),
        ("anything", ["*"], True),
        ("web-2", ["web-1", "web-*"], True),
        ("api", [], False),
    ],
)
def test_a_pattern_is_an_exact_name_a_prefix_or_everything(source, patterns, allowed):
    assert source_allowed(source, patterns) is allowed


@pytest.mark.parametrize("pattern", ["*", "web-1", "billing.*", "a*", "x" * 64, "x" * 64 + "*"])
def test_good_patterns(pattern):
    assert validate(KeyIn, {"name": "k", "sources": [pattern]}).sources == [pattern]


@pytest.mark.parametrize("pattern", ["", "**", "*x", "a b", "x" * 65, "web-*-eu", "ünï"])
def test_bad_patterns(pattern):
    with pytest.raises(ValidationError):
        validate(KeyIn, {"name": "k", "sources": [pattern]})


def test_a_new_key_defaults_to_writing_names_its_sources_and_names_a_bad_field():
    key = validate(KeyIn, {"name": "k", "sources": ["web-1"]})
    assert (key.scopes, key.sources, key.rate_per_s, key.burst) == (["logs:write"], ["web-1"], None, None)
    with pytest.raises(ValidationError) as unnamed:
        validate(KeyIn, {"name": "k"})  # a key for every source says "*"; it is never the default
    assert [d["field"] for d in unnamed.value.details] == ["sources"]
    many = {"name": "k", "sources": ["*"], "scopes": ["logs:read", "logs:write", "logs:read"]}
    assert validate(KeyIn, many).scopes == [
        "logs:write",
        "logs:read",
    ]
    with pytest.raises(ValidationError) as refused:
        validate(KeyIn, {"name": "k", "sources": ["web-1", "not a source"]})
    assert [d["field"] for d in refused.value.details] == ["sources.1"]


@pytest.mark.parametrize("field", ["rate_per_s", "burst"])
@pytest.mark.parametrize("value", [True, False, 5.5, "5"])
def test_a_rate_or_burst_must_be_a_json_integer(field, value):
    # (found by the fuzz suite: {"rate_per_s": true} made a key limited to 1 entry/s)
    with pytest.raises(ValidationError) as refused:
        validate(KeyIn, {"name": "k", "sources": ["*"], field: value})
    assert [d["field"] for d in refused.value.details] == [field]


def test_a_rate_and_burst_that_are_integers_are_kept():
    key = validate(KeyIn, {"name": "k", "sources": ["*"], "rate_per_s": 5, "burst": 10})
    assert (key.rate_per_s, key.burst) == (5, 10)
    # JSON Schema's integer includes 195.0 (as the published schema, and the fuzz suite, say)
    assert validate(KeyIn, {"name": "k", "sources": ["*"], "burst": 195.0}).burst == 195
