"""`session-minter`: serve | origin | demo | keygen | check-config.

Configuration problems print one line on stderr and exit with status 2.
`serve --workers N` overrides `server.workers`; `serve` and `origin` log in
the `server.log_format` shape (see `proxy/logs.py`), the other commands as
plain text.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from .config import SECRET_KEYS, ConfigError, KeysSettings, Settings, load_settings
from .keygen import KEY_TYPES, write_key
from .keys import load_signing_keys
from .logs import configure_logging
from .process import event_loop_factory, serve
from .redact import install_access_log_redaction

__all__ = ["main"]

log = logging.getLogger("session_minter")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="session-minter", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="run the edge proxy")
    serving.add_argument("--config", type=Path, help="TOML config file")
    serving.add_argument(
        "--workers", type=int, help="processes sharing the port (default: server.workers)"
    )
    origin = commands.add_parser("origin", help="run the reference origin API")
    origin.add_argument("--config", type=Path, help="TOML config file")
    demo = commands.add_parser(
        "demo", help="reference origin + edge on localhost, with a walk-through"
    )
    demo.add_argument("--once", action="store_true", help="exit after the walk-through")
    demo.add_argument("--port", type=int, default=8080, help="edge port (0: any free port)")
    keygen = commands.add_parser("keygen", help="write a new private signing key")
    keygen.add_argument("--out", type=Path, required=True)
    keygen.add_argument("--type", choices=KEY_TYPES, default="rsa")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing file")
    keygen.add_argument(
        "--if-missing",
        action="store_true",
        help="keep an existing file and print its kid (for init containers)",
    )
    check = commands.add_parser("check-config", help="validate and print the effective config")
    check.add_argument("--config", type=Path, help="TOML config file")
    return parser


_MASK = "********"


def _without_password(url: str) -> str:
    """A URL with its password masked, in its userinfo (redis://user:pw@host) or in
    its query (redis://host/0?password=pw, which redis-py reads too)."""
    parts = urlsplit(url)
    if parts.password is not None:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}:{_MASK}@{host}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name == "password" for name, _ in query):
        shown = [(name, _MASK if name == "password" else value) for name, value in query]
        parts = parts._replace(query=urlencode(shown, safe="*"))
    return urlunsplit(parts)


def _shown(value: Any) -> Any:
    """A value as check-config prints it: URL passwords masked, paths as text."""
    if isinstance(value, str) and "://" in value:
        return _without_password(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_shown(str(item)) for item in value]  # lists of URLs too (`edges`)
    return value


def _masked(settings: Settings) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for section in dataclasses.fields(settings):
        values = dataclasses.asdict(getattr(settings, section.name))
        for key, value in values.items():
            if (section.name, key) in SECRET_KEYS:
                values[key] = _MASK if value else ""  # empty: that endpoint is off
            else:
                values[key] = _shown(value)
        shown[section.name] = values
    return shown


def _check_config(path: Path | None) -> int:
    settings = load_settings(path)
    keys = load_signing_keys(settings.keys)
    event_loop_factory(settings.server.loop)  # what `serve` refuses, this refuses too
    print(json.dumps(_masked(settings), indent=2))
    print(f"signing key: kid={keys[0].kid} alg={keys[0].alg}; {len(keys)} key(s) published")
    return 0


def _keygen(out: Path, kind: str, *, force: bool, if_missing: bool) -> int:
    if if_missing and not force and out.exists():
        [key] = load_signing_keys(KeysSettings(signing=(out,)))
        print(f"kept {out}: {key.alg} key, kid {key.kid}")
        return 0
    try:
        key = write_key(out, kind, overwrite=force)
    except OSError as exc:
        if isinstance(exc, FileExistsError) and exc.filename == str(out):
            raise  # `out` itself exists: "use --force"
        print(f"session-minter: cannot write {out} ({exc.strerror or exc})", file=sys.stderr)
        return 2
    print(f"wrote {out}: {key.alg} key, kid {key.kid}")
    return 0


def _serve(path: Path | None, workers: int | None) -> int:
    settings = load_settings(path)
    if workers is not None:
        if workers < 1:
            raise ConfigError("--workers: must be at least 1")
        settings = dataclasses.replace(
            settings, server=dataclasses.replace(settings.server, workers=workers)
        )
    load_signing_keys(settings.keys)  # unreadable keys: one line and exit 2, before any fork
    configure_logging(settings.server.log_format, buffer_bytes=settings.server.log_buffer_bytes)
    return serve(settings, path)


def _origin(path: Path | None) -> int:
    from origin import OriginSettings
    from origin import create_app as create_origin_app

    loaded = load_settings(path)
    settings, push_secret = loaded.reference_origin, loaded.push.secret
    configure_logging(loaded.server.log_format, buffer_bytes=loaded.server.log_buffer_bytes)
    # aiohttp's access line holds the query, where clients put tokens (`expired_token`,
    # `__clerk_db_jwt`): redacted as the edge's own would be.
    install_access_log_redaction()
    origin_settings = OriginSettings(
        host=settings.host,
        port=settings.port,
        database=settings.database,
        signing_key=settings.signing_key,
        issuer=settings.issuer,
        secret_key=settings.secret_key,
        edges=settings.edges,
        push_secret=push_secret,
        latency_ms=settings.latency_ms,
    )
    try:
        web.run_app(
            create_origin_app(origin_settings),
            host=settings.host,
            port=settings.port,
            print=lambda text: log.info("%s", text),
        )
    except sqlite3.Error as exc:
        log.error("cannot open the database %s: %s", settings.database, exc)
        return 2
    except OSError as exc:  # as `serve`: one line, exit 2
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror or exc)
        return 2
    return 0


def _demo(once: bool, port: int) -> int:
    from origin import OriginSettings
    from origin import create_app as create_origin_app

    from .demo import run_demo

    return asyncio.run(
        run_demo(
            origin_settings_type=OriginSettings,
            create_origin_app=create_origin_app,
            once=once,
            edge_port=port,
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args.config, args.workers)
        if args.command == "origin":
            return _origin(args.config)
        if args.command == "demo":
            configure_logging("text")  # as `serve`: malformed requests are one line
            # The walk-through prints what happens; per-request lines would bury it.
            for name in ("aiohttp.access", "session_minter.request", "origin"):
                logging.getLogger(name).setLevel(logging.WARNING)
            return _demo(args.once, args.port)
        if args.command == "keygen":
            return _keygen(args.out, args.type, force=args.force, if_missing=args.if_missing)
        return _check_config(args.config)
    except ConfigError as exc:
        print(f"session-minter: config error: {exc}", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"session-minter: {exc.filename} exists (use --force)", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"session-minter: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
