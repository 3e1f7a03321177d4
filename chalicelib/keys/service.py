"""Key management (admin only): make a key and show its token once, list keys, revoke one."""

import re
from typing import Any

from chalicelib.config import Settings
from chalicelib.errors import NotFoundError, ValidationError
from chalicelib.keys.gate import Gate
from chalicelib.keys.model import KEY_ID_PATTERN, ApiKey, KeyIn, new_key_id, new_token, token_hash
from chalicelib.keys.store import KeyStore
from chalicelib.validation import format_rfc3339, utc_now, validate


class KeyService:
    def __init__(self, store: KeyStore, gate: Gate, settings: Settings) -> None:
        self._store = store
        self._gate = gate
        self._settings = settings

    def create(self, body: Any) -> dict[str, Any]:
        """Make a key; the answer is the only place its token is ever shown."""
        data = validate(KeyIn, body, "key")
        rate = data.rate_per_s or self._settings.key_default_rate_per_s
        burst = data.burst or max(self._settings.key_default_burst, 1)
        token = new_token()
        key = ApiKey(
            id=new_key_id(),
            name=data.name,
            scopes=list(data.scopes),
            sources=list(data.sources),
            rate_per_s=rate,
            burst=burst,
            created_at=utc_now(),
            token_hash=token_hash(token),
        )
        self._store.insert(key)
        shown = key.public()
        return {
            "id": key.id,
            "key": token,
            **{k: shown[k] for k in ("name", "scopes", "sources", "rate_per_s", "burst")},
            "created_at": format_rfc3339(key.created_at),
        }

    def list(self) -> dict[str, Any]:
        """Every key, newest first, without tokens."""
        return {"keys": [key.public() for key in self._store.list()]}

    def revoke(self, key_id: str) -> None:
        """Revoke a key: refused from the next request on, by every cache (chalicelib/keys/gate.py); a
        key already revoked is revoked again in the caches, so a retry after a 503 completes it."""
        if not re.fullmatch(KEY_ID_PATTERN, key_id):
            raise ValidationError("invalid request: id", details=[{"field": "id", "message": "is not a key id"}])
        key = self._store.revoke(key_id)
        if key is None:
            raise NotFoundError(f"key {key_id} does not exist")
        self._gate.revoke(key)
