"""sluice's HTTP API, typed: send entries, read them back; failures carry sluice's error code and request id."""

import gzip
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_ENCODE_SLICE = 10  # entries of a batch encoded to JSON at a time


def new_id(ms: int | None = None) -> str:
    """A time-ordered id (UUID version 7) of `ms` (now, by default): sluice stores an id once, so a
    retry with it is safe."""
    ms = time.time_ns() // 1_000_000 if ms is None else ms
    rand = int.from_bytes(os.urandom(10), "big")
    return str(uuid.UUID(int=ms << 80 | 0x7 << 76 | (rand >> 68) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))))


@dataclass
class SluiceError(Exception):
    """sluice refused or failed a request (`status` 0: it could not be reached)."""

    status: int
    code: str
    message: str
    request_id: str = ""
    retry_after_s: float | None = None
    details: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        where = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.status} {self.code}: {self.message}{where}"

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later: sluice unreachable or busy (502, 503, 504), or a 429."""
        return self.status in (0, 429, 502, 503, 504)


class Client:
    """A key's view of sluice: `send`, `send_batch` (gzip-compressed) and `query`."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 5.0) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s

    def send(self, entry: Mapping[str, Any]) -> str:
        """Queue one entry (POST /logs); its id."""
        return str(self._request("POST", "/logs", dict(entry))["id"])

    def send_batch(self, entries: Sequence[Mapping[str, Any]]) -> list[str]:
        """Queue entries together (POST /logs/batch, at most 500): all of them, or none."""
        # Encoded a slice at a time, letting other threads run in between (a logging thread waits
        # for the GIL no longer than one slice takes, not a whole batch).
        parts = []
        for start in range(0, len(entries), _ENCODE_SLICE):
            parts.append(_json([dict(e) for e in entries[start : start + _ENCODE_SLICE]])[1:-1])
            time.sleep(0)
        body = b'{"logs":[' + b",".join(parts) + b"]}"
        return [str(i) for i in self._request("POST", "/logs/batch", body)["ids"]]

    def query(self, **filters: str | int) -> dict[str, Any]:
        """A page of stored entries (GET /logs): source, level, since, until, limit, cursor."""
        return self._request("GET", "/logs?" + urllib.parse.urlencode(filters) if filters else "/logs")

    def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = gzip.compress(body if isinstance(body, bytes) else _json(body), compresslevel=5)
            headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
        request = urllib.request.Request(self._base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
                return answer
        except urllib.error.HTTPError as failed:
            raise _error(failed.code, failed.headers.get("Retry-After"), failed.read()) from None
        except (OSError, ValueError) as failed:  # refused, reset, timed out, or not JSON
            raise SluiceError(0, "unreachable", str(failed)) from None


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def _error(status: int, retry_after: str | None, raw: bytes) -> SluiceError:
    try:
        error = json.loads(raw)["error"]
    except (ValueError, KeyError, TypeError):
        error = {}
    return SluiceError(
        status,
        str(error.get("code", "error")),
        str(error.get("message", raw[:200].decode(errors="replace"))),
        str(error.get("request_id", "")),
        float(retry_after) if retry_after and retry_after.isdigit() else None,
        list(error.get("details") or []),
    )
