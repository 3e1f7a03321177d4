"""Items, the read-heavy resource: reads through the cache, writes to MySQL then invalidate."""

import re
from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import NotFoundError, ValidationError
from chalicelib.items.model import ITEM_ID_PATTERN, ItemIn, ItemListQuery
from chalicelib.items.store import ItemStore
from chalicelib.redis.cache import Cache, Loaded
from chalicelib.validation import decode_cursor, encode_cursor, invalid_cursor, validate

_ITEM_ID = re.compile(ITEM_ID_PATTERN)
_KIND = "item"
_PAGE_KIND = "items-page"


def check_item_id(item_id: str) -> str:
    """Return the id if it is a valid item id; raise ValidationError naming `id` otherwise."""
    if not _ITEM_ID.fullmatch(item_id):  # the whole string: `$` alone matches before a final newline
        raise ValidationError(
            "invalid request: id",
            details=[{"field": "id", "message": f"must match {ITEM_ID_PATTERN}"}],
        )
    return item_id


class ItemService:
    """GET, PUT and DELETE /items: cache-aside reads, writes that invalidate."""

    def __init__(self, store: ItemStore, cache: Cache, settings: Settings, writes: ItemStore | None = None) -> None:
        self._store = store  # reads anyone may cause: within the anonymous reads' slots
        self._writes = writes or store  # the admin's writes: within slots anonymous reads cannot take
        self._cache = cache
        self._settings = settings

    def _ttls(self, value: dict[str, Any] | None) -> tuple[int, int]:
        if value is None:
            return self._settings.item_absent_ttl_s, 0
        return self._settings.item_cache_ttl_s, self._settings.item_stale_ttl_s

    def get(self, item_id: str) -> Loaded:
        """The item, from the cache when fresh; raise NotFoundError when it does not exist."""
        check_item_id(item_id)
        loaded = self._cache.get_or_load(_KIND, item_id, lambda: self._store.get(item_id), self._ttls)
        if loaded.value is None:
            raise NotFoundError(f"item {item_id!r} does not exist")
        return loaded

    def list(self, params: dict[str, str]) -> dict[str, Any]:
        """A page of items ordered by id."""
        query = validate(ItemListQuery, params, "query")
        after = decode_cursor(query.cursor, ("after",))["after"] if query.cursor else None
        if after is not None and not _ITEM_ID.fullmatch(after):  # only an item's id: MySQL could not compare others
            raise invalid_cursor()
        # A page is cached briefly (ITEMS_PAGE_CACHE_TTL_S): a flood of list requests costs few MySQL reads.
        page = self._cache.get_or_load(
            _PAGE_KIND, f"{after or ''}/{query.limit}", lambda: self._page(after, query.limit), self._page_ttls
        ).value
        assert page is not None  # a page is never absent, only empty
        return page

    def _page(self, after: str | None, limit: int) -> dict[str, Any]:
        items, more = self._store.list(after, limit)
        return {"items": items, "next_cursor": encode_cursor({"after": items[-1]["id"]}) if more else None}

    def _page_ttls(self, _page: dict[str, Any] | None) -> tuple[int, int]:
        return self._settings.items_page_cache_ttl_s, 0

    def put(self, item_id: str, body: Any) -> tuple[dict[str, Any], bool]:
        """Create or replace an item; return it and whether it was created."""
        check_item_id(item_id)
        data = validate(ItemIn, body, "item")
        item, created = self._writes.put(item_id, data.name, data.description, data.attributes)
        self._invalidate(item_id)
        return item, created

    def delete(self, item_id: str) -> None:
        """Delete an item; raise NotFoundError if there was none."""
        check_item_id(item_id)
        deleted = self._writes.delete(item_id)
        self._invalidate(item_id)
        if not deleted:
            raise NotFoundError(f"item {item_id!r} does not exist")

    def _invalidate(self, item_id: str) -> None:
        ttl = self._settings.item_cache_ttl_s + self._settings.item_stale_ttl_s + self._settings.item_absent_ttl_s
        self._cache.invalidate(_KIND, item_id, ttl)
