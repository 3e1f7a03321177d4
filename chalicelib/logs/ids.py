"""Time-ordered ids (UUID version 7, RFC 9562) for the log entries the API names itself.

An id that starts with its time lands at the right end of `log_ids`' index, next to the ids
claimed just before it, so claiming it costs the same at 10 million ids as at none; a random
(version 4) id lands anywhere in the index (measured in bench/scale.py). Python 3.13's uuid
module has no uuid7 (3.14 has).
"""

import os
import time
from uuid import UUID

_MS_BITS = 48


def uuid7(unix_ms: int | None = None, entropy: bytes | None = None) -> UUID:
    """A version 7 UUID: 48 bits of Unix time in ms, then 74 random bits (version and variant set).
    `entropy` (10 bytes) replaces the random bits, for an id made from content."""
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    if not 0 <= ms < 1 << _MS_BITS:
        raise ValueError(f"{ms} ms is outside UUIDv7's 48-bit time")
    rand = int.from_bytes(entropy if entropy is not None else os.urandom(10), "big")  # 80 bits; 74 are used
    rand_a = rand >> 68  # 12 bits
    rand_b = rand & ((1 << 62) - 1)  # 62 bits
    return UUID(int=ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


def unix_ms(value: UUID) -> int:
    """The Unix time in ms a version 7 UUID carries."""
    return value.int >> 80
