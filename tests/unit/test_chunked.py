"""Chunked request bodies for chalice local (tools/devstack/chunked.py): read whole, within a cap."""

import io

import pytest

from tools.devstack.chunked import ChunkedBodyError, read_chunked


def chunked(*chunks: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailer + b"\r\n"


def test_the_chunks_make_the_body_and_nothing_after_it_is_read():
    # GIVEN a chunked body (a chunk extension and a trailer field included), then the next request
    stream = io.BytesIO(chunked(b'{"logs":', b"[]}", trailer=b"X-Checksum: 1\r\n") + b"GET /health HTTP/1.1\r\n")
    # WHEN it is read THEN the body is the chunks joined, and the stream stands at the next request
    assert read_chunked(stream, 100) == b'{"logs":[]}'
    assert stream.read() == b"GET /health HTTP/1.1\r\n"


def test_a_chunk_extension_is_ignored():
    assert read_chunked(io.BytesIO(b"3;name=value\r\nabc\r\n0\r\n\r\n"), 100) == b"abc"


def test_a_body_past_the_cap_is_refused_before_its_chunk_is_read():
    # GIVEN a cap of 10 bytes and a second chunk that passes it
    stream = io.BytesIO(chunked(b"x" * 8, b"y" * 8))
    # WHEN it is read THEN it is a 413, and the oversized chunk was not read
    with pytest.raises(ChunkedBodyError) as refused:
        read_chunked(stream, 10)
    assert refused.value.status == 413
    assert stream.read(8) == b"y" * 8


@pytest.mark.parametrize(
    "sent",
    [
        b"zz\r\nab\r\n0\r\n\r\n",  # a size that is not hexadecimal
        b"-1\r\nab\r\n0\r\n\r\n",  # a negative size
        b"0x2\r\nab\r\n0\r\n\r\n",  # a prefix the grammar does not allow
        b"5\r\nab\r\n0\r\n\r\n",  # a chunk shorter than its size
        b"2\r\nabX\r\n0\r\n\r\n",  # a chunk not followed by CRLF
        b"2\nab\r\n0\r\n\r\n",  # a size line without CR
        b"2\r\nab\r\n",  # the stream ends before the last chunk
        b"0\r\n",  # the stream ends before the empty line
        b"1" * 5000 + b"\r\n",  # a size line longer than any real one
    ],
)
def test_a_malformed_body_is_a_400(sent):
    with pytest.raises(ChunkedBodyError) as refused:
        read_chunked(io.BytesIO(sent), 1 << 20)
    assert refused.value.status == 400
