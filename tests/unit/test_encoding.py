"""Compressed request bodies (chalicelib/web/encoding.py): inflated within the cap, refused clearly."""

import gzip
import zlib

import pytest

from chalicelib.errors import InvalidEncodingError, PayloadTooLargeError, UnsupportedMediaTypeError
from chalicelib.web.encoding import decoded_body

BODY = b'{"logs": [' + b",".join([b'{"level": "info", "source": "web", "message": "hello"}'] * 50) + b"]}"


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "sent"),
    [
        (None, BODY),
        ("identity", BODY),
        ("gzip", gzip.compress(BODY)),
        ("GZip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("gzip", gzip.compress(BODY[:100]) + gzip.compress(BODY[100:])),  # two members, one after the other
        ("deflate", zlib.compress(BODY)),
        ("deflate", raw_deflate(BODY)),
        ("gzip", BODY),  # inflated on the way (API Gateway does), the header left as it was
        ("deflate", BODY),
    ],
)
def test_a_body_is_taken_as_the_client_meant_it(encoding, sent):
    # GIVEN a body as a client sends it WHEN it is decoded THEN it is the JSON the client wrote
    assert decoded_body(sent, encoding, len(BODY)) == BODY


def test_a_body_that_inflates_past_the_cap_is_refused_without_inflating_the_rest():
    # GIVEN 64 MiB of zeros in about 64 KiB of gzip (a "bomb"), and a cap of 64 KiB
    bomb = gzip.compress(b"\0" * (1 << 26), compresslevel=9)
    # WHEN it is decoded THEN it is refused as too large (inflating stopped one byte past the cap)
    with pytest.raises(PayloadTooLargeError):
        decoded_body(bomb, "gzip", 64 * 1024)


def test_the_cap_holds_before_inflating_and_after():
    # GIVEN a cap exactly the inflated size THEN it passes; one byte less THEN it is refused
    assert decoded_body(gzip.compress(BODY), "gzip", len(BODY)) == BODY
    with pytest.raises(PayloadTooLargeError):
        decoded_body(gzip.compress(BODY), "gzip", len(BODY) - 1)
    # AND a compressed body larger than the cap is refused before anything is inflated
    with pytest.raises(PayloadTooLargeError):
        decoded_body(gzip.compress(BODY), "gzip", 10)


@pytest.mark.parametrize(
    "sent",
    [
        gzip.compress(BODY)[:-12],  # cut short
        b"\x1f\x8b" + b"not gzip at all",  # gzip's magic, then garbage
        zlib.compress(BODY)[:2] + b"garbage",  # zlib's header, then garbage
    ],
)
def test_a_body_that_does_not_inflate_is_a_400(sent):
    encoding = "deflate" if sent.startswith(b"\x78") else "gzip"
    with pytest.raises(InvalidEncodingError):
        decoded_body(sent, encoding, 1 << 20)


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br"])
def test_an_encoding_it_does_not_speak_is_a_415(encoding):
    with pytest.raises(UnsupportedMediaTypeError):
        decoded_body(BODY, encoding, 1 << 20)
