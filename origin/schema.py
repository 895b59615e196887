"""The database schema, and seeding it with the demo data of `origin.seed`."""

from __future__ import annotations

import json
import sqlite3

from origin import seed
from origin.passwords import hash_password

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email_id TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    password_hash TEXT NOT NULL,
    public_metadata TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    public_metadata TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS roles (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    permissions TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS memberships (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    role TEXT NOT NULL REFERENCES roles(key),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (org_id, user_id)
);
CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    last_active_session_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    status TEXT NOT NULL,
    first_factor_at INTEGER NOT NULL,
    last_active_org_id TEXT,
    last_active_token TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_active_at INTEGER NOT NULL,
    expire_at INTEGER NOT NULL,
    abandon_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_client ON sessions(client_id);
CREATE TABLE IF NOT EXISTS jwt_templates (
    name TEXT PRIMARY KEY,
    claims TEXT NOT NULL,
    lifetime_s INTEGER NOT NULL
);
"""


def create(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)


def seed_if_empty(db: sqlite3.Connection, now_ms: int) -> bool:
    """Insert the demo data of `origin.seed` unless there are users already."""
    if db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None:
        return False
    with db:
        db.execute("BEGIN")
        for key, (name, permissions) in seed.ROLES.items():
            db.execute("INSERT INTO roles VALUES (?, ?, ?)", (key, name, json.dumps(permissions)))
        for u in seed.USERS:
            db.execute(
                "INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    u["id"],
                    u["email"],
                    "idn_" + u["id"].removeprefix("user_"),
                    u["first_name"],
                    u["last_name"],
                    hash_password(u["password"]),
                    json.dumps(u["public_metadata"]),
                    now_ms,
                    now_ms,
                ),
            )
        for o in seed.ORGANIZATIONS:
            db.execute(
                "INSERT INTO organizations VALUES (?, ?, ?, '{}', ?, ?)",
                (o["id"], o["name"], o["slug"], now_ms, now_ms),
            )
        for m in seed.MEMBERSHIPS:
            db.execute(
                "INSERT INTO memberships VALUES (?, ?, ?, ?, ?, ?)",
                (m["id"], m["org_id"], m["user_id"], m["role"], now_ms, now_ms),
            )
        for t in seed.TEMPLATES:
            db.execute(
                "INSERT INTO jwt_templates VALUES (?, ?, ?)",
                (t["name"], json.dumps(t["claims"]), t["lifetime_s"]),
            )
    return True
