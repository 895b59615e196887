"""Parse a refresh request's form body and query, pure.

The fields the edge reads (`organization_id`, `token`, `expired_token`,
`force_origin`) must appear at most once each; anything ambiguous is a 400,
never a guess. What goes on to the origin is the raw body and query with the
`token` and `force_origin` fields cut out and every other byte untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_plus

__all__ = ["BadRefresh", "RefreshForm", "parse_refresh", "strip_fields"]

_MAX_FIELDS = 64
_EDGE_ONLY = frozenset({"token", "force_origin"})


class BadRefresh(ValueError):
    """A refresh body or query the edge cannot read unambiguously (answered 400)."""


@dataclass(frozen=True, slots=True, init=False)
class RefreshForm:
    organization_id: str | None
    token: str | None
    expired_token: str | None
    force_origin: bool
    body: str  # as received (UTF-8)
    query: str  # raw, as received

    # Written out (`init=False`): mypyc compiles it, a generated one stays interpreted.
    def __init__(
        self,
        organization_id: str | None,
        token: str | None,
        expired_token: str | None,
        force_origin: bool,
        body: str,
        query: str,
    ) -> None:
        object.__setattr__(self, "organization_id", organization_id)
        object.__setattr__(self, "token", token)
        object.__setattr__(self, "expired_token", expired_token)
        object.__setattr__(self, "force_origin", force_origin)
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "query", query)

    @property
    def origin_body(self) -> bytes:
        """The body for the origin: without the edge's own fields."""
        return strip_fields(self.body, _EDGE_ONLY).encode("utf-8")

    @property
    def origin_query(self) -> str:
        """The query for the origin: without the edge's own fields."""
        return strip_fields(self.query, _EDGE_ONLY)


def _fields(raw: str, what: str) -> dict[str, list[str]]:
    """Decoded name -> decoded values, from each non-empty `&`-separated segment."""
    fields: dict[str, list[str]] = {}
    if not raw:
        return fields
    segments = raw.split("&")
    if len(segments) > _MAX_FIELDS and sum(1 for segment in segments if segment) > _MAX_FIELDS:
        raise BadRefresh(f"too many {what} fields")
    try:
        for segment in segments:
            if segment:
                name, _, value = segment.partition("=")
                name, value = _unquote(name), _unquote(value)
                values = fields.get(name)
                if values is None:
                    fields[name] = [value]
                else:
                    values.append(value)
    except UnicodeDecodeError as exc:
        raise BadRefresh(f"{what} is not UTF-8") from exc
    return fields


def _unquote(component: str) -> str:
    """`unquote_plus`, strict: a component without `%` or `+` is already decoded."""
    if "%" in component or "+" in component:
        return unquote_plus(component, errors="strict")
    return component


def strip_fields(raw: str, names: frozenset[str]) -> str:
    """`raw` without the segments whose decoded name is in `names`."""
    kept = [
        segment
        for segment in raw.split("&")
        if segment and unquote_plus(segment.partition("=")[0], errors="replace") not in names
    ]
    return "&".join(kept)


def _single(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name, [])
    if len(values) > 1:
        raise BadRefresh(f"{name} is given more than once")
    return values[0] if values else None


def parse_refresh(body: bytes, query: str) -> RefreshForm:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRefresh("body is not UTF-8") from exc
    body_fields = _fields(text, "body")
    query_fields = _fields(query, "query")
    force_values = body_fields.get("force_origin", [])
    expired = body_fields.get("expired_token", [])
    if query_fields:
        force_values = [*force_values, *query_fields.get("force_origin", [])]
        expired = [*expired, *query_fields.get("expired_token", [])]
    if any(value not in ("true", "false") for value in force_values):
        raise BadRefresh("force_origin is true or false")
    if len(expired) > 1:
        raise BadRefresh("expired_token is given more than once")
    return RefreshForm(
        organization_id=_single(body_fields, "organization_id"),
        token=_single(body_fields, "token") or None,
        expired_token=expired[0] if expired and expired[0] else None,
        force_origin="true" in force_values,
        body=text,
        query=query,
    )
