"""Ingestion and read keys: what a key is, how its token looks, and what it may touch.

A token is `slk_` and 43 URL-safe characters (32 random bytes), shown once when the key is made;
MySQL keeps only its SHA-256 (a token has 256 bits of entropy, so a fast hash is enough: nothing
can be guessed from it). A key has scopes (`logs:write`, `logs:read`) and source patterns: an
exact source name, a prefix ending in `*` (`billing.*`), or `*` for every source.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from chalicelib.keys.sources import ANY, PREFIX_MARK, source_allowed
from chalicelib.validation import format_rfc3339

TOKEN_PREFIX = "slk_"
TOKEN_BYTES = 32
SCOPE_WRITE = "logs:write"
SCOPE_READ = "logs:read"
SCOPES = (SCOPE_WRITE, SCOPE_READ)
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}[A-Za-z0-9_-]{{43,128}}$")
MAX_SOURCES = 50
# What a key's `sources` may hold: `*`, a source name, or a source-name prefix ending in `*`.
SOURCE_PATTERN_OR_PREFIX = rf"^({re.escape(ANY)}|[A-Za-z0-9_.:/-]{{1,64}}{re.escape(PREFIX_MARK)}?)$"
Scope = Literal["logs:write", "logs:read"]
SourcePattern = Annotated[str, Field(pattern=SOURCE_PATTERN_OR_PREFIX)]


def new_token() -> str:
    """A new key's token: recognisable by its prefix, 32 random bytes after it."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


KEY_ID_PATTERN = r"^key_[0-9a-f]{16}$"


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def token_hash(token: str) -> str:
    """What MySQL stores and Redis caches for a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    """Whether the text has a token's shape (a malformed one is refused without a lookup)."""
    return bool(_TOKEN.fullmatch(token))


class KeyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    scopes: list[str]
    sources: list[str]
    rate_per_s: int
    burst: int
    created_at: str


class KeyView(KeyFields):
    last_used_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class ApiKey:
    """A key as the API uses it on each request (no token: only its hash is known)."""

    id: str
    name: str
    scopes: list[str]
    sources: list[str]
    rate_per_s: int
    burst: int
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    token_hash: str = field(default="", repr=False)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def public(self) -> dict[str, Any]:
        """The key as GET /keys shows it (KeyView): never its token or hash."""
        return KeyView(
            id=self.id,
            name=self.name,
            scopes=self.scopes,
            sources=self.sources,
            rate_per_s=self.rate_per_s,
            burst=self.burst,
            created_at=format_rfc3339(self.created_at),
            last_used_at=format_rfc3339(self.last_used_at) if self.last_used_at else None,
            revoked_at=format_rfc3339(self.revoked_at) if self.revoked_at else None,
        ).model_dump()

    def cached(self) -> dict[str, Any]:
        """What Redis keeps for a request's check: scopes, sources and limits."""
        return {
            "id": self.id,
            "scopes": self.scopes,
            "sources": self.sources,
            "rate_per_s": self.rate_per_s,
            "burst": self.burst,
            "revoked": self.revoked,
        }


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key a request authenticated with."""

    key_id: str
    scopes: list[str]
    sources: list[str]

    def may(self, scope: str) -> bool:
        return scope in self.scopes

    def may_use_source(self, source: str) -> bool:
        return source_allowed(source, self.sources)

    @property
    def all_sources(self) -> bool:
        return "*" in self.sources


def matches(token: str, stored_hash: str) -> bool:
    """Constant-time comparison of a token with a stored hash."""
    return hmac.compare_digest(token_hash(token), stored_hash)


def _json_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a valid integer")
    return value


# An integer as JSON Schema has it: 5 or 5.0, but not true or "5" (pydantic's lax mode takes both).
# Last in an Annotated, after the bounds, so the schema keeps them as minimum and maximum.
JSON_INTEGER = BeforeValidator(_json_number)


def _default_scopes() -> list[Scope]:
    return ["logs:write"]


class KeyIn(BaseModel):
    """The body of POST /keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(default_factory=_default_scopes, min_length=1, max_length=10)
    # No default: a key for every source is asked for by name (`["*"]`), never made by leaving it out.
    sources: list[SourcePattern] = Field(min_length=1, max_length=MAX_SOURCES)
    rate_per_s: Annotated[int, Field(ge=1, le=100_000), JSON_INTEGER] | None = None
    burst: Annotated[int, Field(ge=1, le=1_000_000), JSON_INTEGER] | None = None

    @field_validator("scopes")
    @classmethod
    def _unique_scopes(cls, scopes: list[Scope]) -> list[Scope]:
        return sorted(set(scopes), key=SCOPES.index)

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, sources: list[str]) -> list[str]:
        return list(dict.fromkeys(sources))
