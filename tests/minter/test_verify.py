"""minter.verify: every rule a posted token must pass, one refusal per test case."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from typing import Any, Literal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from minter import (
    IGNORED_CAT,
    MAX_TOKEN_BYTES,
    SESSION_TOKEN_CAT,
    AlgorithmMismatch,
    BadSignature,
    ClaimRejected,
    ForbiddenHeader,
    KeySet,
    MalformedToken,
    SigningKey,
    TokenExpired,
    TokenRejected,
    UnknownKey,
    VerifiedToken,
    VerifyRules,
    load_private_key,
    organization_of,
    verify_session_token,
    verify_signed_here,
)
from minter.jws import b64url_decode, b64url_encode, encode_json
from minter.verify import check_kept_claims

from .builders import (
    AZP,
    ISSUER,
    JTI,
    NOW,
    OMIT,
    ORG,
    SID,
    TEMPLATE_CAT,
    TokenFactory,
    pem_of,
    session_claims,
)

MAX_TIME = 1 << 53


@pytest.fixture
def verify(keyset: KeySet, rules: VerifyRules) -> Any:
    def run(
        token: str,
        *,
        now: int = NOW,
        session_id: str = SID,
        rules: VerifyRules = rules,
        keys: KeySet = keyset,
    ) -> VerifiedToken:
        return verify_session_token(token, session_id=session_id, keys=keys, rules=rules, now=now)

    return run


@pytest.fixture
def refused(verify: Any) -> Any:
    """Verify a token that must be refused; return the error after checking its class."""

    def run(token: str, expected: type[TokenRejected], reason: str, **kwargs: Any) -> Any:
        with pytest.raises(TokenRejected) as caught:
            verify(token, **kwargs)
        assert type(caught.value) is expected, caught.value
        assert caught.value.reason == reason
        return caught.value

    return run


def raw_token(header: dict[str, Any], claims: dict[str, Any], key: SigningKey) -> str:
    """Sign arbitrary bytes-level segments (for header/payload shapes the builder avoids)."""
    h = b64url_encode(json.dumps(header).encode())
    p = b64url_encode(json.dumps(claims).encode())
    return f"{h}.{p}.{b64url_encode(key.sign(f'{h}.{p}'.encode()))}"


# happy paths ---------------------------------------------------------------------


@pytest.mark.parametrize("signer", ["minter", "pyjwt"])
def test_an_origin_token_verifies(
    verify: Any, make_token: TokenFactory, signer: Literal["minter", "pyjwt"]
) -> None:
    token = make_token(signer=signer)
    result = verify(token)
    assert result.claims == session_claims()
    assert result.header["kid"] == make_token.key.kid
    assert result.kid == make_token.key.kid
    assert (result.iat, result.oiat, result.exp) == (NOW - 20, NOW - 20, NOW + 40)
    assert result.from_origin is True
    assert result.lifetime_s == 60
    assert result.organization_id == ORG
    assert result.cat == SESSION_TOKEN_CAT


def test_an_edge_minted_token_is_not_from_the_origin(verify: Any, make_token: TokenFactory) -> None:
    result = verify(make_token(iat=NOW - 5, exp=NOW + 25, header={"oiat": NOW - 200}))
    assert result.oiat == NOW - 200
    assert result.iat == NOW - 5
    assert result.from_origin is False
    assert result.lifetime_s == 30


def test_oiat_defaults_to_iat_and_cat_may_be_absent(verify: Any, make_token: TokenFactory) -> None:
    result = verify(make_token(header={"oiat": OMIT, "cat": OMIT, "typ": OMIT}))
    assert result.oiat == result.iat == NOW - 20
    assert result.cat is None
    assert result.from_origin is True


def test_v1_org_id_claim_gives_the_organization(verify: Any, make_token: TokenFactory) -> None:
    assert verify(make_token(o=OMIT, org_id="org_v1", v=OMIT)).organization_id == "org_v1"
    assert verify(make_token(o=OMIT)).organization_id == ""


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"o": {"id": "org_x"}}, "org_x"),
        ({"o": {"id": "org_x"}, "org_id": "org_y"}, "org_x"),
        ({"org_id": "org_y"}, "org_y"),
        ({"o": {"rol": "admin"}}, ""),
        ({"o": {"id": 5}}, ""),
        ({"o": "org_x"}, ""),
        ({"org_id": None}, ""),
        ({}, ""),
    ],
)
def test_organization_of(claims: dict[str, Any], expected: str) -> None:
    assert organization_of(claims) == expected


def test_any_azp_is_accepted_when_none_is_configured(verify: Any, make_token: TokenFactory) -> None:
    assert verify(make_token(azp="https://anything.example")).claims["azp"]
    assert "azp" not in verify(make_token(azp=OMIT)).claims


def test_configured_azp_is_accepted(verify: Any, make_token: TokenFactory, rules: Any) -> None:
    configured = replace(rules, authorized_parties=frozenset({AZP, "https://b.example"}))
    assert verify(make_token(), rules=configured).claims["azp"] == AZP


def test_a_second_allowed_issuer(verify: Any, make_token: TokenFactory, rules: Any) -> None:
    two = replace(rules, issuers=frozenset({ISSUER, "https://clerk.other.test"}))
    assert verify(make_token(iss="https://clerk.other.test"), rules=two).claims["iss"]


def test_verification_does_not_depend_on_member_order(
    verify: Any, make_token: TokenFactory
) -> None:
    claims = dict(reversed(list(session_claims().items())))
    header = {"oiat": NOW - 20, "cat": SESSION_TOKEN_CAT, "typ": "JWT", "kid": make_token.key.kid}
    header["alg"] = "RS256"
    assert verify(raw_token(header, claims, make_token.key)).claims == session_claims()


# size and form ---------------------------------------------------------------------


def test_a_token_over_the_size_cap_is_refused(
    refused: Any, verify: Any, make_token: TokenFactory, rules: VerifyRules
) -> None:
    huge = make_token(padding="x" * MAX_TOKEN_BYTES)
    assert len(huge) > MAX_TOKEN_BYTES
    refused(huge, MalformedToken, "malformed")
    token = make_token()
    assert verify(token, rules=replace(rules, max_token_bytes=len(token))).iat == NOW - 20
    refused(
        token, MalformedToken, "malformed", rules=replace(rules, max_token_bytes=len(token) - 1)
    )


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: t.rsplit(".", 1)[0], id="two-segments"),
        pytest.param(lambda t: t + ".e30", id="four-segments"),
        pytest.param(lambda t: t.rsplit(".", 1)[0] + ".", id="signature-stripped"),
        pytest.param(lambda t: "." + t.split(".", 1)[1], id="header-empty"),
        pytest.param(lambda t: t.replace(".", "..", 1), id="empty-middle"),
        pytest.param(lambda t: t + "=", id="signature-padded"),
        pytest.param(lambda t: t + "\n", id="trailing-newline"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: "x" + t, id="header-not-base64url-length"),
    ],
)
def test_not_a_canonical_compact_jws(refused: Any, make_token: TokenFactory, mangle: Any) -> None:
    refused(mangle(make_token()), MalformedToken, "malformed")


def test_a_non_ascii_payload_segment_is_malformed(refused: Any, make_token: TokenFactory) -> None:
    header, payload, signature = make_token().split(".")
    refused(f"{header}.{payload}\u00e9.{signature}", MalformedToken, "malformed")
    refused(f"{header}.\uff21{payload}.{signature}", MalformedToken, "malformed")


def test_a_non_canonical_payload_spelling_is_malformed(
    refused: Any, make_token: TokenFactory
) -> None:
    # Find a token whose payload ends in stray bits, and flip them: same bytes, other text.
    for extra in range(3):
        header, payload, signature = make_token(pad="y" * extra).split(".")
        if len(payload) % 4:
            break
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spelled = payload[:-1] + alphabet[alphabet.index(payload[-1]) + 1]
    assert base64.urlsafe_b64decode(spelled + "==") == base64.urlsafe_b64decode(payload + "==")
    refused(f"{header}.{spelled}.{signature}", MalformedToken, "malformed")


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b'{"alg":"RS256","kid":"k","alg":"RS256"}', id="duplicate-member"),
        pytest.param(b'["RS256"]', id="array"),
        pytest.param(b"\xef\xbb\xbf{}", id="bom"),
        pytest.param(b'{"alg":"RS256",', id="truncated"),
        pytest.param(b"", id="empty-json"),
    ],
)
def test_a_header_that_is_not_a_strict_json_object(
    refused: Any, make_token: TokenFactory, header: bytes
) -> None:
    _, payload, signature = make_token().split(".")
    first = b64url_encode(header) or "AA"
    refused(f"{first}.{payload}.{signature}", MalformedToken, "malformed")


def test_a_signed_payload_that_is_not_a_strict_json_object(
    refused: Any, signing_key: SigningKey
) -> None:
    header = b64url_encode(encode_json({"alg": "RS256", "kid": signing_key.kid}))
    for body in (b'{"sid":"a","sid":"b"}', b"[1]", b'{"exp":1e400}', b'{"a":"\\ud800"}'):
        payload = b64url_encode(body)
        signature = b64url_encode(signing_key.sign(f"{header}.{payload}".encode()))
        refused(f"{header}.{payload}.{signature}", MalformedToken, "malformed")


# header ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("x5c", ["MIIB"]),
        ("jwk", {"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        ("crit", ["exp"]),
        ("b64", False),
        ("zip", "DEF"),
        ("enc", "A256GCM"),
    ],
)
def test_dangerous_header_members_are_refused(
    refused: Any, make_token: TokenFactory, member: str, value: object
) -> None:
    error = refused(make_token(header={member: value}), ForbiddenHeader, "header")
    assert error.member == member


@pytest.mark.parametrize("member", ["foo", "x5t", "cty", "OIAT", "Kid"])
def test_unknown_header_members_are_refused(
    refused: Any, make_token: TokenFactory, member: str
) -> None:
    error = refused(make_token(header={member: "x"}), ForbiddenHeader, "header")
    assert error.member == member


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "JWS", "jwt", "", None, 1])
def test_typ_other_than_jwt_is_refused(refused: Any, make_token: TokenFactory, typ: object) -> None:
    error = refused(make_token(header={"typ": typ}), ForbiddenHeader, "header")
    assert error.member == "typ"


def test_the_category_that_ignores_classes_is_accepted_as_a_session_token(
    verify: Any, make_token: TokenFactory
) -> None:
    """As @clerk/backend does: instances with `use_ignore_jwt_cat` stamp it on every token."""
    assert verify(make_token(header={"cat": IGNORED_CAT})).cat == IGNORED_CAT


@pytest.mark.parametrize(
    "cat", [TEMPLATE_CAT, "", SESSION_TOKEN_CAT.lower(), IGNORED_CAT.lower(), 0, None, [], {}]
)
def test_a_token_of_another_class_is_refused(
    refused: Any, make_token: TokenFactory, cat: object
) -> None:
    error = refused(make_token(header={"cat": cat}), ClaimRejected, "claim:cat")
    assert error.claim == "cat"


@pytest.mark.parametrize("alg", ["none", "None", "HS256", "RS384", "RS512", "PS256", "ES256"])
def test_an_alg_other_than_the_keys_is_refused(
    refused: Any, make_token: TokenFactory, alg: str
) -> None:
    # Signed with the RSA key itself: only the header's claim differs.
    refused(make_token(header={"alg": alg}), AlgorithmMismatch, "alg")


def test_alg_none_with_an_empty_signature_is_malformed(
    refused: Any, make_token: TokenFactory
) -> None:
    header, payload, _ = make_token(header={"alg": "none"}).split(".")
    refused(f"{header}.{payload}.", MalformedToken, "malformed")


def test_hs256_signed_with_the_public_key_as_secret_is_refused(
    refused: Any, rsa_private: rsa.RSAPrivateKey, signing_key: SigningKey
) -> None:
    # The classic confusion attack: the published key used as an HMAC secret.
    secret = rsa_private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url_encode(encode_json({"alg": "HS256", "kid": signing_key.kid, "typ": "JWT"}))
    payload = b64url_encode(encode_json(session_claims()))
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    refused(f"{header}.{payload}.{b64url_encode(mac)}", AlgorithmMismatch, "alg")


@pytest.mark.parametrize("alg", [OMIT, None, 256, ["RS256"]], ids=repr)
def test_alg_must_be_a_string(refused: Any, make_token: TokenFactory, alg: object) -> None:
    refused(make_token(header={"alg": alg}), MalformedToken, "malformed")


@pytest.mark.parametrize("kid", [OMIT, None, "", 7], ids=repr)
def test_kid_must_be_a_non_empty_string(
    refused: Any, make_token: TokenFactory, kid: object
) -> None:
    refused(make_token(header={"kid": kid}), MalformedToken, "malformed")


def test_an_unknown_kid_is_reported_with_the_kid(refused: Any, make_token: TokenFactory) -> None:
    error = refused(make_token(header={"kid": "ins_rotated"}), UnknownKey, "unknown_kid")
    assert error.kid == "ins_rotated"


# signature ------------------------------------------------------------------------


def test_a_truncated_signature_is_refused(refused: Any, make_token: TokenFactory) -> None:
    header, payload, signature = make_token().split(".")
    raw = b64url_decode(signature, what="signature")
    for short in (raw[:-1], raw[:-4], raw[:128], b"\x00", raw[1:]):
        refused(f"{header}.{payload}.{b64url_encode(short)}", BadSignature, "signature")
    refused(f"{header}.{payload}.{b64url_encode(raw + raw[:1])}", BadSignature, "signature")
    refused(f"{header}.{payload}.{b64url_encode(bytes(len(raw)))}", BadSignature, "signature")


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_a_signature_cut_as_text_is_refused(
    verify: Any, make_token: TokenFactory, cut: int
) -> None:
    # Depending on the cut, the rest is non-canonical base64url or simply too short.
    with pytest.raises(TokenRejected) as caught:
        verify(make_token()[:-cut])
    assert type(caught.value) in (MalformedToken, BadSignature)
    assert caught.value.reason in ("malformed", "signature")


def test_a_signature_from_another_key_with_the_same_kid_is_refused(
    refused: Any, make_token: TokenFactory, other_rsa_private: rsa.RSAPrivateKey
) -> None:
    impostor = load_private_key(pem_of(other_rsa_private), kid=make_token.key.kid)
    refused(make_token(key=impostor), BadSignature, "signature")
    refused(make_token(signer="pyjwt", private=other_rsa_private), BadSignature, "signature")


def test_a_payload_swapped_under_a_valid_signature_is_refused(
    refused: Any, make_token: TokenFactory
) -> None:
    header, _, signature = make_token().split(".")
    _, other_payload, _ = make_token(sub="user_mallory").split(".")
    refused(f"{header}.{other_payload}.{signature}", BadSignature, "signature")


def test_a_header_swapped_under_a_valid_signature_is_refused(
    refused: Any, make_token: TokenFactory
) -> None:
    _, payload, signature = make_token().split(".")
    header, _, _ = make_token(header={"oiat": NOW - 10}, iat=NOW - 10).split(".")
    refused(f"{header}.{payload}.{signature}", BadSignature, "signature")


# claims: sid, sub, iss, azp ----------------------------------------------------------


@pytest.mark.parametrize(
    "sid",
    [
        pytest.param(SID.lower(), id="case"),
        pytest.param(SID.upper(), id="upper"),
        pytest.param(SID.replace("a", "\u0430"), id="cyrillic-a-lookalike"),
        pytest.param(SID.replace("0", "\uff10"), id="fullwidth-digit"),
        pytest.param(SID + " ", id="trailing-space"),
        pytest.param(SID + "\u200b", id="zero-width-space"),
        pytest.param(SID[:-1], id="prefix"),
        pytest.param("sess_other", id="other-session"),
        pytest.param(OMIT, id="missing"),
        pytest.param(None, id="null"),
        pytest.param([SID], id="list"),
    ],
)
def test_sid_must_equal_the_paths_byte_for_byte(
    refused: Any, make_token: TokenFactory, sid: object
) -> None:
    error = refused(make_token(sid=sid), ClaimRejected, "claim:sid")
    assert error.claim == "sid"


def test_sid_composed_and_decomposed_forms_differ(refused: Any, make_token: TokenFactory) -> None:
    composed, decomposed = "sess_caf\u00e9", "sess_cafe\u0301"
    assert refused(make_token(sid=decomposed), ClaimRejected, "claim:sid", session_id=composed)
    assert refused(make_token(sid=composed), ClaimRejected, "claim:sid", session_id=decomposed)


@pytest.mark.parametrize("sub", [OMIT, None, "", 42, ["user_alice"]], ids=repr)
def test_sub_must_be_a_non_empty_string(
    refused: Any, make_token: TokenFactory, sub: object
) -> None:
    refused(make_token(sub=sub), ClaimRejected, "claim:sub")


@pytest.mark.parametrize("sub", ["mch_2abc", "mch_"])
def test_machine_subjects_are_refused(refused: Any, make_token: TokenFactory, sub: str) -> None:
    refused(make_token(sub=sub), ClaimRejected, "claim:sub")


@pytest.mark.parametrize(
    "iss",
    [
        "https://clerk.attacker.test",
        ISSUER + "/",
        ISSUER.upper(),
        "",
        OMIT,
        None,
        [ISSUER],
        {"url": ISSUER},
    ],
    ids=repr,
)
def test_iss_must_be_an_allowed_issuer(refused: Any, make_token: TokenFactory, iss: object) -> None:
    refused(make_token(iss=iss), ClaimRejected, "claim:iss")


@pytest.mark.parametrize(
    "azp", ["https://evil.example", AZP + "/", "", OMIT, None, [AZP], {"a": AZP}], ids=repr
)
def test_azp_must_be_allowed_when_configured(
    refused: Any, make_token: TokenFactory, rules: VerifyRules, azp: object
) -> None:
    configured = replace(rules, authorized_parties=frozenset({AZP}))
    refused(make_token(azp=azp), ClaimRejected, "claim:azp", rules=configured)


# claims: times ---------------------------------------------------------------------


BAD_TIMES = [
    pytest.param(float(NOW - 20), id="float"),
    pytest.param(NOW - 20.5, id="fraction"),
    pytest.param(True, id="bool"),
    pytest.param(str(NOW - 20), id="string"),
    pytest.param(-1, id="negative"),
    pytest.param(MAX_TIME, id="2^53"),
    pytest.param(MAX_TIME + 1, id="above-2^53"),
    pytest.param(None, id="null"),
    pytest.param(OMIT, id="missing"),
    pytest.param([NOW], id="list"),
]


@pytest.mark.parametrize("name", ["iat", "nbf", "exp"])
@pytest.mark.parametrize("value", BAD_TIMES)
def test_times_must_be_integers_in_range(
    refused: Any, make_token: TokenFactory, name: str, value: object
) -> None:
    overrides: dict[str, Any] = {name: value}
    token = make_token(**overrides, header={"oiat": NOW - 20})
    error = refused(token, ClaimRejected, f"claim:{name}")
    assert error.claim == name


@pytest.mark.parametrize("value", [param for param in BAD_TIMES if param.id != "missing"])
def test_header_oiat_must_be_an_integer_in_range(
    refused: Any, make_token: TokenFactory, value: object
) -> None:
    refused(make_token(header={"oiat": value}), ClaimRejected, "claim:oiat")


def test_the_largest_time_is_accepted(verify: Any, make_token: TokenFactory) -> None:
    assert verify(make_token(exp=MAX_TIME - 1)).exp == MAX_TIME - 1


def test_iat_in_the_future_beyond_the_leeway_is_refused(
    refused: Any, verify: Any, make_token: TokenFactory
) -> None:
    refused(make_token(iat=NOW + 6), ClaimRejected, "claim:iat")
    assert verify(make_token(iat=NOW + 5)).iat == NOW + 5


def test_nbf_in_the_future_beyond_the_leeway_is_refused(
    refused: Any, verify: Any, make_token: TokenFactory
) -> None:
    refused(make_token(iat=NOW, nbf=NOW + 6), ClaimRejected, "claim:nbf")
    assert verify(make_token(iat=NOW, nbf=NOW + 5)).iat == NOW


def test_leeway_is_the_configured_one(
    refused: Any, verify: Any, make_token: TokenFactory, rules: VerifyRules
) -> None:
    strict = replace(rules, leeway_s=0)
    refused(make_token(iat=NOW + 1), ClaimRejected, "claim:iat", rules=strict)
    assert verify(make_token(iat=NOW), rules=strict).iat == NOW


@pytest.mark.parametrize("exp_offset", [0, -1, -60])
def test_exp_must_be_after_iat(refused: Any, make_token: TokenFactory, exp_offset: int) -> None:
    refused(make_token(iat=NOW - 20, exp=NOW - 20 + exp_offset), ClaimRejected, "claim:exp")


def test_expired_beyond_max_expired_is_refused(
    refused: Any, verify: Any, make_token: TokenFactory, rules: VerifyRules
) -> None:
    assert rules.max_expired_s == 300
    iat = NOW - 60 - 301  # so exp == NOW - 301
    error = refused(make_token(iat=iat), TokenExpired, "expired")
    assert error.claim == "exp"
    assert isinstance(error, ClaimRejected)
    assert verify(make_token(iat=iat + 1)).exp == NOW - 300  # expired, but within max_expired
    assert verify(make_token(iat=NOW - 60)).exp == NOW  # exactly now


def test_oiat_after_iat_is_refused(refused: Any, verify: Any, make_token: TokenFactory) -> None:
    refused(make_token(header={"oiat": NOW - 19}), ClaimRejected, "claim:oiat")
    assert verify(make_token(header={"oiat": NOW - 21})).oiat == NOW - 21


def test_oiat_in_the_future_cannot_pass(
    refused: Any, verify: Any, make_token: TokenFactory
) -> None:
    # oiat may not pass iat, and iat may not pass now + leeway: a future oiat is refused.
    refused(make_token(iat=NOW + 6, header={"oiat": NOW + 6}), ClaimRejected, "claim:iat")
    refused(make_token(iat=NOW + 5, header={"oiat": NOW + 6}), ClaimRejected, "claim:oiat")
    assert verify(make_token(iat=NOW + 5)).oiat == NOW + 5


# claims: fva -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fva",
    [
        "3,-1",
        3,
        None,
        {"0": 3},
        [],
        [3],
        [3, -1, 0],
        [3.0, -1],
        [3, -1.5],
        [True, -1],
        [3, False],
        [-2, 0],
        [0, -100],
        ["3", "-1"],
        [None, None],
        [[3], [-1]],
        [MAX_TIME, 0],
    ],
    ids=repr,
)
def test_fva_must_be_two_integers_from_minus_one(
    refused: Any, make_token: TokenFactory, fva: object
) -> None:
    refused(make_token(fva=fva), ClaimRejected, "claim:fva")


@pytest.mark.parametrize("fva", [[-1, -1], [0, 0], [3, -1], [MAX_TIME - 1, 7]])
def test_well_formed_fva_is_accepted(verify: Any, make_token: TokenFactory, fva: list[int]) -> None:
    assert verify(make_token(fva=fva)).claims["fva"] == fva


def test_fva_may_be_absent(verify: Any, make_token: TokenFactory) -> None:
    assert "fva" not in verify(make_token(fva=OMIT)).claims


# order ------------------------------------------------------------------------------


def test_claims_are_not_looked_at_before_the_signature(
    refused: Any, make_token: TokenFactory, other_rsa_private: rsa.RSAPrivateKey
) -> None:
    impostor = load_private_key(pem_of(other_rsa_private), kid=make_token.key.kid)
    # Every claim is wrong too; the signature is what is reported.
    token = make_token(key=impostor, sid="x", sub="mch_1", iss="x", fva="x", jti=JTI)
    refused(token, BadSignature, "signature")


# tokens this edge signed ---------------------------------------------------------


def signed_here(token: str, keyset: KeySet, rules: VerifyRules, **kwargs: Any) -> VerifiedToken:
    """As the edge calls it: with the header and claims JSON it signed `token` from."""
    header_json, claims_json = (b64url_decode(part, what="part") for part in token.split(".")[:2])
    arguments: dict[str, Any] = {"session_id": SID, "keys": keyset, "rules": rules, "now": NOW}
    return verify_signed_here(header_json, claims_json, **{**arguments, **kwargs})


def test_a_token_signed_here_verifies_like_any_other(
    verify: Any, make_token: TokenFactory, keyset: KeySet, rules: VerifyRules
) -> None:
    token = make_token(iat=NOW - 5, exp=NOW + 55, header={"oiat": NOW - 200})
    assert signed_here(token, keyset, rules) == verify(token)


def test_a_token_signed_here_still_has_its_claims_checked(
    make_token: TokenFactory, keyset: KeySet, rules: VerifyRules
) -> None:
    token = make_token()
    with pytest.raises(ClaimRejected, match="sid"):
        signed_here(token, keyset, rules, session_id="sess_someone_else")
    with pytest.raises(TokenExpired):
        signed_here(token, keyset, rules, now=NOW + 40 + rules.max_expired_s + 1)
    other_issuer = VerifyRules(issuers=frozenset({"https://other.example.test"}))
    with pytest.raises(ClaimRejected, match="issuer"):
        signed_here(token, keyset, other_issuer)


def test_a_token_signed_here_with_a_key_since_retired_is_refused(
    make_token: TokenFactory, rules: VerifyRules
) -> None:
    with pytest.raises(UnknownKey):
        signed_here(make_token(), KeySet([]), rules)


@pytest.mark.parametrize(
    ("claims", "refused"),
    [
        ({"iat": 1_700_000_000, "fva": [3, -1]}, None),
        ({"iat": 1_700_000_000}, None),
        ({"sub": "user_1"}, "claim:iat"),
        ({"iat": 1_700_000_000.5}, "claim:iat"),
        ({"iat": True}, "claim:iat"),
        ({"iat": 1_700_000_000, "fva": [0.5, 1]}, "claim:fva"),
        ({"iat": 1_700_000_000, "fva": [1]}, "claim:fva"),
    ],
)
def test_kept_claims_are_checked_as_a_clone_reads_them(
    claims: dict[str, object], refused: str | None
) -> None:
    if refused is None:
        check_kept_claims(claims)
    else:
        with pytest.raises(ClaimRejected) as caught:
            check_kept_claims(claims)
        assert caught.value.reason == refused
