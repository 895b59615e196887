"""The origin's database: SQLite (stdlib), schema, seeding, and every query.

All timestamps are integer Unix milliseconds, as in Clerk's JSON.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from origin import schema

SESSION_EXPIRE_MS = 7 * 24 * 3600 * 1000
SESSION_ABANDON_MS = 30 * 24 * 3600 * 1000


@dataclass(frozen=True)
class User:
    id: str
    email: str
    email_id: str
    first_name: str | None
    last_name: str | None
    password_hash: str
    public_metadata: dict[str, Any]
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    slug: str
    public_metadata: dict[str, Any]
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class Membership:
    id: str
    org: Organization
    user_id: str
    role: str
    role_name: str
    permissions: list[str]
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class Client:
    id: str
    last_active_session_id: str | None
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class Session:
    id: str
    client_id: str
    user_id: str
    status: str
    first_factor_at: int
    last_active_org_id: str | None
    last_active_token: str | None
    created_at: int
    updated_at: int
    last_active_at: int
    expire_at: int
    abandon_at: int


@dataclass(frozen=True)
class Template:
    name: str
    claims: dict[str, Any]
    lifetime_s: int


_MEMBERSHIP_SELECT = """
SELECT m.id, m.user_id, m.role, m.created_at, m.updated_at, r.name, r.permissions,
       o.id, o.name, o.slug, o.public_metadata, o.created_at, o.updated_at
FROM memberships m JOIN organizations o ON o.id = m.org_id JOIN roles r ON r.key = m.role
"""


def _membership(row: sqlite3.Row) -> Membership:
    org = Organization(row[7], row[8], row[9], json.loads(row[10]), row[11], row[12])
    return Membership(row[0], org, row[1], row[2], row[5], json.loads(row[6]), row[3], row[4])


class Store:
    """One SQLite connection, used from the event loop thread only."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    @classmethod
    def open(cls, path: Path, now_ms: int) -> Store:
        conn = sqlite3.connect(str(path), isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        if str(path) != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        schema.create(conn)
        schema.seed_if_empty(conn, now_ms)
        return cls(conn)

    def close(self) -> None:
        self._db.close()

    # users and organizations

    def user(self, user_id: str) -> User | None:
        row = self._db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        return _user(row) if row is not None else None

    def user_by_email(self, email: str) -> User | None:
        row = self._db.execute("SELECT * FROM users WHERE email = ?", (email,)).fetchone()
        return _user(row) if row is not None else None

    def set_public_metadata(self, user_id: str, metadata: dict[str, Any], now_ms: int) -> None:
        self._db.execute(
            "UPDATE users SET public_metadata = ?, updated_at = ? WHERE id = ?",
            (json.dumps(metadata), now_ms, user_id),
        )

    def memberships_of(self, user_id: str) -> list[Membership]:
        rows = self._db.execute(
            _MEMBERSHIP_SELECT + " WHERE m.user_id = ? ORDER BY m.created_at", (user_id,)
        ).fetchall()
        return [_membership(r) for r in rows]

    def membership(self, org_id: str, user_id: str) -> Membership | None:
        row = self._db.execute(
            _MEMBERSHIP_SELECT + " WHERE m.org_id = ? AND m.user_id = ?", (org_id, user_id)
        ).fetchone()
        return _membership(row) if row is not None else None

    def role_exists(self, role: str) -> bool:
        return self._db.execute("SELECT 1 FROM roles WHERE key = ?", (role,)).fetchone() is not None

    def set_membership_role(self, org_id: str, user_id: str, role: str, now_ms: int) -> None:
        self._db.execute(
            "UPDATE memberships SET role = ?, updated_at = ? WHERE org_id = ? AND user_id = ?",
            (role, now_ms, org_id, user_id),
        )

    # clients and sessions

    def create_client(self, client_id: str, token_hash: str, now_ms: int) -> Client:
        self._db.execute(
            "INSERT INTO clients VALUES (?, ?, NULL, ?, ?)", (client_id, token_hash, now_ms, now_ms)
        )
        return Client(client_id, None, now_ms, now_ms)

    def client_by_token_hash(self, token_hash: str) -> Client | None:
        row = self._db.execute(
            "SELECT id, last_active_session_id, created_at, updated_at FROM clients"
            " WHERE token_hash = ?",
            (token_hash,),
        ).fetchone()
        return Client(*row) if row is not None else None

    def client_by_id(self, client_id: str) -> Client | None:
        row = self._db.execute(
            "SELECT id, last_active_session_id, created_at, updated_at FROM clients WHERE id = ?",
            (client_id,),
        ).fetchone()
        return Client(*row) if row is not None else None

    def set_last_active_session(self, client_id: str, session_id: str | None, now_ms: int) -> None:
        self._db.execute(
            "UPDATE clients SET last_active_session_id = ?, updated_at = ? WHERE id = ?",
            (session_id, now_ms, client_id),
        )

    def create_session(
        self,
        session_id: str,
        client_id: str,
        user_id: str,
        now_ms: int,
        last_active_org_id: str | None,
    ) -> Session:
        session = Session(
            session_id,
            client_id,
            user_id,
            "active",
            now_ms,
            last_active_org_id,
            None,
            now_ms,
            now_ms,
            now_ms,
            now_ms + SESSION_EXPIRE_MS,
            now_ms + SESSION_ABANDON_MS,
        )
        self._db.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            tuple(session.__dict__.values()),
        )
        return session

    def session(self, session_id: str) -> Session | None:
        row = self._db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return Session(*row) if row is not None else None

    def sessions_of_client(self, client_id: str, status: str | None = "active") -> list[Session]:
        if status is None:
            rows = self._db.execute(
                "SELECT * FROM sessions WHERE client_id = ? ORDER BY created_at", (client_id,)
            ).fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM sessions WHERE client_id = ? AND status = ? ORDER BY created_at",
                (client_id, status),
            ).fetchall()
        return [Session(*r) for r in rows]

    def set_session_status(self, session_id: str, status: str, now_ms: int) -> None:
        self._db.execute(
            "UPDATE sessions SET status = ?, updated_at = ? WHERE id = ?",
            (status, now_ms, session_id),
        )

    def record_activity(
        self, session_id: str, token: str | None, org_id: str | None, now_ms: int
    ) -> None:
        """Remember the session's latest token and active organization."""
        self._db.execute(
            "UPDATE sessions SET last_active_token = COALESCE(?, last_active_token),"
            " last_active_org_id = ?, last_active_at = ?, updated_at = ? WHERE id = ?",
            (token, org_id, now_ms, now_ms, session_id),
        )

    # JWT templates

    def template(self, name: str) -> Template | None:
        row = self._db.execute(
            "SELECT name, claims, lifetime_s FROM jwt_templates WHERE name = ?", (name,)
        ).fetchone()
        return Template(row[0], json.loads(row[1]), row[2]) if row is not None else None


def _user(row: sqlite3.Row) -> User:
    return User(
        row["id"],
        row["email"],
        row["email_id"],
        row["first_name"],
        row["last_name"],
        row["password_hash"],
        json.loads(row["public_metadata"]),
        row["created_at"],
        row["updated_at"],
    )
