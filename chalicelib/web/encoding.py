"""Compressed request bodies: `Content-Encoding: gzip` or `deflate`, inflated within the route's
size cap.

The cap holds before and after inflating, and inflating stops one byte past it: a small body
that would inflate to gigabytes (a "gzip bomb") costs no more than the cap. API Gateway inflates a
gzip body itself before the function runs and may leave the header: a body that does not start
as its encoding says (gzip's magic bytes, zlib's header) is taken as already inflated.
"""

import zlib

from chalicelib.errors import InvalidEncodingError, PayloadTooLargeError, UnsupportedMediaTypeError

ENCODINGS = ("gzip", "deflate", "identity")
_GZIP_MAGIC = b"\x1f\x8b"


def decoded_body(raw: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """The body as the client meant it; 413 past `max_bytes`, 415 for an unknown encoding, 400
    for a body that does not inflate."""
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(f"body is {len(raw)} bytes; at most {max_bytes} are accepted")
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return raw
    if encoding in ("gzip", "x-gzip"):
        return _inflate_gzip(raw, max_bytes) if raw.startswith(_GZIP_MAGIC) else raw
    if encoding == "deflate":
        if _is_zlib(raw):
            return _inflate(raw, zlib.MAX_WBITS, max_bytes)[0]
        try:  # some clients send a raw deflate stream, without zlib's header
            return _inflate(raw, -zlib.MAX_WBITS, max_bytes)[0]
        except InvalidEncodingError:
            return raw  # not deflate at all: inflated on the way (a JSON error names what is wrong)
    raise UnsupportedMediaTypeError(f"Content-Encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}")


def _is_zlib(raw: bytes) -> bool:
    """Whether the bytes start with a zlib header (deflate, and a checksum of the first two bytes)."""
    return len(raw) >= 2 and raw[0] & 0x0F == 8 and (raw[0] << 8 | raw[1]) % 31 == 0


def _inflate_gzip(raw: bytes, max_bytes: int) -> bytes:
    """Every member of a gzip stream (members may follow one another), within `max_bytes` in all."""
    body = b""
    rest = raw
    while rest:
        member, rest = _inflate(rest, 16 + zlib.MAX_WBITS, max_bytes - len(body))
        body += member
    return body


def _inflate(raw: bytes, wbits: int, max_bytes: int) -> tuple[bytes, bytes]:
    """One compressed stream inflated, and what follows it."""
    inflater = zlib.decompressobj(wbits)
    try:
        body = inflater.decompress(raw, max_bytes + 1)
    except zlib.error:
        raise InvalidEncodingError("the body does not inflate as its Content-Encoding says") from None
    if len(body) > max_bytes:
        raise PayloadTooLargeError("the body inflates past the most bytes accepted")
    if not inflater.eof:
        raise InvalidEncodingError("the compressed body is cut short")
    return body, inflater.unused_data
