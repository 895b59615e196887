"""Configuration: TOML file + environment overrides → frozen, validated Settings.

Parsing (TOML, environment) is kept apart from the dataclasses, which only
validate. Every section and key is listed in `config.example.toml`; unknown
keys and wrong types are errors, never silently ignored. Relative paths in a
file are relative to that file's folder. Environment variables named
`SESSION_MINTER_<SECTION>__<KEY>` override the file (lists as JSON or
comma-separated, booleans as true/false/1/0; relative paths are relative to
the working folder).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from redis.connection import parse_url as parse_redis_url

__all__ = [
    "ENV_PREFIX",
    "AdminSettings",
    "ConfigError",
    "KeysSettings",
    "LimitSettings",
    "OriginSettings",
    "PushSettings",
    "ReferenceOriginSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "TokenSettings",
    "load_settings",
    "settings_from_mapping",
]

ENV_PREFIX = "SESSION_MINTER_"


class ConfigError(ValueError):
    """A configuration problem, with a one-line message naming the key."""


def _require(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    prefix: str = ""
    workers: int = 1
    max_body_bytes: int = 64 * 1024  # token route bodies above this get 413
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-* values are kept
    header_timeout_s: float = 10.0  # a client must send its request head within this
    body_timeout_s: float = 30.0  # a request body may stop arriving at most this long
    max_header_bytes: int = 16 * 1024  # cap on one request header line / field
    max_headers: int = 100  # cap on the number of request headers
    log_format: str = "json"  # "json" (one object per line) or "text"
    log_buffer_bytes: int = 1024 * 1024  # log lines queued for stderr; beyond, dropped
    metrics_port: int = 0  # 0: /metrics on the main port; else its own port
    shutdown_timeout_s: float = 30.0  # on SIGTERM: how long in-flight requests may finish
    loop: str = "asyncio"  # event loop: "asyncio", "uvloop" (must be installed) or "auto"

    def __post_init__(self) -> None:
        _require(0 <= self.port <= 65535, "server.port", "must be 0..65535")
        _require(self.workers >= 1, "server.workers", "must be at least 1")
        _require(self.max_body_bytes >= 1024, "server.max_body_bytes", "must be >= 1024")
        _require(self.log_format in ("json", "text"), "server.log_format", 'is "json" or "text"')
        _require(self.log_buffer_bytes >= 4096, "server.log_buffer_bytes", "must be >= 4096")
        _require(0 <= self.metrics_port <= 65535, "server.metrics_port", "must be 0..65535")
        last_metrics_port = self.metrics_port + self.workers - 1  # worker i: metrics_port + i
        _require(
            self.metrics_port == 0 or last_metrics_port <= 65535,
            "server.metrics_port",
            f"worker {self.workers - 1} of {self.workers} would serve /metrics on"
            f" {last_metrics_port}, past 65535",
        )
        _require(self.header_timeout_s > 0, "server.header_timeout_s", "must be > 0")
        _require(self.body_timeout_s > 0, "server.body_timeout_s", "must be > 0")
        _require(self.shutdown_timeout_s >= 0, "server.shutdown_timeout_s", "must be >= 0")
        _require(
            self.loop in ("asyncio", "uvloop", "auto"),
            "server.loop",
            'is "asyncio", "uvloop" or "auto"',
        )
        _require(
            self.prefix == "" or (self.prefix.startswith("/") and not self.prefix.endswith("/")),
            "server.prefix",
            'must be "" or start with "/" and not end with "/"',
        )


def _is_utf8(text: str) -> bool:
    """False for bytes that were not UTF-8, which reach `os.environ` as surrogate escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _origin_url_problem(url: str) -> str | None:
    """What would make every request to the origin fail, found at start instead."""
    if not url.startswith(("http://", "https://")):
        return "must be an http(s) URL"
    if not _is_utf8(url):  # bytes pasted into the environment
        return "is not a valid URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        return "is not a valid URL"
    return None if parts.hostname else "names no host"


@dataclass(frozen=True, slots=True)
class OriginSettings:
    url: str = "http://127.0.0.1:8081"
    jwks_path: str = "/v1/jwks"
    connect_timeout_s: float = 2.0
    timeout_s: float = 10.0  # whole-answer timeout for token requests sent to the origin
    jwks_refresh_s: int = 300  # refetch the origin's JWKS this often
    jwks_min_refetch_s: int = 10  # at most one unknown-kid refetch per this many seconds
    jwks_cache_file: Path | None = None  # last good origin JWKS kept here across restarts
    preserve_host: bool = False  # send the client's Host (else the origin's host)
    breaker_failures: int = 5  # failures in a row within breaker_window_s open the breaker
    breaker_window_s: float = 10.0
    breaker_open_s: float = 5.0  # open this long before a half-open probe
    slow_answer_s: float = 2.0  # a token answer slower than this counts as a failure
    outage: str = "auto"  # "auto" (breaker decides), "on" (forced outage), "off"

    def __post_init__(self) -> None:
        problem = _origin_url_problem(self.url)
        _require(problem is None, "origin.url", problem or "")
        _require(self.jwks_path.startswith("/"), "origin.jwks_path", 'must start with "/"')
        _require(self.connect_timeout_s > 0, "origin.connect_timeout_s", "must be > 0")
        _require(self.timeout_s > 0, "origin.timeout_s", "must be > 0")
        _require(self.outage in ("auto", "on", "off"), "origin.outage", 'is "auto", "on" or "off"')
        _require(self.breaker_failures >= 1, "origin.breaker_failures", "must be >= 1")
        # Zero would fetch the JWKS in a loop, refetch on every unknown kid, or spin the prober.
        _require(self.jwks_refresh_s >= 1, "origin.jwks_refresh_s", "must be >= 1")
        _require(self.jwks_min_refetch_s >= 1, "origin.jwks_min_refetch_s", "must be >= 1")
        _require(self.breaker_window_s > 0, "origin.breaker_window_s", "must be > 0")
        _require(self.breaker_open_s > 0, "origin.breaker_open_s", "must be > 0")
        _require(self.slow_answer_s > 0, "origin.slow_answer_s", "must be > 0")

    @property
    def base_url(self) -> str:
        return self.url.rstrip("/")


@dataclass(frozen=True, slots=True)
class TokenSettings:
    issuers: tuple[str, ...] = ("https://clerk.example.test",)
    authorized_parties: tuple[str, ...] = ()
    max_claims_age_s: int = 300
    outage_max_claims_age_s: int = 3600
    max_expired_s: int = 300
    outage_max_expired_s: int = 3600  # in an outage: a token posted after a sleep still counts
    lifetime_s: int = 60
    remember_signed: int = 100_000  # sessions whose last edge token is kept (proxy/signed.py)

    def __post_init__(self) -> None:
        _require(len(self.issuers) > 0, "tokens.issuers", "needs at least one issuer")
        _require(self.max_claims_age_s > 10, "tokens.max_claims_age_s", "must be > 10")
        _require(
            self.outage_max_claims_age_s >= self.max_claims_age_s,
            "tokens.outage_max_claims_age_s",
            "must be >= max_claims_age_s",
        )
        _require(self.max_expired_s >= 0, "tokens.max_expired_s", "must be >= 0")
        # Never narrower than max_expired_s (`widest_expired_s`): a config that raises
        # only max_expired_s keeps loading.
        _require(self.outage_max_expired_s >= 0, "tokens.outage_max_expired_s", "must be >= 0")
        _require(self.lifetime_s >= 10, "tokens.lifetime_s", "must be >= 10")
        _require(self.remember_signed >= 0, "tokens.remember_signed", "must be >= 0")

    @property
    def widest_expired_s(self) -> int:
        """How long ago a posted token may have expired and still verify (in an outage)."""
        return max(self.max_expired_s, self.outage_max_expired_s)

    @property
    def revocation_ttl_s(self) -> int:
        """How long a sign-out must be remembered: past every token it could clone."""
        longest_bound = max(
            self.max_claims_age_s, self.outage_max_claims_age_s, self.widest_expired_s
        )
        return self.lifetime_s + longest_bound + 60


@dataclass(frozen=True, slots=True)
class KeysSettings:
    signing: tuple[Path, ...] = (Path("keys/instance.pem"),)

    def __post_init__(self) -> None:
        _require(len(self.signing) > 0, "keys.signing", "needs at least one key file")


_REDIS_SCHEMES = ("redis", "rediss", "unix")
_REDIS_DATABASE_PATH = re.compile(r"/?|/[0-9]+")
# What redis-py may take from the query: not the timeouts, retries or decoding, which
# the store sets itself (redis-py lets the URL override them), and nothing it does not
# know (it would pass it on, and every Redis call would fail with a TypeError). The
# same TypeError follows an option the scheme's connection does not take: the `ssl_*`
# ones are for rediss:// alone, `socket_keepalive` is not for unix://.
_REDIS_QUERY_OPTIONS = frozenset(
    {
        "db",
        "client_name",
        "username",
        "password",
        "health_check_interval",
        "max_connections",
        "socket_read_size",
    }
)
_REDIS_TCP_OPTIONS = frozenset({"socket_keepalive"})
_REDIS_TLS_OPTIONS = frozenset(
    {
        "ssl_ca_certs",
        "ssl_ca_data",
        "ssl_ca_path",
        "ssl_cert_reqs",
        "ssl_certfile",
        "ssl_check_hostname",
        "ssl_ciphers",
        "ssl_exclude_verify_flags",
        "ssl_include_verify_flags",
        "ssl_keyfile",
        "ssl_min_version",
        "ssl_password",
    }
)


def _redis_url_problem(url: str) -> str | None:
    """What redis-py would refuse, or read otherwise than written, in `url`.

    redis-py reads the database from the path by deleting its slashes and
    silently falls back to database 0 when the rest is not a number, so
    `/prod` would share database 0 with another deployment and `/1/2` would
    be database 12. Only an empty path or `/<number>` is accepted, and only the
    query options the scheme's connection takes.
    """
    parts = urlsplit(url)
    if parts.scheme not in _REDIS_SCHEMES:
        return "is a redis://, rediss:// or unix:// URL"
    options = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    known = _REDIS_QUERY_OPTIONS | _REDIS_TCP_OPTIONS | _REDIS_TLS_OPTIONS
    refused = sorted(options - known)
    if refused:
        return f"has a query option the edge does not take: {', '.join(refused)}"
    taken = _REDIS_QUERY_OPTIONS
    taken |= _REDIS_TLS_OPTIONS if parts.scheme == "rediss" else frozenset()
    taken |= _REDIS_TCP_OPTIONS if parts.scheme != "unix" else frozenset()
    refused = sorted(options - taken)
    if refused:
        return f"has a query option {parts.scheme}:// does not take: {', '.join(refused)}"
    if parts.scheme == "unix":
        if not parts.path:
            return "needs the socket's path (unix:///path/to.sock)"
    else:
        try:
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            return "has a port that is not a number"
        if not _REDIS_DATABASE_PATH.fullmatch(parts.path):
            return "names its database as /<number>"
    try:  # a value redis-py cannot read (`max_connections=abc`) fails as the store is built
        parse_redis_url(url)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    except ValueError as exc:
        return f"has a query option value redis-py cannot read ({exc})"
    return None


@dataclass(frozen=True, slots=True)
class StoreSettings:
    backend: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    max_sessions: int = 1_000_000  # memory store: sessions held (LRU beyond)
    connect_timeout_s: float = 0.5  # Redis connect timeout
    socket_timeout_s: float = 0.5  # Redis command timeout
    when_unavailable: str = "origin"  # store down: "origin" (no edge mints; 503 if the
    # origin is down too) or "mint" (outage mints without revocation checks)
    memory_per_worker: bool = False  # allow the memory store with server.workers > 1: each
    # worker then sees only the sign-outs it forwards (benchmarks; use redis in production)

    def __post_init__(self) -> None:
        _require(self.backend in ("memory", "redis"), "store.backend", 'is "memory" or "redis"')
        _require(self.max_sessions >= 1, "store.max_sessions", "must be >= 1")
        # Zero (or less) times every Redis call out at once: the edge would never mint.
        _require(self.connect_timeout_s > 0, "store.connect_timeout_s", "must be > 0")
        _require(self.socket_timeout_s > 0, "store.socket_timeout_s", "must be > 0")
        if self.backend == "redis":
            problem = _redis_url_problem(self.redis_url)
            _require(problem is None, "store.redis_url", problem or "")
        _require(
            self.when_unavailable in ("origin", "mint"),
            "store.when_unavailable",
            'is "origin" or "mint"',
        )


@dataclass(frozen=True, slots=True)
class PushSettings:
    secret: str = field(default="change-me", repr=False)

    def __post_init__(self) -> None:
        _require(_is_utf8(self.secret), "push.secret", "must be UTF-8 text")


@dataclass(frozen=True, slots=True)
class AdminSettings:
    secret: str = field(default="", repr=False)  # bearer for /__minter/admin/...; "" = off

    def __post_init__(self) -> None:
        _require(_is_utf8(self.secret), "admin.secret", "must be UTF-8 text")


@dataclass(frozen=True, slots=True)
class LimitSettings:
    per_ip_per_s: float = 50.0  # token requests per second per client IP (before verify)
    per_ip_burst: int = 100
    per_session_per_s: float = 5.0  # per verified session (never an unverified sid)
    per_session_burst: int = 20
    max_concurrent_signs: int = 64  # signatures in flight at once
    per_ip_forwards: int = 32  # forwarded requests in flight at once per client IP
    sign_in_threads: bool = False  # sign in worker threads (else on the event loop)
    coalesce: bool = True  # identical clones within a second share one signature

    def __post_init__(self) -> None:
        _require(self.per_ip_per_s > 0, "limits.per_ip_per_s", "must be > 0")
        _require(self.per_ip_burst >= 1, "limits.per_ip_burst", "must be >= 1")
        _require(self.per_session_per_s > 0, "limits.per_session_per_s", "must be > 0")
        _require(self.per_session_burst >= 1, "limits.per_session_burst", "must be >= 1")
        _require(self.max_concurrent_signs >= 1, "limits.max_concurrent_signs", "must be >= 1")
        _require(self.per_ip_forwards >= 1, "limits.per_ip_forwards", "must be >= 1")


@dataclass(frozen=True, slots=True)
class ReferenceOriginSettings:
    host: str = "127.0.0.1"
    port: int = 8081
    database: Path = Path("origin.db")
    signing_key: Path = Path("keys/instance.pem")
    issuer: str = "https://clerk.example.test"
    secret_key: str = field(default="sk_test_change_me", repr=False)
    edges: tuple[str, ...] = ("http://127.0.0.1:8080",)
    latency_ms: int = 0


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    origin: OriginSettings = field(default_factory=OriginSettings)
    tokens: TokenSettings = field(default_factory=TokenSettings)
    keys: KeysSettings = field(default_factory=KeysSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    push: PushSettings = field(default_factory=PushSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    reference_origin: ReferenceOriginSettings = field(default_factory=ReferenceOriginSettings)

    def __post_init__(self) -> None:
        _require(
            self.server.workers == 1
            or self.store.backend != "memory"
            or self.store.memory_per_worker,
            "store.backend",
            'must be "redis" with server.workers > 1: each worker\'s memory store would see'
            " only the sign-outs that reach that worker (store.memory_per_worker = true"
            " allows it anyway)",
        )


SECRET_KEYS = frozenset(
    {("push", "secret"), ("admin", "secret"), ("reference_origin", "secret_key")}
)


def _convert(value: Any, hint: Any, key: str, base: Path | None) -> Any:
    origin = typing.get_origin(hint)
    if hint is bool:
        _require(isinstance(value, bool), key, "must be true or false")
        return value
    if hint is int:
        _require(type(value) is int, key, "must be an integer")
        return value
    if hint is float:
        _require(type(value) in (int, float), key, "must be a number")
        # inf would read as "no bound" (a wait with no end), nan compares false to all.
        _require(math.isfinite(value), key, "must be finite")
        return float(value)
    if hint is str:
        _require(isinstance(value, str), key, "must be a string")
        return value
    if hint is Path:
        _require(isinstance(value, str) and value != "", key, "must be a path")
        path = Path(value)
        return path if path.is_absolute() or base is None else base / path
    if origin is tuple:
        _require(isinstance(value, list | tuple), key, "must be a list")
        (item_hint, _ellipsis) = typing.get_args(hint)
        return tuple(_convert(item, item_hint, key, base) for item in value)
    if hint == Path | None:  # an optional file: "" (as from an environment variable) is none
        return None if value == "" else _convert(value, Path, key, base)
    raise ConfigError(f"{key}: unsupported type {hint!r}")


def _section_from(cls: type[Any], raw: Mapping[str, Any], section: str, base: Path | None) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]}: unknown key")
    kwargs = {
        name: _convert(value, hints[name], f"{section}.{name}", base) for name, value in raw.items()
    }
    return cls(**kwargs)


def settings_from_mapping(raw: Mapping[str, Any], *, base: Path | None = None) -> Settings:
    """Build validated Settings from parsed TOML-like data."""
    sections = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = sorted(set(raw) - set(sections))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section")
    hints = typing.get_type_hints(Settings)
    built: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: must be a table")
        built[name] = _section_from(hints[name], value, name, base)
    return Settings(**built)


def _env_value(text: str, hint: Any) -> Any:
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        return text
    if hint is int:
        try:
            return int(text)
        except ValueError:
            return text
    if hint is float:
        try:
            return float(text)
        except ValueError:
            return text
    if typing.get_origin(hint) is tuple:
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                return json.loads(stripped)
            except ValueError:
                return text
        return [item.strip() for item in stripped.split(",") if item.strip()]
    return text


def _environment_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    hints = typing.get_type_hints(Settings)
    overrides: dict[str, dict[str, Any]] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name[len(ENV_PREFIX) :]:
            continue
        section, key = name[len(ENV_PREFIX) :].lower().split("__", 1)
        if section not in hints:
            raise ConfigError(f"{name}: unknown section {section!r}")
        key_hints = typing.get_type_hints(hints[section])
        if key not in key_hints:
            raise ConfigError(f"{name}: unknown key {section}.{key}")
        value = _env_value(text, key_hints[key])
        overrides.setdefault(section, {})[key] = _from_working_folder(value, key_hints[key])
    return overrides


def _from_working_folder(value: Any, hint: Any) -> Any:
    """Relative paths given in the environment name files from the working folder.

    Only a file's own values are read from its folder: the same variable must
    name the same file whether or not `--config` is given.
    """
    if hint in (Path, Path | None) and isinstance(value, str) and value:
        return str(Path.cwd() / value)
    if hint == tuple[Path, ...] and isinstance(value, list):
        return [_from_working_folder(item, Path) for item in value]
    return value


def load_settings(
    path: Path | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read a TOML file (optional) and apply environment overrides."""
    raw: dict[str, Any] = {}
    base: Path | None = None
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
        base = path.resolve().parent
    for section, values in _environment_overrides(
        os.environ if environ is None else environ
    ).items():
        current = raw.setdefault(section, {})
        if not isinstance(current, dict):
            raise ConfigError(f"{section}: must be a table")
        current.update(values)
    return settings_from_mapping(raw, base=base if base is not None else Path.cwd())
