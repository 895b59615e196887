"""Keep a failing origin from signing anyone out through a cookie, pure.

A browser SDK reads a `Set-Cookie` that empties or expires `__session` or
`__client` as "signed out". When the origin failed (a 5xx answer), such a
line is the failure talking, not a decision about the session, so it is
dropped; every other header, and every other cookie, passes unchanged.
Cookie names match exactly and case-sensitively, as browsers match them;
`__session_<suffix>` / `__client_<suffix>` (the SDK's per-instance names)
are covered too. `__client_uat` (and its suffixed names) set to `0` is a
sign-out as well: server-side verifiers read a zero "client updated at" as
"signed out" and drop the session.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["clears_session_cookie", "without_sign_out_cookies"]

_GUARDED = ("__session", "__client")


def _guarded(name: str) -> bool:
    return any(name == base or name.startswith(base + "_") for base in _GUARDED)


def _is_client_uat(name: str) -> bool:
    return name == "__client_uat" or name.startswith("__client_uat_")


def _expired(date: str, now: float) -> bool:
    try:
        return parsedate_to_datetime(date.strip()).timestamp() <= now
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


def clears_session_cookie(set_cookie: str, *, now: float) -> bool:
    """Does this `Set-Cookie` value empty or expire a session or client cookie?"""
    pair, *attributes = set_cookie.split(";")
    name, _, value = pair.partition("=")
    if not _guarded(name.strip()):
        return False
    value = value.strip().strip('"')
    if value == "" or (value == "0" and _is_client_uat(name.strip())):
        return True
    for attribute in attributes:
        key, _, setting = attribute.partition("=")
        key = key.strip().lower()
        if key == "max-age" and setting.strip().lstrip("+").startswith(("0", "-")):
            return True
        if key == "expires" and _expired(setting, now):
            return True
    return False


def without_sign_out_cookies(
    headers: CIMultiDict[str] | CIMultiDictProxy[str], *, now: float
) -> CIMultiDict[str]:
    """`headers` minus the `Set-Cookie` lines that would sign the client out."""
    return CIMultiDict(
        (name, value)
        for name, value in headers.items()
        if not (name.lower() == "set-cookie" and clears_session_cookie(value, now=now))
    )
