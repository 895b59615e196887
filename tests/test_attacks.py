"""Known JWT attacks, one named test each, through the real edge in front of the real origin.

Cases come from RFC 8725 (JWT best current practice), RFC 7515/7519/7797,
the OWASP JWT cheat sheet, and the advisories of pyjwt (CVE-2017-11424,
CVE-2022-29217: HMAC keyed with a public key), python-jose (CVE-2016-7036,
CVE-2024-33663), authlib (CVE-2024-33663 family, `jwk` header trust),
python-jwt (CVE-2022-39227: compact/JSON polyglots), jsonwebtoken
(CVE-2015-9235 `alg: none` and key confusion, CVE-2022-23540) and fast-jwt
(CVE-2023-48223: PEM public keys as HMAC secrets), plus CVE-2022-21449
(ECDSA "psychic" zero signatures) and CVE-2018-0114 (embedded `jwk`).

Every case asserts, through `refused`:

- no edge-signed token came back: no `("minted", ...)` decision was taken,
  and a 200 carries the origin's own fresh token (`oiat == iat == now`, the
  cookie owner's `sub`, this session's `sid`, signed by the instance key);
- otherwise the answer is a 4xx (never 401/403) or a 503 in the Clerk shape;
- nothing but the origin was contacted: every `jku`/`x5u`/URL-looking value
  points at a loopback canary listener that must see zero connections.

Forged tokens are signed with the instance key itself wherever that makes
the attack stronger: then the only thing standing between the forgery and
an edge mint is the rule under test, not the signature.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt as pyjwt
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from jwcrypto import jwe, jwk, jws

from minter import SESSION_TOKEN_CAT, SigningKey, sign_compact, verify_session_token
from minter.jws import b64url_encode
from proxy.config import LimitSettings, TokenSettings
from proxy.keygen import write_key
from proxy.keyring import KeyRing
from proxy.services import SERVICES
from tests.stack import (
    BOB,
    BROWSER_ORIGIN,
    Answer,
    Browser,
    FakeClock,
    Stack,
    decode,
    public_pem,
    running_stack,
)

ALICE_ID = "user_alice"
GENEROUS = LimitSettings(
    per_ip_per_s=10_000.0, per_ip_burst=10_000, per_session_per_s=10_000.0, per_session_burst=10_000
)


class Canary:
    """A loopback listener that counts connections: nobody should ever call it."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accepted, "127.0.0.1", 0)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@dataclass
class Target:
    """A signed-in victim session at the edge, with the origin's first token for it."""

    stack: Stack
    browser: Browser
    sid: str
    token: str
    canary: Canary
    header: dict[str, Any] = field(init=False)
    claims: dict[str, Any] = field(init=False)
    attempts: int = 0

    def __post_init__(self) -> None:
        self.header, self.claims = decode(self.token)

    @property
    def key(self) -> SigningKey:
        return self.stack.key

    @property
    def now(self) -> int:
        return int(self.stack.clock.now)

    def invalid_count(self) -> float:
        return sum(
            n
            for (outcome, reason), n in self.stack.decisions().items()
            if reason.startswith("invalid")
        )

    def reason_count(self, reason: str) -> float:
        return sum(
            n
            for (outcome, label), n in self.stack.decisions().items()
            if label == f"invalid:{reason}"
        )


@contextlib.asynccontextmanager
async def open_target(tmp_path: Path, clock: FakeClock, **sections: Any) -> AsyncIterator[Target]:
    canary = Canary()
    await canary.start()
    try:
        sections.setdefault("limits", GENEROUS)
        async with (
            running_stack(tmp_path, clock, **sections) as stack,
            Browser(stack.fapi) as browser,
        ):
            sid = await browser.sign_in()
            token = (await browser.refresh(sid)).jwt
            yield Target(stack, browser, sid, token, canary)
    finally:
        await canary.close()


@pytest.fixture
async def target(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Target]:
    async with open_target(tmp_path, clock) as opened:
        yield opened


# --- building tokens --------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return b64url_encode(data)


def json_bytes(value: Any) -> bytes:
    return orjson.dumps(value)


def raw_signed(header: bytes | str, payload: bytes | str, key: SigningKey) -> str:
    """Sign exactly these segments (bytes are base64url-encoded first) with `key`."""
    h = header if isinstance(header, str) else b64(header)
    p = payload if isinstance(payload, str) else b64(payload)
    return f"{h}.{p}.{b64(key.sign(f'{h}.{p}'.encode()))}"


def with_signature(header: bytes | str, payload: bytes | str, signature: bytes | str) -> str:
    h = header if isinstance(header, str) else b64(header)
    p = payload if isinstance(payload, str) else b64(payload)
    s = signature if isinstance(signature, str) else b64(signature)
    return f"{h}.{p}.{s}"


def hmac_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes, alg: str) -> str:
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    h, p = b64(json_bytes({**header, "alg": alg})), b64(json_bytes(claims))
    return with_signature(h, p, hmac.new(secret, f"{h}.{p}".encode(), digest).digest())


def forged_claims(target: Target, **changes: Any) -> dict[str, Any]:
    """The victim's claims, re-stamped now, with `changes` (None removes a claim)."""
    now = target.now
    claims = {**target.claims, "iat": now, "nbf": now - 10, "exp": now + 60}
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def claims_text(target: Target, **raw: str) -> bytes:
    """Payload JSON with some members written verbatim (for numbers JSON libraries won't emit)."""
    claims = forged_claims(target)
    for name in raw:
        claims[name] = f"@@{name}@@"
    text = json_bytes(claims).decode()
    for name, literal in raw.items():
        text = text.replace(f'"@@{name}@@"', literal)
    return text.encode()


def header_text(target: Target, **raw: str) -> bytes:
    header = dict(target.header)
    for name in raw:
        header[name] = f"@@{name}@@"
    text = json_bytes(header).decode()
    for name, literal in raw.items():
        text = text.replace(f'"@@{name}@@"', literal)
    return text.encode()


# --- asserting refusal ------------------------------------------------------------------------


def assert_origin_token(target: Target, jwt: str, posted: str | None) -> None:
    header, claims = decode(jwt)
    assert jwt != posted
    assert header.get("oiat") == claims["iat"] == target.now, "a fresh token of the origin"
    assert claims["sub"] == ALICE_ID, "the cookie owner's claims"
    assert claims["sid"] == target.sid
    pyjwt.decode(
        jwt,
        public_pem(target.key),
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )


def assert_clear_error(answer: Answer) -> None:
    assert answer.status == 503 or 400 <= answer.status < 500, answer.status
    assert answer.status not in (401, 403), "the token route never signs anyone out itself"
    [error] = answer.body["errors"]
    assert set(error) == {"code", "message", "long_message", "meta"}
    assert isinstance(error["code"], str)
    assert error["code"]
    if answer.status in (429, 503):
        assert int(answer.headers["Retry-After"]) >= 1


def assert_nothing_minted(target: Target) -> None:
    minted = {key: n for key, n in target.stack.decisions().items() if key[0] == "minted"}
    assert minted == {}, minted
    assert target.canary.connections == 0, "something outside the origin was contacted"


def check(target: Target, answer: Answer, posted: str | None) -> None:
    assert_nothing_minted(target)
    if answer.status == 200:
        assert_origin_token(target, answer.jwt, posted)
    else:
        assert_clear_error(answer)


async def refused(
    target: Target,
    token: str,
    *,
    reason: str | None = None,
    session_id: str | None = None,
    **refresh: Any,
) -> Answer:
    """Post `token`; it must reach the verifier, be refused (for `reason`), and not be cloned."""
    before, before_reason = target.invalid_count(), target.reason_count(reason or "")
    answer = await target.browser.refresh(session_id or target.sid, token=token, **refresh)
    check(target, answer, token)
    assert target.invalid_count() == before + 1, "the token was verified and refused"
    if reason is not None:
        assert target.reason_count(reason) == before_reason + 1, (
            f"refused for another reason than {reason}: {target.stack.decisions()}"
        )
    target.attempts += 1
    return answer


# --- the harness itself -----------------------------------------------------------------------


async def test_control_the_forging_harness_makes_tokens_the_verifier_accepts(
    target: Target,
) -> None:
    """The builders below produce valid tokens when nothing is wrong, so refusals are real."""
    keys, rules = (
        target.stack.edge_app[SERVICES].keyring.keys,
        target.stack.edge_app[SERVICES].rules,
    )
    tokens = [
        raw_signed(json_bytes(target.header), json_bytes(forged_claims(target)), target.key),
        raw_signed(header_text(target), claims_text(target), target.key),
        raw_signed(header_text(target, oiat=str(target.now)), claims_text(target), target.key),
        sign_compact(dict(target.header), forged_claims(target), target.key),
    ]
    for token in tokens:
        verified = verify_session_token(
            token, session_id=target.sid, keys=keys, rules=rules, now=target.now
        )
        assert verified.claims["sub"] == ALICE_ID
    answer = await target.browser.refresh(target.sid, token=tokens[0])
    assert decode(answer.jwt)[0]["oiat"] == target.header["oiat"]
    assert target.stack.decisions()[("minted", "edge")] == 1


# --- algorithm attacks ------------------------------------------------------------------------


async def test_alg_none_in_all_spellings(target: Target) -> None:
    claims = json_bytes(forged_claims(target, sub="user_bob"))
    real_signature = target.token.rsplit(".", 1)[1]
    for alg in ("none", "None", "NONE", "nOnE", " none", "none\u0000", ""):
        for kid in (target.header["kid"], None):
            header = {"alg": alg, "typ": "JWT"} | ({"kid": kid} if kid else {})
            for signature in ("", "AA", real_signature):
                await refused(target, with_signature(json_bytes(header), claims, signature))
    unsigned = pyjwt.encode(
        forged_claims(target), None, algorithm="none", headers={"kid": target.header["kid"]}
    )
    await refused(target, unsigned)
    for alg_literal in ("null", "[]", '["RS256"]', '{"alg":"RS256"}', "1"):
        token = raw_signed(header_text(target, alg=alg_literal), claims, target.key)
        await refused(target, token)
    missing = {name: value for name, value in target.header.items() if name != "alg"}
    await refused(target, raw_signed(json_bytes(missing), claims, target.key), reason="malformed")


def public_key_encodings(key: SigningKey, jwks_document: bytes) -> dict[str, bytes]:
    public = key.public.key
    pem = public_pem(key)
    return {
        "spki_pem": pem,
        "spki_pem_stripped": pem.strip(),
        "spki_pem_crlf": pem.replace(b"\n", b"\r\n"),
        "pkcs1_pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ),
        "spki_der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "pkcs1_der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        ),
        "openssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "jwk_json": json_bytes(key.public.jwk()),
        "jwks_json": jwks_document,
        "modulus": base64.urlsafe_b64decode(key.public.jwk()["n"] + "=="),
        "empty": b"",
    }


async def test_hmac_with_the_public_key_as_secret_in_every_encoding(target: Target) -> None:
    async with (
        aiohttp.ClientSession() as client,
        client.get(target.stack.origin_url + "/v1/jwks") as response,
    ):
        jwks_document = await response.read()
    claims = forged_claims(target, sub="user_bob")
    for secret in public_key_encodings(target.key, jwks_document).values():
        for alg in ("HS256", "HS384", "HS512"):
            token = hmac_signed(target.header, claims, secret, alg)
            await refused(target, token, reason="alg")
    assert target.attempts == 33


async def test_other_algorithms_on_the_rsa_key(target: Target, tmp_path: Path) -> None:
    """Valid signatures by the instance key itself, under algorithms it is not configured for."""
    private = target.key.private
    assert isinstance(private, rsa.RSAPrivateKey)
    claims = json_bytes(forged_claims(target))
    schemes: dict[str, tuple[Any, Any]] = {
        "RS384": (padding.PKCS1v15(), hashes.SHA384()),
        "RS512": (padding.PKCS1v15(), hashes.SHA512()),
        "PS256": (padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()),
        "PS384": (padding.PSS(padding.MGF1(hashes.SHA384()), 48), hashes.SHA384()),
        "PS512": (padding.PSS(padding.MGF1(hashes.SHA512()), 64), hashes.SHA512()),
    }
    for alg, (pad, digest) in schemes.items():
        h = b64(json_bytes({**target.header, "alg": alg}))
        p = b64(claims)
        signature = private.sign(f"{h}.{p}".encode(), pad, digest)
        await refused(target, with_signature(h, p, signature), reason="alg")
    # Attacker keys of other types, under the instance key's kid.
    ec_key = write_key(tmp_path / "attacker-ec.pem", "ec")
    ed_key = write_key(tmp_path / "attacker-ed.pem", "ed25519")
    for key in (ec_key, ed_key):
        header = {**target.header, "alg": key.alg}
        await refused(target, raw_signed(json_bytes(header), claims, key), reason="alg")
    for alg in ("ES256K", "ES384", "ES512", "Ed448", "RSA-OAEP", "RS256 ", "rs256", "RS256\u0000"):
        header = {**target.header, "alg": alg}
        await refused(target, raw_signed(json_bytes(header), claims, ec_key), reason="alg")


async def test_ecdsa_zero_signatures(target: Target, tmp_path: Path) -> None:
    """CVE-2022-21449: r = s = 0 and friends, against an RSA kid and against a trusted EC key."""
    claims = json_bytes(forged_claims(target, sub="user_bob"))
    rsa_header = json_bytes(target.header)
    for signature in (bytes(64), bytes(256), b"\xff" * 256, encode_dss_signature(0, 0)):
        await refused(target, with_signature(rsa_header, claims, signature))
    es_header = json_bytes({**target.header, "alg": "ES256"})
    await refused(target, with_signature(es_header, claims, bytes(64)), reason="alg")

    # The edge also trusts an EC P-256 key, as during a rotation to ES256.
    services = target.stack.edge_app[SERVICES]
    ec_key = write_key(tmp_path / "edge-ec.pem", "ec")
    origin = services.settings.origin
    services.keyring = KeyRing(
        [target.key, ec_key],
        jwks_url=origin.base_url + origin.jwks_path,
        min_refetch_s=origin.jwks_min_refetch_s,
        clock=target.stack.clock,
    )
    assert await services.keyring.refresh(services.origin.buffered_session)
    ec_header = json_bytes({"alg": "ES256", "kid": ec_key.kid, "typ": "JWT"})
    genuine = raw_signed(ec_header, claims, ec_key)
    verified = verify_session_token(
        genuine,
        session_id=target.sid,
        keys=services.keyring.keys,
        rules=services.rules,
        now=target.now,
    )
    assert verified.kid == ec_key.kid, "control: the EC key is trusted"
    order = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)

    def rs(r: int, s: int) -> bytes:
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    for signature in (
        rs(0, 0),
        rs(0, 1),
        rs(1, 0),
        rs(order, order),
        rs(order, 1),
        bytes(63),
        bytes(65),
        encode_dss_signature(0, 0),
    ):
        await refused(target, with_signature(ec_header, claims, signature), reason="signature")


async def test_stripped_signatures(target: Target) -> None:
    h, p, _ = target.token.split(".")
    forged_p = b64(json_bytes(forged_claims(target, sub="user_bob")))
    for payload in (p, forged_p):
        for token in (f"{h}.{payload}.", f"{h}.{payload}", f"{h}.{payload}..", f"{h}.{payload}.."):
            await refused(target, token, reason="malformed")


async def test_truncated_signatures(target: Target) -> None:
    h, p, s = target.token.split(".")
    signature = base64.urlsafe_b64decode(s + "==")
    for token in (
        f"{h}.{p}.{s[:-1]}",
        f"{h}.{p}.{s[:-2]}",
        f"{h}.{p}.{s[: len(s) // 2]}",
        f"{h}.{p}.{s[:4]}",
        with_signature(h, p, signature[:-1]),
        with_signature(h, p, signature[1:]),
        with_signature(h, p, b"\x00" + signature),
        with_signature(h, p, signature + b"\x00"),
    ):
        await refused(target, token)


async def test_transplanted_signatures(target: Target) -> None:
    async with Browser(target.stack.fapi) as bob:
        bob_sid = await bob.sign_in(BOB)
        bob_token = (await bob.refresh(bob_sid)).jwt
        template_token = (await target.browser.refresh(target.sid, template="integration_demo")).jwt
    h, p, s = target.token.split(".")
    bh, bp, bs = bob_token.split(".")
    th, tp, ts = template_token.split(".")
    forged_p = b64(json_bytes(forged_claims(target, sub="user_bob")))
    for token in (
        f"{h}.{forged_p}.{s}",  # the victim's signature on edited claims
        f"{h}.{p}.{bs}",  # another session's signature on the victim's claims
        f"{bh}.{p}.{bs}",
        f"{h}.{bp}.{s}",
        f"{h}.{tp}.{s}",
    ):
        await refused(target, token, reason="signature")
    await refused(target, f"{th}.{p}.{ts}", reason="claim:cat")  # a template token's header


# --- header attacks ---------------------------------------------------------------------------


def attacker_jwk(key: SigningKey) -> dict[str, str]:
    return key.public.jwk()


async def test_embedded_jwk_header_is_not_trusted(target: Target, tmp_path: Path) -> None:
    """CVE-2018-0114: a token that carries its own verification key."""
    attacker = write_key(tmp_path / "attacker.pem")
    claims = json_bytes(forged_claims(target, sub="user_bob"))
    for kid in (attacker.kid, target.header["kid"]):
        header = {**target.header, "kid": kid, "jwk": attacker_jwk(attacker)}
        await refused(target, raw_signed(json_bytes(header), claims, attacker), reason="header")
    # Even signed by the instance key, a `jwk` member is refused by name.
    header = {**target.header, "jwk": target.key.public.jwk()}
    await refused(target, raw_signed(json_bytes(header), claims, target.key), reason="header")


async def test_jku_and_x5u_headers_are_never_fetched(target: Target, tmp_path: Path) -> None:
    attacker = write_key(tmp_path / "attacker.pem")
    claims = json_bytes(forged_claims(target, sub="user_bob"))
    for member, path in (("jku", "/jwks.json"), ("x5u", "/cert.pem")):
        for key in (attacker, target.key):
            for kid in (attacker.kid, target.header["kid"], target.canary.url + path):
                header = {**target.header, "kid": kid, member: target.canary.url + path}
                await refused(target, raw_signed(json_bytes(header), claims, key))
    assert target.canary.connections == 0
    assert target.attempts == 12


def self_signed_certificate(key: SigningKey) -> bytes:
    private = key.private
    assert isinstance(private, rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "clerk.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


async def test_x5c_header_with_the_attackers_certificate(target: Target, tmp_path: Path) -> None:
    attacker = write_key(tmp_path / "attacker.pem")
    der = self_signed_certificate(attacker)
    claims = json_bytes(forged_claims(target, sub="user_bob"))
    thumb = b64(hashlib.sha1(der).digest())  # noqa: S324 - x5t is defined as SHA-1
    for extra in (
        {"x5c": [base64.b64encode(der).decode()]},
        {"x5c": [base64.b64encode(der).decode()], "x5t": thumb},
        {"x5t": thumb},
        {"x5t#S256": b64(hashlib.sha256(der).digest())},
    ):
        for kid in (attacker.kid, target.header["kid"]):
            header = {**target.header, "kid": kid, **extra}
            await refused(target, raw_signed(json_bytes(header), claims, attacker), reason="header")


async def test_hostile_kid_values(target: Target, tmp_path: Path) -> None:
    """Path traversal, injection and type confusion in `kid`: never a lookup outside the key set."""
    attacker = write_key(tmp_path / "attacker.pem")
    keyring = target.stack.edge_app[SERVICES].keyring
    settings = target.stack.edge_app[SERVICES].settings.origin
    target.stack.clock.advance(settings.jwks_min_refetch_s + 1)  # a refetch is allowed now
    fetches = keyring.fetches
    claims = forged_claims(target, sub="user_bob")
    kids: list[Any] = [
        "../../../../../../dev/null",
        "/dev/null",
        "/proc/self/environ",
        "file:///etc/passwd",
        target.canary.url + "/kid",
        "' OR '1'='1",
        "x' UNION SELECT 'secret' --",
        "`id`",
        "| cat /etc/passwd",
        "$(id)",
        "\u0000",
        "",
        " ",
        target.header["kid"] + " ",
        target.header["kid"] + "\u0000",
        target.header["kid"].upper(),
        "k" * 12_000,
        "__proto__",
        "constructor",
        123,
        None,
        True,
        [target.header["kid"]],
        {"$ne": None},
    ]
    for kid in kids:
        header = {**target.header, "kid": kid}
        # HMAC with an empty secret (the /dev/null trick) and the attacker's RSA key.
        await refused(target, hmac_signed(header, claims, b"", "HS256"))
        await refused(target, sign_compact(header, claims, attacker))
    assert keyring.fetches == fetches + 1, "unknown kids refetch the origin JWKS once at most"


async def test_crit_in_all_forms(target: Target) -> None:
    claims = json_bytes(forged_claims(target))
    for extra in (
        {"crit": ["exp"]},
        {"crit": ["b64"], "b64": True},
        {"crit": ["b64"], "b64": False},
        {"crit": []},
        {"crit": "exp"},
        {"crit": None},
        {"crit": ["oiat"]},
        {"crit": ["kid"]},
        {"crit": ["https://example.invalid/ext"], "https://example.invalid/ext": True},
        {"crit": ["crit"]},
    ):
        header = {**target.header, **extra}
        await refused(target, raw_signed(json_bytes(header), claims, target.key), reason="header")


async def test_b64_false_unencoded_payload(target: Target) -> None:
    """RFC 7797: the signature over the raw payload, in attached and detached forms."""
    payload = json_bytes(forged_claims(target))
    for extra in ({"b64": False, "crit": ["b64"]}, {"b64": False}):
        h = b64(json_bytes({**target.header, **extra}))
        signature = b64(target.key.sign(h.encode() + b"." + payload))
        await refused(target, f"{h}.{payload.decode()}.{signature}")
        await refused(target, f"{h}..{signature}")
        h_b64_payload = raw_signed(h, payload, target.key)
        await refused(target, h_b64_payload, reason="header")


async def test_unknown_header_members_and_typ(target: Target) -> None:
    claims = json_bytes(forged_claims(target))
    typs: list[Any] = [
        "at+jwt",
        "application/at+jwt",
        "jwt",
        "Jwt",
        "JWT ",
        "JWS",
        "JOSE",
        "JOSE+JSON",
        "secevent+jwt",
        "dpop+jwt",
        "",
        None,
        1,
        ["JWT"],
    ]
    for typ in typs:
        header = {**target.header, "typ": typ}
        await refused(target, raw_signed(json_bytes(header), claims, target.key), reason="header")
    for extra in (
        {"cty": "JWT"},
        {"zip": "DEF"},
        {"enc": "A256GCM"},
        {"epk": {"kty": "EC"}},
        {"p2s": "AAAA", "p2c": 1},
        {"url": "https://example.invalid"},
        {"nonce": "x"},
        {"ppt": "shaken"},
        {"svt": ["x"]},
        {"__proto__": {"alg": "none"}},
        {"constructor": {}},
        {"x": 1},
    ):
        header = {**target.header, **extra}
        await refused(target, raw_signed(json_bytes(header), claims, target.key), reason="header")


# --- structure and encoding attacks -----------------------------------------------------------


async def test_nested_tokens(target: Target) -> None:
    """A JWS whose payload is itself a JWT (RFC 7519 §7.2), with or without `cty: JWT`."""
    inner = target.token
    for extra in ({}, {"cty": "JWT"}):
        header = json_bytes({**target.header, **extra})
        await refused(target, raw_signed(header, inner.encode(), target.key))
        await refused(target, raw_signed(header, json_bytes(inner), target.key))
        await refused(target, raw_signed(header, json_bytes({"jwt": inner}), target.key))


async def test_jwe_tokens(target: Target) -> None:
    """A JWE encrypted to the instance's public key: anyone can make one, it proves nothing."""
    public = jwk.JWK.from_pem(public_pem(target.key))
    plaintext = json_bytes(forged_claims(target, sub="user_bob"))
    for alg, enc in (("RSA-OAEP-256", "A256GCM"), ("RSA-OAEP", "A128CBC-HS256")):
        protected = {"alg": alg, "enc": enc, "kid": target.header["kid"], "typ": "JWT"}
        token = jwe.JWE(plaintext, protected=orjson.dumps(protected).decode())
        token.add_recipient(public)
        await refused(target, token.serialize(compact=True), reason="malformed")
    dir_header = b64(json_bytes({"alg": "dir", "enc": "A128GCM", "kid": target.header["kid"]}))
    await refused(target, f"{dir_header}..AAAAAAAAAAAAAAAA.{b64(plaintext)}.AAAAAAAAAAAAAAAAAAAAAA")


async def test_json_serialisations_and_compact_json_polyglots(target: Target) -> None:
    """RFC 7515 JSON forms (validly signed) and CVE-2022-39227's polyglot."""
    key = jwk.JWK.from_pem(
        target.key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signed = jws.JWS(json_bytes(forged_claims(target)))
    signed.add_signature(key, None, orjson.dumps(dict(target.header)).decode())
    flattened = signed.serialize(compact=False)
    document = orjson.loads(flattened)
    payload = document.pop("payload")
    general = orjson.dumps({"payload": payload, "signatures": [document]}).decode()
    await refused(target, general, reason="malformed")
    await refused(target, flattened, reason="malformed")
    h, p, s = target.token.split(".")
    forged_p = b64(json_bytes(forged_claims(target, sub="user_bob")))
    polyglot = f'{{"  {h}.{forged_p}.":"","protected":"{h}","payload":"{p}","signature":"{s}"}}'
    await refused(target, polyglot, reason="malformed")
    await refused(target, f"{h}.{p}.{s}" + '{"signature":"x"}', reason="malformed")


async def test_padding_and_non_canonical_base64url(target: Target) -> None:
    """Other spellings of the same bytes, each validly signed over exactly what is sent."""
    h, p, s = target.token.split(".")
    header_bytes = base64.urlsafe_b64decode(h + "==")
    payload_bytes = json_bytes(forged_claims(target))
    p2 = b64(payload_bytes)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

    def padded(segment: str) -> str:
        return segment + "=" * (-len(segment) % 4) if len(segment) % 4 else segment + "===="

    def std_alphabet(segment: str) -> str:
        return segment.replace("-", "+").replace("_", "/")

    def stray_bits(segment: str) -> str:
        unused = {2: 0b1111, 3: 0b11}.get(len(segment) % 4)
        assert unused is not None, "this segment has no spare bits"
        last = alphabet.index(segment[-1])
        return segment[:-1] + alphabet[last | unused]

    def mime(segment: str) -> str:
        return "\n".join(segment[i : i + 64] for i in range(0, len(segment), 64))

    sigs = [padded(s), std_alphabet(s) if ("-" in s or "_" in s) else s + "+", mime(s)]
    if len(s) % 4 in (2, 3):
        sigs.append(stray_bits(s))
    for signature in sigs:
        assert signature != s
        await refused(target, f"{h}.{p}.{signature}", reason="malformed")
    # Header and payload variants, signed with the instance key over the variant text.
    header_variants = [padded(h), h + "%3D", mime(b64(header_bytes)) if len(h) > 64 else h + "="]
    payload_variants = [padded(p2), mime(p2), p2 + "%3D%3D"]
    if len(p2) % 4 in (2, 3):
        payload_variants.append(stray_bits(p2))
    if "-" in p2 or "_" in p2:
        payload_variants.append(std_alphabet(p2))
    for header_variant in header_variants:
        await refused(target, raw_signed(header_variant, p2, target.key), reason="malformed")
    for payload_variant in payload_variants:
        await refused(target, raw_signed(h, payload_variant, target.key), reason="malformed")


async def test_whitespace_and_non_ascii(target: Target) -> None:
    token = raw_signed(json_bytes(target.header), json_bytes(forged_claims(target)), target.key)
    h, p, s = token.split(".")
    for variant in (
        " " + token,
        token + " ",
        token + "\n",
        "\t" + token,
        f"{h}. {p}.{s}",
        f"{h}.{p}\r\n.{s}",
        f"{h}\u200b.{p}.{s}",  # zero-width space
        f"{h}.{p}.{s}\u00a0",  # no-break space
        f"{h}\uff0e{p}\uff0e{s}",  # fullwidth full stops
        f"{h}\u2024{p}\u2024{s}",  # one dot leader
        f"{h}.{p}.{s[:-1]}\u0391",  # Greek capital alpha for "A"
        f"{h}.{p[:-1]}\u0665.{s}",  # an Arabic-Indic digit
        f"{h}.{p}.{s}\u0000",
    ):
        await refused(target, variant)
    # Whitespace and non-ASCII inside the signed JSON around the header members.
    for header in (
        b'\xc2\xa0{"alg":"RS256","kid":"' + target.header["kid"].encode() + b'","typ":"JWT"}',
        b'{"alg":"RS256","kid":"' + target.header["kid"].encode() + b'","typ":"JW\xd0\xa2"}',
        b'{"alg":"RS256","kid":"' + target.header["kid"].encode() + b'","typ":"JWT"}\x00',
    ):
        await refused(target, raw_signed(header, json_bytes(forged_claims(target)), target.key))


async def test_duplicate_json_members_in_header_and_payload(target: Target) -> None:
    kid = target.header["kid"]
    claims = json_bytes(forged_claims(target))
    for header in (
        f'{{"alg":"RS256","kid":"{kid}","typ":"JWT","alg":"none"}}',
        f'{{"alg":"none","alg":"RS256","kid":"{kid}","typ":"JWT"}}',
        f'{{"alg":"RS256","kid":"{kid}","kid":"other","typ":"JWT"}}',
        f'{{"alg":"RS256","kid":"{kid}","typ":"JWT","t\\u0079p":"at+jwt"}}',
    ):
        await refused(target, raw_signed(header.encode(), claims, target.key), reason="malformed")
    base = json_bytes(forged_claims(target)).decode()[:-1]
    for extra in (
        ',"sub":"user_bob"',
        ',"s\\u0075b":"user_bob"',
        ',"sid":"sess_other"',
        ',"v":2,"v":1',
        ',"exp":9999999999',
    ):
        payload = (base + extra + "}").encode()
        token = raw_signed(json_bytes(target.header), payload, target.key)
        await refused(target, token, reason="malformed")
    nested = base + ',"o":{"id":"org_acme","rol":"member","rol":"admin"}}'
    await refused(
        target,
        raw_signed(json_bytes(target.header), nested.encode(), target.key),
        reason="malformed",
    )


async def test_byte_order_marks(target: Target) -> None:
    header, claims = json_bytes(target.header), json_bytes(forged_claims(target))
    for h, p in (
        (b"\xef\xbb\xbf" + header, claims),
        (header, b"\xef\xbb\xbf" + claims),
        (header, "\ufeff".encode("utf-16-le") + claims.decode().encode("utf-16-le")),
        (header, claims.decode().encode("utf-16")),
        (header, claims.decode().encode("utf-32")),
        (header.decode().encode("utf-16"), claims),
    ):
        await refused(target, raw_signed(h, p, target.key), reason="malformed")


async def test_non_object_payloads(target: Target) -> None:
    claims = forged_claims(target)
    header = json_bytes(target.header)
    text = json_bytes(claims)
    for payload in (
        b"[]",
        json_bytes([claims]),
        b'"user_alice"',
        b"1",
        b"true",
        b"null",
        b" ",
        text + b" x",
        text + text,
        text + b"\x00",
        b"{",
    ):
        await refused(target, raw_signed(header, payload, target.key), reason="malformed")
    for header_payload in (b"[]", json_bytes([dict(target.header)]), b'"RS256"', b"null"):
        await refused(target, raw_signed(header_payload, text, target.key), reason="malformed")


async def test_deep_nesting(target: Target) -> None:
    base = json_bytes(forged_claims(target)).decode()[:-1]
    for depth, opener, closer in ((5000, "[", "]"), (1200, '{"a":', "}"), (300, "[", "]")):
        payload = f'{base},"deep":{opener * depth}1{closer * depth}}}'.encode()
        token = raw_signed(json_bytes(target.header), payload, target.key)
        await refused(target, token, reason="malformed")
    deep_header = header_text(target, cat="[" * 3000 + "]" * 3000)
    await refused(target, raw_signed(deep_header, base.encode() + b"}", target.key))


TIME_LITERALS = (
    "1e308",
    "1e400",
    "-1e400",
    str(2**64),
    str(2**63),
    str(2**53),
    "9" * 5000,
    "-1",
    "1.5",
    "NaN",
    "Infinity",
    "-Infinity",
    "true",
    "false",
    "null",
    '"{now}"',
    "{now}.0",
    "{now}e0",
    "[{now}]",
    '{{"t":{now}}}',
)


async def test_huge_numbers_floats_nan_and_booleans_in_time_claims(target: Target) -> None:
    now = target.now
    header = json_bytes(target.header)
    for claim in ("iat", "nbf", "exp"):
        for literal in TIME_LITERALS:
            payload = claims_text(target, **{claim: literal.format(now=now)})
            await refused(target, raw_signed(header, payload, target.key))


async def test_huge_numbers_floats_nan_and_booleans_in_oiat(target: Target) -> None:
    payload = json_bytes(forged_claims(target))
    for literal in TIME_LITERALS:
        header = header_text(target, oiat=literal.format(now=target.now - 1))
        await refused(target, raw_signed(header, payload, target.key))


async def test_future_iat_and_nbf(target: Target) -> None:
    now = target.now
    for iat, nbf in ((now + 6, now - 4), (now + 3600, now + 3590), (now, now + 6), (now, 2**52)):
        claims = forged_claims(target, iat=iat, nbf=nbf, exp=iat + 60)
        header = {**target.header, "oiat": min(iat, now)}
        await refused(target, sign_compact(header, claims, target.key))
    future = forged_claims(target, iat=now + 600, nbf=now + 590, exp=now + 660)
    await refused(
        target,
        sign_compact({**target.header, "oiat": now + 600}, future, target.key),
        reason="claim:iat",
    )


async def test_oiat_later_than_iat(target: Target) -> None:
    now = target.now
    claims = forged_claims(target)
    for oiat in (now + 1, now + 5, now + 3600, 2**52):
        header = {**target.header, "oiat": oiat}
        await refused(target, sign_compact(header, claims, target.key), reason="claim:oiat")
    # A fresher-looking oiat than the origin ever issued, on an older iat.
    older = forged_claims(target, iat=now - 30, nbf=now - 40, exp=now + 30)
    header = {**target.header, "oiat": now - 29}
    await refused(target, sign_compact(header, older, target.key), reason="claim:oiat")


async def test_expired_beyond_the_grace(target: Target) -> None:
    grace = target.stack.edge_app[SERVICES].rules.max_expired_s
    now = target.now
    iat = now - grace - 61
    claims = forged_claims(target, iat=iat, nbf=iat - 10, exp=iat + 60)
    header = {**target.header, "oiat": iat}
    await refused(target, sign_compact(header, claims, target.key), reason="expired")
    for exp in (iat, iat - 1, 0):
        claims = forged_claims(target, iat=now - 10, nbf=now - 20, exp=exp)
        await refused(target, sign_compact({**target.header, "oiat": now - 10}, claims, target.key))


async def test_foreign_issuer(target: Target) -> None:
    issuer = target.claims["iss"]
    for iss in (
        "https://evil.example",
        issuer + "/",
        issuer.upper(),
        issuer + "\u0000",
        [issuer],
        {"iss": issuer},
        "",
        None,
    ):
        claims = (
            forged_claims(target, iss=iss) if iss is not None else forged_claims(target, iss=None)
        )
        await refused(
            target, sign_compact(dict(target.header), claims, target.key), reason="claim:iss"
        )


async def test_foreign_authorized_party(tmp_path: Path, clock: FakeClock) -> None:
    tokens = TokenSettings(authorized_parties=(BROWSER_ORIGIN,))
    async with open_target(tmp_path, clock, tokens=tokens) as target:
        assert target.claims["azp"] == BROWSER_ORIGIN
        for azp in ("https://evil.example", BROWSER_ORIGIN + "/", [BROWSER_ORIGIN], "", None):
            claims = forged_claims(target, azp=azp)
            token = sign_compact(dict(target.header), claims, target.key)
            await refused(target, token, reason="claim:azp")


async def test_foreign_sid_claim(target: Target) -> None:
    sid = target.sid
    for value in (
        "sess_someone_else",
        sid.upper(),
        sid + " ",
        sid + "\u0000",
        sid[:-1],
        "\uff53" + sid[1:],  # fullwidth "s": equal after NFKC, not byte for byte
        [sid],
        {"id": sid},
        "",
        None,
    ):
        claims = forged_claims(target, sid=value)
        await refused(
            target, sign_compact(dict(target.header), claims, target.key), reason="claim:sid"
        )


async def test_session_token_for_another_session(target: Target) -> None:
    async with Browser(target.stack.fapi) as bob:
        bob_sid = await bob.sign_in(BOB)
        bob_token = (await bob.refresh(bob_sid)).jwt
    await refused(target, bob_token, reason="claim:sid")
    before = target.invalid_count()
    answer = await target.browser.refresh(
        target.sid, token=None, query="expired_token=" + bob_token
    )
    check(target, answer, bob_token)
    assert target.invalid_count() == before + 1


async def test_template_and_foreign_cat_tokens(target: Target) -> None:
    template = (await target.browser.refresh(target.sid, template="integration_demo")).jwt
    assert decode(template)[0].get("cat") != SESSION_TOKEN_CAT
    await refused(target, template)
    claims = forged_claims(target)
    for cat in ("cl_template_integration_demo", "cl_other", SESSION_TOKEN_CAT.lower(), "", 1, None):
        header = {**target.header, "cat": cat}
        await refused(target, sign_compact(header, claims, target.key), reason="claim:cat")


async def test_machine_and_access_tokens(target: Target) -> None:
    for sub in ("mch_2xYz", "mch_", 123, "", ["user_alice"], None):
        claims = forged_claims(target, sub=sub)
        await refused(
            target, sign_compact(dict(target.header), claims, target.key), reason="claim:sub"
        )
    header = {**target.header, "typ": "at+jwt"}
    await refused(target, sign_compact(header, forged_claims(target), target.key), reason="header")


async def test_tokens_signed_by_a_rotated_out_key(target: Target, tmp_path: Path) -> None:
    """A key the edge no longer has: one JWKS refetch per `jwks_min_refetch_s`, still refused."""
    retired = write_key(tmp_path / "retired.pem")
    keyring = target.stack.edge_app[SERVICES].keyring
    min_refetch = target.stack.edge_app[SERVICES].settings.origin.jwks_min_refetch_s
    header = {**target.header, "kid": retired.kid}
    target.stack.clock.advance(min_refetch + 1)  # past the start-up fetch
    fetches = keyring.fetches
    for _ in range(5):
        token = sign_compact(header, forged_claims(target), retired)
        await refused(target, token, reason="unknown_kid")
    assert keyring.fetches == fetches + 1
    target.stack.clock.advance(min_refetch + 1)
    for _ in range(3):
        token = sign_compact(header, forged_claims(target), retired)
        await refused(target, token, reason="unknown_kid")
    assert keyring.fetches == fetches + 2
    # Under the current kid, a retired key's signature is just a bad signature.
    token = sign_compact(dict(target.header), forged_claims(target), retired)
    await refused(target, token, reason="signature")
    assert keyring.fetches == fetches + 2


async def test_oversized_tokens_and_bodies(target: Target) -> None:
    claims = forged_claims(target, padding="x" * 13_000)
    token = sign_compact(dict(target.header), claims, target.key)
    assert len(token) > 16 * 1024
    await refused(target, token, reason="malformed")
    path = f"/v1/client/sessions/{target.sid}/tokens"
    limit = target.stack.edge_app[SERVICES].settings.server.max_body_bytes
    huge = {"organization_id": "", "token": "a" * limit}
    answer = await target.browser.request("POST", path, data=huge)
    check(target, answer, None)
    assert answer.status == 413

    async def chunks() -> AsyncIterator[bytes]:
        yield b"organization_id=&token="
        for _ in range(limit // 1024 + 2):
            yield b"a" * 1024

    answer = await target.browser.request(
        "POST", path, data=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    check(target, answer, None)
    assert answer.status == 413
    answer = await target.browser.request(
        "POST",
        path,
        data=b"\x1f\x8b" + b"\x00" * 64,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"},
    )
    check(target, answer, None)
    assert answer.status == 415


async def test_forged_tokens_while_the_origin_is_down_get_503(target: Target) -> None:
    """In outage mode a refused token is a 503 with Retry-After, never an edge clone."""
    await target.stack.origin_faults("error503")
    forged = sign_compact(dict(target.header), forged_claims(target, sub="user_bob"), target.key)
    h, p, _ = forged.split(".")
    for token in (
        f"{h}.{p}.{target.token.rsplit('.', 1)[1]}",
        hmac_signed(target.header, forged_claims(target), public_pem(target.key), "HS256"),
    ):
        answer = await refused(target, token)
        assert answer.status == 503
        assert answer.error_code == "origin_unavailable"


async def test_stolen_token_replayed_by_another_client_is_not_cloned(
    target: Target,
) -> None:
    """SECURITY.md: edge mints are bound to the client the origin served the session to."""
    async with Browser(target.stack.fapi) as thief:  # no __client cookie
        answer = await thief.refresh(target.sid, token=target.token)
        thief.client.cookie_jar.update_cookies({"__client": "the-thiefs-own-client"})
        with_own_cookie = await thief.refresh(target.sid, token=target.token)
    assert answer.status != 200, "the origin wants the victim's client"
    assert with_own_cookie.status != 200
    decisions = target.stack.decisions()
    assert decisions[("origin", "client")] == 2
    assert not any(outcome == "minted" for outcome, _ in decisions)
    # the victim, with its own cookie, is still minted at the edge
    fresh = await target.browser.refresh(target.sid, token=target.token)
    assert decode(fresh.jwt)[0]["oiat"] == target.header["oiat"]
    assert target.stack.decisions()[("minted", "edge")] == 1
    assert target.canary.connections == 0


async def test_a_stolen_older_token_cannot_ride_on_the_victims_fresher_claims(
    target: Target,
) -> None:
    """An unbound session (its tokens came from the origin some other way): the victim
    posts a fresher token, which the edge keeps; the thief's older one is not cloned
    from it, but sent to the origin, which wants the cookie."""
    stack = target.stack
    async with Browser(stack.fapi) as victim, Browser(stack.fapi) as thief:
        sid = await victim.sign_in(BOB)
        straight = Browser(stack.origin_url)  # the victim's cookies, past the edge
        straight.client = victim.client
        stolen = (await straight.refresh(sid)).jwt
        stack.clock.advance(100)
        fresher = (await straight.refresh(sid)).jwt
        minted = (await victim.refresh(sid, token=fresher)).jwt
        assert decode(minted)[0]["oiat"] == decode(fresher)[0]["oiat"], "control"
        answer = await thief.refresh(sid, token=stolen)
    assert answer.status != 200, "the origin wants the victim's client"
    assert stack.decisions()[("origin", "unbound")] == 1
    assert stack.decisions()[("minted", "edge")] == 1
    assert target.canary.connections == 0


async def test_stolen_token_of_an_unbound_session_dies_at_the_claims_age_bound(
    target: Target,
) -> None:
    """A session the edge never saw at the origin is unbound: a stolen token buys clones
    only until `oiat + max_claims_age_s`, then the origin wants the cookie."""
    stack = target.stack
    async with Browser(stack.fapi) as victim, Browser(stack.fapi) as thief:
        signed_in = await victim.request(
            "POST",
            "/v1/client/sign_ins",
            data={"identifier": "bob@example.com", "password": "battery-staple"},
        )
        session = signed_in.body["client"]["sessions"][0]
        sid, stolen = session["id"], session["last_active_token"]["jwt"]
        bound = stack.edge_app[SERVICES].bounds.max_claims_age_s
        oiat = decode(stolen)[0]["oiat"]
        clock = stack.clock
        for at in (30, bound - 10):
            clock.advance(oiat + at - clock.now)
            stolen = (await thief.refresh(sid, token=stolen)).jwt
            header, claims = decode(stolen)
            assert header["oiat"] == oiat
            assert claims["exp"] <= oiat + bound
        clock.advance(oiat + bound + 1 - clock.now)
        answer = await thief.refresh(sid, token=stolen)
    assert answer.status != 200, "past the bound the origin wants the cookie"
    assert stack.decisions()[("minted", "edge")] == 2
    assert stack.decisions()[("origin", "too_old")] == 1
    assert target.canary.connections == 0
