"""Clerk's JSON shapes (`UserJSON`, `SessionJSON`, `ClientJSON`, ...) built from rows. Pure."""

from __future__ import annotations

from typing import Any

from origin.store import Client, Membership, Organization, Session, User

JSON = dict[str, Any]


def token_json(jwt: str) -> JSON:
    return {"object": "token", "jwt": jwt}


def verification_json(strategy: str, at_ms: int) -> JSON:
    return {
        "object": "verification",
        "id": None,
        "status": "verified",
        "strategy": strategy,
        "attempts": 1,
        "expire_at": at_ms + 10 * 60 * 1000,
        "verified_at_client": None,
        "error": None,
    }


def email_address_json(user: User) -> JSON:
    return {
        "object": "email_address",
        "id": user.email_id,
        "email_address": user.email,
        "verification": verification_json("email_code", user.created_at),
        "linked_to": [],
        "matches_sso_connection": False,
        "reserved": False,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def organization_json(org: Organization, members_count: int = 1) -> JSON:
    return {
        "object": "organization",
        "id": org.id,
        "name": org.name,
        "slug": org.slug,
        "image_url": "",
        "has_image": False,
        "public_metadata": org.public_metadata,
        "members_count": members_count,
        "pending_invitations_count": 0,
        "admin_delete_enabled": True,
        "max_allowed_memberships": 5,
        "created_at": org.created_at,
        "updated_at": org.updated_at,
    }


def public_user_data_json(user: User) -> JSON:
    return {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "image_url": "",
        "has_image": False,
        "identifier": user.email,
        "user_id": user.id,
    }


def membership_json(m: Membership, user: User | None = None) -> JSON:
    out: JSON = {
        "object": "organization_membership",
        "id": m.id,
        "organization": organization_json(m.org),
        "permissions": list(m.permissions),
        "public_metadata": {},
        "role": m.role,
        "role_name": m.role_name,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    }
    if user is not None:
        out["public_user_data"] = public_user_data_json(user)
    return out


def user_json(user: User, memberships: list[Membership]) -> JSON:
    return {
        "object": "user",
        "id": user.id,
        "external_id": None,
        "primary_email_address_id": user.email_id,
        "primary_phone_number_id": None,
        "primary_web3_wallet_id": None,
        "image_url": "",
        "has_image": False,
        "username": None,
        "email_addresses": [email_address_json(user)],
        "phone_numbers": [],
        "web3_wallets": [],
        "external_accounts": [],
        "enterprise_accounts": [],
        "passkeys": [],
        "saml_accounts": [],
        "organization_memberships": [membership_json(m) for m in memberships],
        "password_enabled": True,
        "profile_image_id": "",
        "first_name": user.first_name,
        "last_name": user.last_name,
        "totp_enabled": False,
        "backup_code_enabled": False,
        "two_factor_enabled": False,
        "public_metadata": user.public_metadata,
        "unsafe_metadata": {},
        "last_sign_in_at": None,
        "create_organization_enabled": True,
        "create_organizations_limit": None,
        "delete_self_enabled": True,
        "legal_accepted_at": None,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def session_json(session: Session, user: User, memberships: list[Membership], now_s: int) -> JSON:
    active = session.status == "active"
    token = session.last_active_token if active else None
    first_factor_minutes = max(0, (now_s - session.first_factor_at // 1000) // 60)
    return {
        "object": "session",
        "id": session.id,
        "status": session.status,
        "factor_verification_age": [first_factor_minutes, -1],
        "expire_at": session.expire_at,
        "abandon_at": session.abandon_at,
        "last_active_at": session.last_active_at,
        "last_active_token": token_json(token) if token else None,
        "last_active_organization_id": session.last_active_org_id,
        "actor": None,
        "tasks": None,
        "user": user_json(user, memberships),
        "public_user_data": public_user_data_json(user),
        "created_at": session.created_at,
        "updated_at": session.updated_at,
    }


def client_json(client: Client, sessions: list[JSON]) -> JSON:
    return {
        "object": "client",
        "id": client.id,
        "sessions": sessions,
        "sign_in": None,
        "sign_up": None,
        "last_active_session_id": client.last_active_session_id,
        "last_authentication_strategy": None,
        "cookie_expires_at": None,
        "captcha_bypass": False,
        "created_at": client.created_at,
        "updated_at": client.updated_at,
    }


def sign_in_json(
    sign_in_id: str, identifier: str, user: User, session_id: str, now_ms: int
) -> JSON:
    return {
        "object": "sign_in",
        "id": sign_in_id,
        "status": "complete",
        "supported_identifiers": ["email_address"],
        "identifier": identifier,
        "user_data": {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "image_url": "",
            "has_image": False,
        },
        "supported_first_factors": [{"strategy": "password"}],
        "supported_second_factors": [],
        "first_factor_verification": verification_json("password", now_ms),
        "second_factor_verification": None,
        "created_session_id": session_id,
        "abandon_at": now_ms + 24 * 3600 * 1000,
    }


def backend_session_json(session: Session) -> JSON:
    """The Backend API's Session object (no nested user)."""
    return {
        "object": "session",
        "id": session.id,
        "client_id": session.client_id,
        "user_id": session.user_id,
        "status": session.status,
        "last_active_organization_id": session.last_active_org_id,
        "actor": None,
        "last_active_at": session.last_active_at,
        "expire_at": session.expire_at,
        "abandon_at": session.abandon_at,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
    }


def envelope(response: Any, client: JSON | None = None) -> JSON:
    """FAPI's answer: the resource plus the piggybacked client."""
    return {"response": response, "client": client}
