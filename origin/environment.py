"""`GET /v1/environment`: Clerk's EnvironmentJSON for this instance.

Password sign-in with an email identifier, organizations on, nothing else.
Kept apart so that more settings can be switched on in one place.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

_NO_VERIFICATIONS: JSON = {
    "enabled": False,
    "required": False,
    "verifications": [],
    "used_for_first_factor": False,
    "first_factors": [],
    "used_for_second_factor": False,
    "second_factors": [],
    "verify_at_sign_up": False,
}


def _attribute(**overrides: Any) -> JSON:
    return {**_NO_VERIFICATIONS, **overrides}


def user_settings() -> JSON:
    attributes = {
        name: _attribute()
        for name in (
            "phone_number",
            "username",
            "first_name",
            "last_name",
            "web3_wallet",
            "authenticator_app",
            "backup_code",
            "passkey",
        )
    }
    attributes["email_address"] = _attribute(
        enabled=True,
        required=True,
        verifications=["email_code"],
        used_for_first_factor=True,
        first_factors=["email_code"],
        verify_at_sign_up=True,
    )
    attributes["password"] = _attribute(enabled=True, required=True)
    return {
        "attributes": attributes,
        "actions": {"delete_self": True, "create_organization": True},
        "social": {},
        "enterprise_sso": {"enabled": False},
        "saml": {"enabled": False},
        "sign_in": {"second_factor": {"required": False, "enabled": False}},
        "sign_up": {
            "allowlist_only": False,
            "progressive": True,
            "captcha_enabled": False,
            "captcha_widget_type": None,
            "mode": "public",
            "legal_consent_enabled": False,
            "mfa": {"required": False},
        },
        "restrictions": {"allowlist": {"enabled": False}, "blocklist": {"enabled": False}},
        "password_settings": {
            "allowed_special_characters": "!\"#$%&'()*+,-./:;<=>?@[]^_`{|}~",
            "disable_hibp": True,
            "min_length": 8,
            "max_length": 72,
            "require_special_char": False,
            "require_numbers": False,
            "require_uppercase": False,
            "require_lowercase": False,
            "show_zxcvbn": False,
            "min_zxcvbn_strength": 0,
            "enforce_hibp_on_sign_in": False,
        },
        "passkey_settings": {"allow_autofill": False, "show_sign_in_button": False},
        "username_settings": {"min_length": 4, "max_length": 64},
    }


def display_config(issuer: str) -> JSON:
    return {
        "object": "display_config",
        "id": "display_config_reference",
        "instance_environment_type": "production",
        "application_name": "session-minter reference",
        "branded": False,
        "preferred_sign_in_strategy": "password",
        "captcha_public_key": None,
        "captcha_widget_type": None,
        "captcha_public_key_invisible": None,
        "captcha_provider": "turnstile",
        "captcha_oauth_bypass": [],
        "captcha_heartbeat": False,
        "home_url": "http://localhost:3000",
        "sign_in_url": "http://localhost:3000/sign-in",
        "sign_up_url": "http://localhost:3000/sign-up",
        "user_profile_url": "http://localhost:3000/user",
        "organization_profile_url": "http://localhost:3000/organization",
        "create_organization_url": "http://localhost:3000/create-organization",
        "after_sign_in_url": "http://localhost:3000/",
        "after_sign_up_url": "http://localhost:3000/",
        "after_sign_out_one_url": "http://localhost:3000/",
        "after_sign_out_all_url": "http://localhost:3000/",
        "after_switch_session_url": "http://localhost:3000/",
        "after_leave_organization_url": "http://localhost:3000/",
        "after_create_organization_url": "http://localhost:3000/",
        "after_join_waitlist_url": "http://localhost:3000/",
        "waitlist_url": "http://localhost:3000/waitlist",
        "logo_image_url": "",
        "dark_logo_image_url": "",
        "favicon_image_url": "",
        "support_email": "",
        "terms_url": "",
        "privacy_policy_url": "",
        "show_devmode_warning": False,
        "theme": {
            "general": {
                "color": "#6c47ff",
                "background_color": "#ffffff",
                "font_family": "sans-serif",
                "font_color": "#151515",
                "label_font_weight": "600",
                "padding": "1em",
                "border_radius": "0.5em",
                "box_shadow": "none",
            },
            "buttons": {"font_color": "#ffffff", "font_family": "sans-serif", "font_weight": "600"},
            "accounts": {"background_color": "#ffffff"},
        },
        "fapi_url": issuer,
    }


def organization_settings() -> JSON:
    return {
        "enabled": True,
        "max_allowed_memberships": 5,
        "max_allowed_roles": 10,
        "max_allowed_permissions": 50,
        "creator_role": "org:admin",
        "admin_delete_enabled": True,
        "force_organization_selection": False,
        "actions": {"admin_delete": True},
        "domains": {"enabled": False, "enrollment_modes": [], "default_role": "org:member"},
        "slug": {"disabled": False},
        "organizationCreationDefaults": {"enabled": False},
    }


def environment_json(issuer: str, *, session_minter: bool = True) -> JSON:
    return {
        "object": "environment",
        "id": "env_reference",
        "auth_config": {
            "object": "auth_config",
            "id": "aac_reference",
            "single_session_mode": False,
            "claimed_at": None,
            "reverification": False,
            "session_minter": session_minter,
        },
        "display_config": display_config(issuer),
        "user_settings": user_settings(),
        "organization_settings": organization_settings(),
        "api_keys_settings": {
            "user_api_keys_enabled": False,
            "show_in_user_profile": False,
            "orgs_api_keys_enabled": False,
            "show_in_org_profile": False,
        },
        "commerce_settings": {
            "billing": {
                "stripe_publishable_key": None,
                "organization": {"enabled": False, "has_paid_plans": False},
                "user": {"enabled": False, "has_paid_plans": False},
            },
        },
        "protect_config": {"object": "protect_config", "id": "protect_config", "loaders": []},
        "maintenance_mode": False,
        "client_debug_mode": False,
        "partitioned_cookies": False,
    }
