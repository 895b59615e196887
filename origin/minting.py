"""Mint tokens from the database and build the client payloads that carry them."""

from __future__ import annotations

import secrets
from typing import Any

import jwt

from origin import claims, shapes
from origin.errors import NotFound
from origin.state import OriginState
from origin.store import Client, Membership, Session, Template, User

# A stored last_active_token with less than this left is replaced when a client is served.
_REFRESH_MARGIN_S = 5


def _jti() -> str:
    return secrets.token_hex(10)


def membership_for(state: OriginState, user: User, org_id: str | None) -> Membership | None:
    """The user's membership in `org_id` (None: personal workspace); 404 if not a member."""
    if not org_id:
        return None
    membership = state.store.membership(org_id, user.id)
    if membership is None:
        raise NotFound(
            f"Organization {org_id} not found or the user is not a member of it",
            meta={"param_name": "organization_id"},
        )
    return membership


def mint_session_token(
    state: OriginState,
    session: Session,
    user: User,
    org_id: str | None,
    azp: str | None,
    *,
    activate: bool = True,
) -> str:
    """A fresh session token from the database.

    With `activate`, `org_id` becomes the session's active organization and the
    token its `last_active_token`; without it the session is left as it was.
    """
    membership = membership_for(state, user, org_id)
    now = state.now_s()
    payload = claims.session_claims(
        user=user,
        session=session,
        membership=membership,
        issuer=state.settings.issuer,
        now_s=now,
        lifetime_s=state.settings.token_lifetime_s,
        jti=_jti(),
        azp=azp,
    )
    token = state.key.sign(payload, {"cat": claims.SESSION_CAT, "oiat": now})
    if activate:
        state.store.record_activity(session.id, token, org_id or None, now * 1000)
    return token


def mint_template_token(
    state: OriginState, session: Session, user: User, template: Template, azp: str | None
) -> str:
    """A JWT template token, in the session's active organization if it still has one."""
    membership = (
        state.store.membership(session.last_active_org_id, user.id)
        if session.last_active_org_id
        else None
    )
    payload = claims.template_claims(
        custom=template.claims,
        user=user,
        session=session,
        membership=membership,
        issuer=state.settings.issuer,
        now_s=state.now_s(),
        lifetime_s=template.lifetime_s,
        jti=_jti(),
        azp=azp,
    )
    return state.key.sign(payload, {"cat": claims.template_cat(template.name)})


def _needs_token(token: str | None, org_id: str | None, now_s: int) -> bool:
    """Whether the stored token is missing, about to expire, or for another organization.

    clerk-js caches `last_active_token` under `last_active_organization_id`, so the
    two must always agree.
    """
    if not token:
        return True
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return True
    exp, org = payload.get("exp"), payload.get("o")
    token_org = org.get("id") if isinstance(org, dict) else None
    return not isinstance(exp, int) or exp - now_s < _REFRESH_MARGIN_S or token_org != org_id


def session_payload(state: OriginState, session: Session, azp: str | None) -> dict[str, Any]:
    """SessionJSON; an active session gets a live `last_active_token`."""
    user = state.store.user(session.user_id)
    if user is None:
        raise NotFound(f"User {session.user_id} not found")
    org_id = session.last_active_org_id
    if org_id and state.store.membership(org_id, user.id) is None:
        org_id = None  # the membership is gone: back to the personal workspace
    if session.status == "active" and _needs_token(
        session.last_active_token, org_id, state.now_s()
    ):
        mint_session_token(state, session, user, org_id, azp)
        session = state.store.session(session.id) or session
    return shapes.session_json(session, user, state.store.memberships_of(user.id), state.now_s())


def client_payload(
    state: OriginState,
    client: Client,
    azp: str | None,
    sessions: list[Session] | None = None,
) -> dict[str, Any]:
    """ClientJSON with the client's active sessions (or the `sessions` given)."""
    client = state.store.client_by_id(client.id) or client
    listed = sessions if sessions is not None else state.store.sessions_of_client(client.id)
    return shapes.client_json(client, [session_payload(state, s, azp) for s in listed])
