"""The log viewer: one HTML page, its script and its stylesheet, served by the API itself.

The files live in chalicelib/web/viewer_files/ (Chalice packages chalicelib/) and are read once per
process. The page holds no data: it asks GET /logs, /logs/stats and /logs/tail with the key the
user pastes, through URLs relative to its own (so it works under any stage's base path).
"""

import functools
from pathlib import Path

from chalice.app import Response

from chalicelib.errors import NotFoundError

FILES = Path(__file__).with_name("viewer_files")
PAGE = "index.html"
# The assets the page loads, by the name in their URL (GET /ui/<name>), with their content types.
ASSETS = {"viewer.js": "text/javascript; charset=utf-8", "viewer.css": "text/css; charset=utf-8"}
# Nothing inline, nothing from another origin: script, style and requests only from this API.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # small files: revalidate, so a deploy shows at once
}


@functools.cache
def _read(name: str) -> str:
    """One of the viewer's files, read once per process."""
    return (FILES / name).read_text(encoding="utf-8")


def _answer(name: str, content_type: str) -> Response:
    return Response(body=_read(name), status_code=200, headers={**HEADERS, "Content-Type": content_type})


def page() -> Response:
    """GET /ui: the viewer's HTML page."""
    return _answer(PAGE, "text/html; charset=utf-8")


def asset(name: str) -> Response:
    """GET /ui/{asset}: the page's script or stylesheet; anything else is not found."""
    if name not in ASSETS:
        raise NotFoundError(f"the viewer has no such file; its files are {', '.join(sorted(ASSETS))}")
    return _answer(name, ASSETS[name])
