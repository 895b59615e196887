"""Credentials in query strings never reach the logs.

Clients put tokens in query strings in two places: the legacy outage retry
(`expired_token=<last active token>`) and the backend SDK's handshake
(`__session=<token>`); `__clerk_db_jwt` is a credential too. The access log
writes the request line with its query, so `RedactQueryTokens` (a logging
filter, installed on the `aiohttp.access` logger by the app factory)
replaces those values with `<redacted:hash>` (the 12-character hint of
`tokenlog.token_hint`, enough to correlate two lines) before any handler
sees the record, and then every other JWT-shaped run on the line (under a
percent-encoded or unknown key, in the path, in a Referer) with `<jwt:hash>`.
"""

from __future__ import annotations

import logging
import re

from .tokenlog import hash_jwts, token_hint

__all__ = ["QUERY_CREDENTIALS", "RedactQueryTokens", "install_access_log_redaction", "redact"]

QUERY_CREDENTIALS = ("expired_token", "__session", "__clerk_db_jwt", "token")
_PATTERN = re.compile(
    r"(?P<key>(?:^|(?<=[?&;\s]))(?:" + "|".join(map(re.escape, QUERY_CREDENTIALS)) + r")=)"
    r"(?P<value>[^&\s\"]+)"
)


def redact(text: str) -> str:
    """`text` with the values of credential query parameters, and any other
    JWT-shaped run, replaced by a hint."""
    keyed = _PATTERN.sub(lambda m: f"{m['key']}<redacted:{token_hint(m['value'])}>", text)
    return hash_jwts(keyed)


class RedactQueryTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_access_log_redaction(logger_name: str = "aiohttp.access") -> None:
    """Add the filter to the access logger once per process."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(existing, RedactQueryTokens) for existing in logger.filters):
        logger.addFilter(RedactQueryTokens())
