"""The public surface, settings validation, seeding and the environment document."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from origin_helpers import Client, sign_in

import origin
from origin import OriginSettings, seed
from origin.passwords import hash_password, verify_password


def test_exported_members() -> None:
    assert set(origin.__all__) == {"KeyFileError", "OriginSettings", "create_app", "seed"}
    for name in origin.__all__:
        assert hasattr(origin, name)


def test_settings_defaults(tmp_path: Path) -> None:
    settings = OriginSettings(database=tmp_path / "o.db", signing_key=tmp_path / "k.pem")
    assert (settings.host, settings.port) == ("127.0.0.1", 8081)
    assert settings.token_lifetime_s == 60
    assert settings.edges == ()
    assert settings.latency_ms == 0
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [
        {"port": 70000},
        {"latency_ms": -1},
        {"token_lifetime_s": 0},
        {"edges": ("ftp://x",)},
        {"secret_key": ""},
    ],
)
def test_settings_are_validated(tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case fails on its own message
        OriginSettings(database=tmp_path / "o.db", signing_key=tmp_path / "k.pem", **bad)


def test_passwords_are_salted_and_checked() -> None:
    first, second = hash_password("pw"), hash_password("pw")
    assert first != second
    assert "pw" not in first
    assert verify_password("pw", first)
    assert not verify_password("other", first)
    assert not verify_password("pw", "garbage")


async def test_seed_only_once_and_passwords_hashed(make_origin: Any, tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    first = await make_origin(database=database)
    await sign_in(first)
    await first.close()
    second = await make_origin(database=database)
    await sign_in(second)  # the seeded users are still there, and usable
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM users").fetchone() == (2,)
        [(stored,)] = db.execute(
            "SELECT password_hash FROM users WHERE id = ?", (seed.ALICE_ID,)
        ).fetchall()
    assert seed.ALICE_PASSWORD not in stored
    assert stored.startswith("scrypt$")


async def test_environment_document(origin: Client) -> None:
    response = await origin.get("/v1/environment", params={"_clerk_js_version": "5"})
    assert response.status == 200
    env = await response.json()
    assert env["object"] == "environment"
    assert env["auth_config"]["session_minter"] is True
    assert env["auth_config"]["single_session_mode"] is False
    attributes = env["user_settings"]["attributes"]
    assert attributes["password"]["enabled"] is True
    assert attributes["email_address"]["enabled"] is True
    assert attributes["email_address"]["used_for_first_factor"] is True
    assert env["organization_settings"]["enabled"] is True
    assert env["display_config"]["preferred_sign_in_strategy"] == "password"
    assert env["maintenance_mode"] is False


async def test_dev_browser_is_answered(origin: Client) -> None:
    response = await origin.post("/v1/dev_browser")
    assert response.status == 200
    body = await response.json()
    assert body["object"] == "dev_browser"
    assert body["token"]
