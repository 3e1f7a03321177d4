"""Request bodies sent with `Transfer-Encoding: chunked` (RFC 9112 §7.1), read for chalice local,
which reads only Content-Length (an OpenTelemetry JavaScript exporter streams its body in chunks).

The body is held to a cap as it is read: past it the request is refused at once, and so is a
malformed chunk; the caller then answers and closes the connection, since what follows on it can
no longer be told apart from the body.
"""

import re
from typing import BinaryIO

_CHUNK_SIZE = re.compile(rb"^([0-9A-Fa-f]{1,16})(;[^\r\n]*)?\r\n$")
_LINE_MAX_BYTES = 4096  # a chunk-size line or a trailer line, extensions included
_TRAILER_MAX_LINES = 64


class ChunkedBodyError(Exception):
    """A chunked body refused: `status` 413 past the cap, 400 when malformed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def read_chunked(stream: BinaryIO, max_bytes: int) -> bytes:
    """The body of a chunked request, read from `stream` up to and including its last chunk and
    trailer; raises ChunkedBodyError."""
    body = bytearray()
    while True:
        match = _CHUNK_SIZE.match(stream.readline(_LINE_MAX_BYTES + 1))
        if match is None:
            raise ChunkedBodyError(400, "a chunk's size line is malformed")
        size = int(match.group(1), 16)
        if size == 0:
            break
        if len(body) + size > max_bytes:
            raise ChunkedBodyError(413, f"the body is larger than {max_bytes} bytes, the most accepted")
        chunk = stream.read(size)
        if len(chunk) != size or stream.read(2) != b"\r\n":
            raise ChunkedBodyError(400, "a chunk is shorter than its size says, or not followed by CRLF")
        body += chunk
    for _ in range(_TRAILER_MAX_LINES):  # trailer fields, then an empty line
        line = stream.readline(_LINE_MAX_BYTES + 1)
        if line == b"\r\n":
            return bytes(body)
        if not line.endswith(b"\r\n"):
            break
    raise ChunkedBodyError(400, "the chunked body does not end with an empty line")
