"""What an item is, as a client sends it, and the query of GET /items."""

from pydantic import Field

from chalicelib.validation import Attributes, Strict

ITEM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class ItemIn(Strict):
    """The body of PUT /items/{id}."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)
    attributes: Attributes = Field(default_factory=dict)


class ItemListQuery(Strict):
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = None
