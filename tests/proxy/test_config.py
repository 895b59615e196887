"""Configuration: one clear line and exit 2 for each mistake, env over file, the example file.

The CLI is called in-process (`proxy.cli.main`), exactly as the console
script calls it; what it prints is read back from the captured streams.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import tomllib
from pathlib import Path

import pytest
from jwcrypto import jwk

from proxy.cli import main
from proxy.config import (
    ConfigError,
    KeysSettings,
    Settings,
    load_settings,
    settings_from_mapping,
)
from proxy.keygen import generate_key_pem, write_key
from proxy.keys import load_signing_keys

ROOT = Path(__file__).resolve().parents[2]


def write_config(folder: Path, text: str, *, key: bool = True) -> Path:
    if key:
        write_key(folder / "keys" / "instance.pem", overwrite=True)
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def no_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own SESSION_MINTER_* variables must not leak into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("SESSION_MINTER_"):
            monkeypatch.delenv(name)


# -- mistakes: one line on stderr, exit 2 ---------------------------------------------------

MISTAKES = [
    ("[server]\nport = 8080\nsurprise = 1\n", "server.surprise: unknown key"),
    ("[serverr]\nport = 8080\n", "serverr: unknown section"),
    ('[server]\nport = "8080"\n', "server.port: must be an integer"),
    ("[server]\nworkers = 0\n", "server.workers: must be at least 1"),
    ('[server]\nlog_format = "xml"\n', 'server.log_format: is "json" or "text"'),
    ('[server]\nloop = "trio"\n', "server.loop:"),
    ("[tokens]\nissuers = []\n", "tokens.issuers: needs at least one issuer"),
    ('[tokens]\nlifetime_s = "60"\n', "tokens.lifetime_s: must be an integer"),
    ("[tokens]\nremember_signed = -1\n", "tokens.remember_signed: must be >= 0"),
    ("[origin]\npreserve_host = 1\n", "origin.preserve_host: must be true or false"),
    ('[store]\nbackend = "etcd"\n', 'store.backend: is "memory" or "redis"'),
    ("[server]\nport = 80\n[server]\n", "not valid TOML"),
    ('[keys]\nsigning = ["keys/absent.pem"]\n', "keys.signing: cannot read"),
    ("[server]\nworkers = 2\n", 'store.backend: must be "redis" with server.workers > 1'),
    ("[origin]\njwks_refresh_s = 0\n", "origin.jwks_refresh_s: must be >= 1"),
    ("[origin]\njwks_min_refetch_s = 0\n", "origin.jwks_min_refetch_s: must be >= 1"),
    ("[origin]\nbreaker_open_s = 0\n", "origin.breaker_open_s: must be > 0"),
    ("[origin]\nbreaker_window_s = -1\n", "origin.breaker_window_s: must be > 0"),
    ("[origin]\nslow_answer_s = 0\n", "origin.slow_answer_s: must be > 0"),
    ("[tokens]\noutage_max_expired_s = -1\n", "tokens.outage_max_expired_s: must be >= 0"),
    ("[store]\nconnect_timeout_s = 0\n", "store.connect_timeout_s: must be > 0"),
    ("[server]\nlog_buffer_bytes = 4095\n", "server.log_buffer_bytes: must be >= 4096"),
    (
        "[server]\nworkers = 2\nmetrics_port = 65535\n[store]\nmemory_per_worker = true\n",
        "server.metrics_port: worker 1 of 2 would serve /metrics on 65536, past 65535",
    ),
    ("[store]\nsocket_timeout_s = 0\n", "store.socket_timeout_s: must be > 0"),
    # inf read as "no bound": a shutdown or a Redis call that could wait forever.
    ("[server]\nshutdown_timeout_s = inf\n", "server.shutdown_timeout_s: must be finite"),
    ("[store]\nsocket_timeout_s = inf\n", "store.socket_timeout_s: must be finite"),
    ("[limits]\nper_ip_per_s = nan\n", "limits.per_ip_per_s: must be finite"),
    # Each of these was accepted, and then every forwarded request failed with a 500.
    ('[origin]\nurl = "http://[::1"\n', "origin.url: is not a valid URL"),
    ('[origin]\nurl = "http://origin:99999"\n', "origin.url: is not a valid URL"),
    ('[origin]\nurl = "http://"\n', "origin.url: names no host"),
    (
        '[store]\nbackend = "redis"\nredis_url = "http://cache:6379/0"\n',
        "store.redis_url: is a redis://, rediss:// or unix:// URL",
    ),
    (
        '[store]\nbackend = "redis"\nredis_url = "redis://cache:63790x/0"\n',
        "store.redis_url: has a port that is not a number",
    ),
    (
        '[store]\nbackend = "redis"\nredis_url = "redis://cache:6379/prod"\n',
        "store.redis_url: names its database as /<number>",
    ),
    (
        '[store]\nbackend = "redis"\nredis_url = "redis://cache:6379/1/2"\n',
        "store.redis_url: names its database as /<number>",
    ),
    (  # a typo: redis-py passes it on, and every Redis call fails with a TypeError
        '[store]\nbackend = "redis"\nredis_url = "redis://cache:6379/0?socket_timout=2"\n',
        "store.redis_url: has a query option the edge does not take: socket_timout",
    ),
    (  # would silently override store.socket_timeout_s
        '[store]\nbackend = "redis"\nredis_url = "redis://cache:6379/0?socket_timeout=30"\n',
        "store.redis_url: has a query option the edge does not take: socket_timeout",
    ),
    (  # redis-py raised ValueError as the store was built
        '[store]\nbackend = "redis"\nredis_url = "redis://cache/0?max_connections=abc"\n',
        "store.redis_url: has a query option value redis-py cannot read",
    ),
    (
        '[store]\nbackend = "redis"\nredis_url = "unix:///run/redis.sock?db=two"\n',
        "store.redis_url: has a query option value redis-py cannot read",
    ),
    (  # the store reads bytes
        '[store]\nbackend = "redis"\nredis_url = "redis://cache/0?decode_responses=true"\n',
        "store.redis_url: has a query option the edge does not take: decode_responses",
    ),
    (  # only a TLS connection takes these: on redis:// every Redis call failed with a TypeError
        '[store]\nbackend = "redis"\nredis_url = "redis://cache:6379/0?ssl_cert_reqs=none"\n',
        "store.redis_url: has a query option redis:// does not take: ssl_cert_reqs",
    ),
    (  # nor does a Unix socket connection take TCP keepalive
        '[store]\nbackend = "redis"\nredis_url = "unix:///run/redis.sock?socket_keepalive=true"\n',
        "store.redis_url: has a query option unix:// does not take: socket_keepalive",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MISTAKES)
@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_a_config_mistake_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str, command: str
) -> None:
    path = write_config(tmp_path, text)
    code, out, err = run_cli(capsys, command, "--config", str(path))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("session-minter: config error: ")
    assert expected in err
    assert "Traceback" not in err


def test_an_unreadable_key_file_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, '[keys]\nsigning = ["keys/folder.pem"]\n')
    (tmp_path / "keys" / "folder.pem").mkdir()  # exists, cannot be read as a file (even by root)
    code, _, err = run_cli(capsys, "check-config", "--config", str(path))
    assert (code, err.count("\n")) == (2, 1)
    assert f"keys.signing: cannot read {tmp_path / 'keys' / 'folder.pem'} (" in err


def test_a_key_file_that_is_not_a_key_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "", key=False)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "instance.pem").write_text("-----BEGIN NONSENSE-----\n")
    code, _, err = run_cli(capsys, "check-config", "--config", str(path))
    assert code == 2
    assert err.count("\n") == 1
    assert "keys.signing:" in err


def test_a_missing_config_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "serve", "--config", str(tmp_path / "absent.toml"))
    assert code == 2
    assert err.count("\n") == 1
    assert "cannot read" in err


def test_zero_workers_on_the_command_line_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "")
    code, _, err = run_cli(capsys, "serve", "--config", str(path), "--workers", "0")
    assert (code, err.count("\n")) == (2, 1)
    assert "--workers: must be at least 1" in err


# -- environment overrides -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://cache",
        "redis://cache:6379",
        "redis://cache:6379/",
        "redis://cache:6379/12",
        "rediss://edge:p%40ss@cache.internal:6380/1",
        "redis://:secret@cache/0?socket_keepalive=true",
        "unix:///run/redis/redis.sock?db=2",
        "rediss://cache:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem",
    ],
)
def test_redis_urls_that_name_a_server_and_database_are_accepted(url: str) -> None:
    store = settings_from_mapping({"store": {"backend": "redis", "redis_url": url}}).store
    assert store.redis_url == url


def test_the_outage_expiry_window_is_never_narrower_than_the_normal_one() -> None:
    wide = settings_from_mapping({"tokens": {"max_expired_s": 7200}}).tokens
    assert (wide.outage_max_expired_s, wide.widest_expired_s) == (3600, 7200)
    narrow = settings_from_mapping({"tokens": {"outage_max_expired_s": 60}}).tokens
    assert narrow.widest_expired_s == narrow.max_expired_s == 300


def test_workers_on_the_command_line_with_the_memory_store_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "")
    code, _, err = run_cli(capsys, "serve", "--config", str(path), "--workers", "2")
    assert (code, err.count("\n")) == (2, 1)
    assert 'store.backend: must be "redis" with server.workers > 1' in err
    allowed = settings_from_mapping(
        {"server": {"workers": 2}, "store": {"memory_per_worker": True}}
    )
    assert (allowed.server.workers, allowed.store.backend) == (2, "memory")
    assert (
        settings_from_mapping(
            {"server": {"workers": 2}, "store": {"backend": "redis"}}
        ).server.workers
        == 2
    )


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[server]\nport = 8080\nlog_format = "json"\n'
        '[tokens]\nmax_claims_age_s = 300\nissuers = ["https://a.test"]\n'
        "[origin]\npreserve_host = false\n",
    )
    settings = load_settings(
        path,
        environ={
            "SESSION_MINTER_SERVER__PORT": "9090",
            "SESSION_MINTER_SERVER__LOG_FORMAT": "text",
            "SESSION_MINTER_TOKENS__MAX_CLAIMS_AGE_S": "120",
            "SESSION_MINTER_TOKENS__ISSUERS": "https://b.test, https://c.test",
            "SESSION_MINTER_ORIGIN__PRESERVE_HOST": "true",
            "SESSION_MINTER_PUSH__SECRET": "from-env",
            "UNRELATED": "ignored",
        },
    )
    assert settings.server.port == 9090
    assert settings.server.log_format == "text"
    assert settings.tokens.max_claims_age_s == 120
    assert settings.tokens.issuers == ("https://b.test", "https://c.test")
    assert settings.origin.preserve_host is True
    assert settings.push.secret == "from-env"
    # What the file alone says, for contrast.
    assert load_settings(path, environ={}).server.port == 8080


def test_environment_lists_may_be_json(tmp_path: Path) -> None:
    settings = load_settings(
        None, environ={"SESSION_MINTER_SERVER__TRUSTED_PROXIES": '["10.0.0.1", "10.0.0.2"]'}
    )
    assert settings.server.trusted_proxies == ("10.0.0.1", "10.0.0.2")


def test_environment_paths_are_relative_to_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, environ={"SESSION_MINTER_KEYS__SIGNING": "a.pem,b.pem"})
    assert settings.keys.signing == (tmp_path / "a.pem", tmp_path / "b.pem")


def test_environment_paths_stay_relative_to_the_working_folder_beside_a_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "edge.toml"
    path.write_text('[keys]\nsigning = ["keys/edge.pem"]\n', encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    settings = load_settings(
        path,
        environ={
            "SESSION_MINTER_KEYS__SIGNING": "keys/a.pem, /abs/b.pem",
            "SESSION_MINTER_ORIGIN__JWKS_CACHE_FILE": "cache/jwks.json",
            "SESSION_MINTER_REFERENCE_ORIGIN__DATABASE": "origin.db",
        },
    )
    assert settings.keys.signing == (work / "keys" / "a.pem", Path("/abs/b.pem"))
    assert settings.origin.jwks_cache_file == work / "cache" / "jwks.json"
    assert settings.reference_origin.database == work / "origin.db"
    assert load_settings(path, environ={}).keys.signing == (folder / "keys" / "edge.pem",)


def test_file_paths_are_relative_to_the_file_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "edge.toml"
    path.write_text(
        '[keys]\nsigning = ["keys/edge.pem"]\n[origin]\njwks_cache_file = "cache/jwks.json"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    settings = load_settings(path, environ={})
    assert settings.keys.signing == (folder / "keys" / "edge.pem",)
    assert settings.origin.jwks_cache_file == folder / "cache" / "jwks.json"
    unset = load_settings(path, environ={"SESSION_MINTER_ORIGIN__JWKS_CACHE_FILE": ""})
    assert unset.origin.jwks_cache_file is None
    assert Settings().origin.jwks_cache_file is None


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SESSION_MINTER_SERVER__PORTT", "1", "unknown key server.portt"),
        ("SESSION_MINTER_SERVERR__PORT", "1", "unknown section 'serverr'"),
        ("SESSION_MINTER_SERVER__PORT", "eighty", "server.port: must be an integer"),
        ("SESSION_MINTER_ORIGIN__PRESERVE_HOST", "maybe", "must be true or false"),
        # Bytes that are not UTF-8 (random bytes pasted into the environment) reach
        # Python as surrogate escapes: no client can present them, and comparing
        # them failed every push or admin call with a 500.
        ("SESSION_MINTER_PUSH__SECRET", os.fsdecode(b"push-\xff"), "push.secret: must be UTF-8"),
        ("SESSION_MINTER_ADMIN__SECRET", os.fsdecode(b"\xfe\xff"), "admin.secret: must be UTF-8"),
        ("SESSION_MINTER_ORIGIN__URL", os.fsdecode(b"http://\xff"), "origin.url: is not a valid"),
        ("SESSION_MINTER_ORIGIN__TIMEOUT_S", "Infinity", "origin.timeout_s: must be finite"),
    ],
)
def test_a_bad_environment_override_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    expected: str,
) -> None:
    path = write_config(tmp_path, "")
    monkeypatch.setenv(name, value)
    code, _, err = run_cli(capsys, "check-config", "--config", str(path))
    assert (code, err.count("\n")) == (2, 1)
    assert expected in err


# -- check-config ----------------------------------------------------------------------------


def test_check_config_prints_the_effective_config_with_secrets_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(
        tmp_path,
        '[keys]\nsigning = ["keys/instance.pem"]\n'
        '[push]\nsecret = "push-s3cret"\n'
        '[admin]\nsecret = "admin-s3cret"\n'
        '[reference_origin]\nsecret_key = "sk_test_s3cret"\n'
        '[store]\nbackend = "redis"\nredis_url = "redis://minter:redis-s3cret@cache:6379/0"\n',
    )
    monkeypatch.setenv("SESSION_MINTER_TOKENS__LIFETIME_S", "45")
    code, out, err = run_cli(capsys, "check-config", "--config", str(path))
    assert (code, err) == (0, ""), err
    for secret in ("push-s3cret", "admin-s3cret", "sk_test_s3cret", "redis-s3cret"):
        assert secret not in out
    document, _, summary = out.rpartition("}\n")
    assert summary.startswith("signing key: kid=")
    shown = json.loads(document + "}")
    assert shown["push"]["secret"] == "********"
    assert shown["admin"]["secret"] == "********"
    assert shown["reference_origin"]["secret_key"] == "********"
    assert shown["store"]["redis_url"] == "redis://minter:********@cache:6379/0"
    in_query = "redis://cache:6379/0?password=query-s3cret&socket_keepalive=true"
    monkeypatch.setenv("SESSION_MINTER_STORE__REDIS_URL", in_query)
    code, out, err = run_cli(capsys, "check-config", "--config", str(path))
    assert (code, err) == (0, ""), err
    assert "query-s3cret" not in out
    assert '"redis://cache:6379/0?password=********&socket_keepalive=true"' in out
    assert shown["tokens"]["lifetime_s"] == 45, "the effective value, environment included"
    assert shown["keys"]["signing"] == [str(tmp_path / "keys" / "instance.pem")]
    assert set(shown) == {field.name for field in dataclasses.fields(Settings)}
    key = write_key(tmp_path / "keys" / "instance.pem", overwrite=True)
    code, out, _ = run_cli(capsys, "check-config", "--config", str(path))
    assert f"kid={key.kid} alg=RS256; 1 key(s) published" in out


def test_check_config_masks_url_passwords_in_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        tmp_path,
        '[keys]\nsigning = ["keys/instance.pem"]\n'
        '[reference_origin]\nedges = ["https://push:edge-s3cret@edge.internal:8080"]\n',
    )
    code, out, err = run_cli(capsys, "check-config", "--config", str(path))
    assert (code, err) == (0, ""), err
    assert "edge-s3cret" not in out
    document, _, _summary = out.rpartition("}\n")
    shown = json.loads(document + "}")
    assert shown["reference_origin"]["edges"] == ["https://push:********@edge.internal:8080"]


def test_check_config_refuses_the_uvloop_that_serve_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed
    path = write_config(
        tmp_path, '[server]\nloop = "uvloop"\n[keys]\nsigning = ["keys/instance.pem"]\n'
    )
    code, out, err = run_cli(capsys, "check-config", "--config", str(path))
    assert (code, out, err.count("\n")) == (2, "", 1), err
    assert 'server.loop: "uvloop" is not installed' in err


# -- keygen ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "alg"), [("rsa", "RS256"), ("ec", "ES256"), ("ed25519", "EdDSA")])
def test_keygen_prints_the_kid_of_the_key_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, alg: str
) -> None:
    out_path = tmp_path / "keys" / f"{kind}.pem"
    code, out, _ = run_cli(capsys, "keygen", "--out", str(out_path), "--type", kind)
    assert code == 0
    assert out_path.stat().st_mode & 0o777 == 0o600
    thumbprint = jwk.JWK.from_pem(out_path.read_bytes()).thumbprint()
    assert out == f"wrote {out_path}: {alg} key, kid {thumbprint}\n"


def test_keygen_refuses_to_overwrite_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / "instance.pem"
    assert run_cli(capsys, "keygen", "--out", str(out_path))[0] == 0
    before = out_path.read_bytes()
    code, _, err = run_cli(capsys, "keygen", "--out", str(out_path))
    assert (code, err.count("\n")) == (2, 1)
    assert f"{out_path} exists (use --force)" in err
    code, out, _ = run_cli(capsys, "keygen", "--out", str(out_path), "--if-missing")
    assert code == 0
    assert out_path.read_bytes() == before
    assert out == f"kept {out_path}: RS256 key, kid {jwk.JWK.from_pem(before).thumbprint()}\n"
    out_path.chmod(0o644)  # a key file someone loosened: the new key must not inherit it
    assert run_cli(capsys, "keygen", "--out", str(out_path), "--force")[0] == 0
    assert out_path.read_bytes() != before
    assert out_path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instance.pem"], "no temporary left"


def test_keygen_into_a_path_it_cannot_write_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a folder", encoding="utf-8")
    under_a_file = tmp_path / "file" / "instance.pem"
    code, out, err = run_cli(capsys, "keygen", "--out", str(under_a_file))
    assert (code, out, err.count("\n")) == (2, "", 1), err
    assert err.startswith(f"session-minter: cannot write {under_a_file} (")
    folder = tmp_path / "folder.pem"
    folder.mkdir()
    code, _, err = run_cli(capsys, "keygen", "--out", str(folder), "--force")
    assert (code, err.count("\n")) == (2, 1), err
    assert err.startswith(f"session-minter: cannot write {folder} (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.pem"], "no temporary"


def test_two_different_keys_under_one_kid_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a.json", "b.json"):
        key = jwk.JWK.generate(kty="RSA", size=2048, kid="edge-1")
        (tmp_path / name).write_text(key.export_private(), encoding="utf-8")
    path = write_config(tmp_path, '[keys]\nsigning = ["a.json", "b.json"]\n')
    code, _, err = run_cli(capsys, "check-config", "--config", str(path))
    assert (code, err.count("\n")) == (2, 1)
    assert "are different keys with the same kid 'edge-1'" in err
    same = write_config(tmp_path, '[keys]\nsigning = ["a.json", "a.json"]\n')
    assert run_cli(capsys, "check-config", "--config", str(same))[0] == 0


def test_a_signing_key_that_clerk_verifiers_reject_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for kind in ("ec", "rsa"):
        (tmp_path / f"{kind}.pem").write_bytes(generate_key_pem(kind))
    with caplog.at_level(logging.WARNING, logger="proxy.keys"):
        load_signing_keys(KeysSettings(signing=(tmp_path / "ec.pem", tmp_path / "rsa.pem")))
        assert "is ES256: Clerk's verifiers (@clerk/backend) accept RSA" in caplog.text
        caplog.clear()
        load_signing_keys(KeysSettings(signing=(tmp_path / "rsa.pem", tmp_path / "ec.pem")))
        assert caplog.text == "", "an EC key published for verification only is fine"


# -- the example file ------------------------------------------------------------------------


def test_the_example_file_shows_every_key_with_its_default() -> None:
    raw = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    for section in dataclasses.fields(Settings):
        documented = set(raw[section.name])
        known = {field.name for field in dataclasses.fields(getattr(Settings(), section.name))}
        assert documented == known, section.name
    assert settings_from_mapping(raw, base=None) == Settings()


def test_the_deploy_configs_are_valid(tmp_path: Path) -> None:
    for name in ("edge.toml", "origin.toml"):
        settings = load_settings(ROOT / "deploy" / name, environ={})
        assert settings.push.secret == "change-me", "secrets come from the environment"
    edge = load_settings(ROOT / "deploy" / "edge.toml", environ={})
    assert edge.store.backend == "redis"
    assert edge.server.port == 8080


def test_settings_from_mapping_refuses_a_section_that_is_not_a_table() -> None:
    with pytest.raises(ConfigError, match=r"^server: must be a table$"):
        settings_from_mapping({"server": 8080})


def test_check_config_shows_an_empty_secret_as_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty `[admin] secret` (or `[push] secret`) turns its endpoint off: masking it
    would show an operator a secret where none is set."""
    path = write_config(tmp_path, '[keys]\nsigning = ["keys/instance.pem"]\n[push]\nsecret = ""\n')
    code, out, err = run_cli(capsys, "check-config", "--config", str(path))
    assert (code, err) == (0, ""), err
    document, _, _summary = out.rpartition("}\n")
    shown = json.loads(document + "}")
    assert shown["admin"]["secret"] == "", "the default: the admin API is off"
    assert shown["push"]["secret"] == ""
    assert shown["reference_origin"]["secret_key"] == "********"
