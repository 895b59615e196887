"""Server-side protocol limits for the edge's HTTP server (aiohttp `handler_args`).

- Request line and each header field: at most `server.max_header_bytes`;
  at most `server.max_headers` header lines. aiohttp's parser answers 400
  (and closes) past either cap, before any handler runs.
- The header read timeout is aiohttp's keep-alive timer, set to
  `server.header_timeout_s`: it is armed when a connection opens and again
  when an answer has been sent, is not pushed back by arriving bytes, and
  closes the connection if no complete request head has arrived by then. So
  one deadline bounds both an idle keep-alive connection and a request head
  that trickles in (slowloris); it never fires while a request is handled.
- Lingering: when the edge answers before reading a body (a 413 on the
  token route), aiohttp keeps reading and discarding the rest for a while so
  the client can read the answer before the connection closes. That is
  capped at `min(2 s, server.header_timeout_s)`, not aiohttp's 10 s, so a
  refused upload cannot hold a connection open for long.
- Framing errors (CL+TE, duplicate Content-Length, obs-fold, bare LF, bad
  chunk sizes) are refused by the same parser with 400 and a closed
  connection, so nothing ambiguous is ever forwarded.
"""

from __future__ import annotations

from typing import Any

from .config import ServerSettings

__all__ = ["handler_args"]

_MAX_LINGER_S = 2.0


def handler_args(server: ServerSettings) -> dict[str, Any]:
    return {
        "max_line_size": server.max_header_bytes,
        "max_field_size": server.max_header_bytes,
        "max_headers": server.max_headers,
        "keepalive_timeout": server.header_timeout_s,
        "lingering_time": min(_MAX_LINGER_S, server.header_timeout_s),
        # Request bodies stay as sent: forwarded byte for byte with their
        # Content-Encoding, and refused (415) on the token route by our own
        # check, never decoded (or failed on, for a codec not installed) here.
        "auto_decompress": False,
    }
