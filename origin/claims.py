"""Assemble token claims from database rows. Pure: time and randomness are arguments.

Session tokens use Clerk's v2 claim set. Organization permissions are encoded as
Clerk does: `fea` lists the features (`o:reports`), `o.per` the distinct actions
(`read,manage`), and `o.fpm` one bitmask per feature over `o.per`: bit i (least
significant first) grants the i-th action, as `@clerk/shared` decodes it.
"""

from __future__ import annotations

import re
from typing import Any

from origin.store import Membership, Session, User

SESSION_CAT = "cl_B7d4PD111AAA"
NBF_SKEW_S = 10
PLAN_USER = "u:free"
PLAN_ORG = "o:free"

_RESERVED = frozenset(
    {
        "azp",
        "exp",
        "fva",
        "iat",
        "iss",
        "jti",
        "nbf",
        "sid",
        "sub",
        "v",
        "pla",
        "fea",
        "sts",
        "o",
        "act",
        "org_id",
        "org_role",
        "org_slug",
        "org_permissions",
    }
)
_SHORTCODE = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")


def template_cat(name: str) -> str:
    return f"cl_template_{name}"


def encode_permissions(permissions: list[str]) -> tuple[list[str], list[str], list[int]]:
    """`org:feature:action` keys -> (features, actions, one bitmask per feature;
    bit i set when the feature has the i-th action)."""
    features: list[str] = []
    actions: list[str] = []
    pairs: list[tuple[str, str]] = []
    for key in permissions:
        parts = key.split(":")
        if len(parts) != 3 or parts[0] != "org" or parts[1].startswith("sys_"):
            continue
        feature, action = parts[1], parts[2]
        if feature not in features:
            features.append(feature)
        if action not in actions:
            actions.append(action)
        pairs.append((feature, action))
    masks = []
    for feature in features:
        mask = 0
        for index, action in enumerate(actions):
            if (feature, action) in pairs:
                mask |= 1 << index
        masks.append(mask)
    return features, actions, masks


def fva(session: Session, now_s: int) -> list[int]:
    """Minutes since the first factor was verified; the second factor never was (-1)."""
    return [max(0, (now_s - session.first_factor_at // 1000) // 60), -1]


def session_claims(
    *,
    user: User,
    session: Session,
    membership: Membership | None,
    issuer: str,
    now_s: int,
    lifetime_s: int,
    jti: str,
    azp: str | None,
) -> dict[str, Any]:
    """The claims of a session token (v2), custom claims from public metadata first."""
    claims: dict[str, Any] = {k: v for k, v in user.public_metadata.items() if k not in _RESERVED}
    if azp:
        claims["azp"] = azp
    claims.update(
        exp=now_s + lifetime_s,
        fva=fva(session, now_s),
        iat=now_s,
        iss=issuer,
        jti=jti,
        nbf=now_s - NBF_SKEW_S,
        sid=session.id,
        sts="active",
        sub=user.id,
        v=2,
        pla=PLAN_ORG if membership is not None else PLAN_USER,
    )
    if membership is not None:
        features, actions, masks = encode_permissions(membership.permissions)
        if features:
            claims["fea"] = ",".join(f"o:{f}" for f in features)
        claims["o"] = {
            "id": membership.org.id,
            "slg": membership.org.slug,
            "rol": membership.role.removeprefix("org:"),
            "per": ",".join(actions),
            "fpm": ",".join(str(m) for m in masks),
        }
    return claims


def _lookup(context: dict[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def render(value: Any, context: dict[str, Any]) -> Any:
    """Render `{{a.b}}` shortcodes; a string that is one shortcode keeps the value's type."""
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if not isinstance(value, str):
        return value
    whole = _SHORTCODE.fullmatch(value.strip())
    if whole is not None:
        return _lookup(context, whole.group(1))

    def substitute(match: re.Match[str]) -> str:
        found = _lookup(context, match.group(1))
        return "" if found is None else str(found)

    return _SHORTCODE.sub(substitute, value).strip()


def template_context(user: User, membership: Membership | None) -> dict[str, Any]:
    org: dict[str, Any] | None = None
    if membership is not None:
        org = {
            "id": membership.org.id,
            "name": membership.org.name,
            "slug": membership.org.slug,
            "role": membership.role,
            "public_metadata": membership.org.public_metadata,
        }
    return {
        "user": {
            "id": user.id,
            "primary_email_address": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "public_metadata": user.public_metadata,
        },
        "org": org,
    }


def template_claims(
    *,
    custom: dict[str, Any],
    user: User,
    session: Session,
    membership: Membership | None,
    issuer: str,
    now_s: int,
    lifetime_s: int,
    jti: str,
    azp: str | None,
) -> dict[str, Any]:
    """A JWT template's claims: its rendered custom claims, then the standard ones."""
    rendered = render(custom, template_context(user, membership))
    claims: dict[str, Any] = {k: v for k, v in rendered.items() if k not in _RESERVED}
    if azp:
        claims["azp"] = azp
    claims.update(
        exp=now_s + lifetime_s,
        iat=now_s,
        iss=issuer,
        jti=jti,
        nbf=now_s - NBF_SKEW_S,
        sid=session.id,
        sub=user.id,
    )
    return claims
