"""The demo data the origin is seeded with when its database is empty.

Tests import these constants rather than repeating the values.
"""

from __future__ import annotations

from typing import Any, Final

ALICE_ID: Final = "user_alice"
ALICE_EMAIL: Final = "alice@example.com"
ALICE_PASSWORD: Final = "correct-horse"  # noqa: S105 - published demo credential
ALICE_PUBLIC_METADATA: Final[dict[str, Any]] = {"plan": "pro"}

BOB_ID: Final = "user_bob"
BOB_EMAIL: Final = "bob@example.com"
BOB_PASSWORD: Final = "battery-staple"  # noqa: S105 - published demo credential

ACME_ID: Final = "org_acme"
ACME_NAME: Final = "Acme"
ACME_SLUG: Final = "acme"
ALICE_ACME_ROLE: Final = "org:admin"

TEMPLATE_NAME: Final = "integration_demo"
TEMPLATE_LIFETIME_S: Final = 60
TEMPLATE_CLAIMS: Final[dict[str, Any]] = {
    "email": "{{user.primary_email_address}}",
    "name": "{{user.first_name}} {{user.last_name}}",
    "plan": "{{user.public_metadata.plan}}",
    "org": "{{org.slug}}",
}

ROLES: Final[dict[str, tuple[str, list[str]]]] = {
    # role key: (display name, permissions)
    "org:admin": ("Admin", ["org:reports:read", "org:reports:manage", "org:billing:manage"]),
    "org:member": ("Member", ["org:reports:read"]),
}

USERS: Final[list[dict[str, Any]]] = [
    {
        "id": ALICE_ID,
        "email": ALICE_EMAIL,
        "password": ALICE_PASSWORD,
        "first_name": "Alice",
        "last_name": "Example",
        "public_metadata": ALICE_PUBLIC_METADATA,
    },
    {
        "id": BOB_ID,
        "email": BOB_EMAIL,
        "password": BOB_PASSWORD,
        "first_name": "Bob",
        "last_name": "Example",
        "public_metadata": {},
    },
]

ORGANIZATIONS: Final[list[dict[str, Any]]] = [
    {"id": ACME_ID, "name": ACME_NAME, "slug": ACME_SLUG},
]

MEMBERSHIPS: Final[list[dict[str, Any]]] = [
    {"id": "orgmem_alice_acme", "org_id": ACME_ID, "user_id": ALICE_ID, "role": ALICE_ACME_ROLE},
]

TEMPLATES: Final[list[dict[str, Any]]] = [
    {"name": TEMPLATE_NAME, "claims": TEMPLATE_CLAIMS, "lifetime_s": TEMPLATE_LIFETIME_S},
]
