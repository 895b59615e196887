"""Fuzz target for `minter.verify_session_token`, runnable on demand.

    python fuzz/verify_target.py --runs 100000                  # atheris when installed
    python fuzz/verify_target.py --runs 2000 --engine hypothesis
    python fuzz/verify_target.py --engine atheris -- corpus/ -max_len=20000

One input is a byte string; its first byte picks how the rest becomes a token:

- `0`: the bytes themselves, as text (any code point, surrogates included);
- `1`: a splice into a correctly signed token (offset, length, replacement);
- `2`: a header and a payload (split at the first NUL), signed with the
  trusted key over exactly those bytes, so the strict parsing and the claim
  rules are reached, not just the signature check.

The verifier must either raise `TokenRejected` or return a token that an
independent check accepts: the signature verifies with `cryptography` over
the exact signing input, the `sid` is the path's, the `sub` a non-machine
string, the issuer allowed, the times integers within the rules, and the
header holds only the allowed members. Anything else (another exception, an
accepted token that breaks a rule) is a crash. With atheris, libFuzzer's
`-rss_limit_mb` (default 2048) bounds memory; `--runs N` maps to `-runs=N`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ATHERIS = importlib.util.find_spec("atheris") is not None
if ATHERIS and __name__ == "__main__":
    import atheris

    # Coverage feedback for the code under test only: instrumenting everything is slow.
    _instrumented: Any = atheris.instrument_imports(include=["minter"])
else:
    _instrumented = contextlib.nullcontext()

with _instrumented:
    from minter import (
        SESSION_TOKEN_CAT,
        KeySet,
        SigningKey,
        TokenRejected,
        VerifiedToken,
        VerifyRules,
        load_private_key,
        sign_compact,
        verify_session_token,
    )
    from minter.jws import b64url_encode

NOW = 1_750_000_000
SID = "sess_fuzz0000000000000000"
ISSUER = "https://clerk.example.test"
RULES = VerifyRules(issuers=frozenset({ISSUER}), max_expired_s=300)
ALLOWED_HEADER = frozenset({"alg", "kid", "typ", "cat", "oiat"})


def _generate_key() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return load_private_key(pem)


KEY = _generate_key()
KEYS = KeySet([KEY.public])
HEADER: dict[str, Any] = {"alg": "RS256", "kid": KEY.kid, "typ": "JWT", "cat": SESSION_TOKEN_CAT}
CLAIMS: dict[str, Any] = {
    "azp": "http://localhost:3000",
    "exp": NOW + 40,
    "fva": [0, -1],
    "iat": NOW - 20,
    "iss": ISSUER,
    "jti": "0123456789abcdef0123",
    "nbf": NOW - 30,
    "sid": SID,
    "sts": "active",
    "sub": "user_alice",
    "v": 2,
}
SEED = sign_compact({**HEADER, "oiat": NOW - 20}, CLAIMS, KEY)


class OracleViolation(AssertionError):
    """The verifier accepted a token that an independent check refuses."""


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _signature_ok(token: str) -> bool:
    signing_input, _, signature = token.rpartition(".")
    public = KEY.public.key
    assert isinstance(public, rsa.RSAPublicKey)
    try:
        public.verify(
            _b64decode(signature),
            signing_input.encode("ascii"),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _is_time(value: object) -> bool:
    return type(value) is int and 0 <= value < 1 << 53


def check_accepted(token: str, verified: VerifiedToken) -> None:
    """Independent checks of a token the verifier accepted."""
    claims, header = verified.claims, verified.header
    problems = []
    if token.count(".") != 2 or not _signature_ok(token):
        problems.append("signature")
    if b64url_encode(_b64decode(token.split(".")[0])) != token.split(".")[0]:
        problems.append("header encoding")
    if not set(header) <= ALLOWED_HEADER or header.get("alg") != "RS256":
        problems.append("header members")
    if (
        header.get("typ", "JWT") != "JWT"
        or header.get("cat", SESSION_TOKEN_CAT) != SESSION_TOKEN_CAT
    ):
        problems.append("typ/cat")
    if claims.get("sid") != SID:
        problems.append("sid")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or sub.startswith("mch_"):
        problems.append("sub")
    if claims.get("iss") != ISSUER:
        problems.append("iss")
    times = [claims.get(name) for name in ("iat", "nbf", "exp")]
    if not all(_is_time(value) for value in times):
        problems.append("time types")
    else:
        iat, nbf, exp = times
        assert isinstance(iat, int)
        assert isinstance(nbf, int)
        assert isinstance(exp, int)
        if iat > NOW + 5 or nbf > NOW + 5 or exp <= iat or NOW - exp > RULES.max_expired_s:
            problems.append("time values")
        oiat = header.get("oiat", iat)
        if not _is_time(oiat) or oiat > iat or verified.oiat != oiat:
            problems.append("oiat")
    if problems:
        raise OracleViolation(f"accepted a token that breaks: {', '.join(problems)}")


def token_from(data: bytes) -> str:
    """Turn one fuzz input into a token string (see the module docstring)."""
    if not data:
        return ""
    mode, rest = data[0] % 3, data[1:]
    if mode == 0:
        return rest.decode("utf-8", "surrogateescape")
    if mode == 1:
        if len(rest) < 2:
            return SEED
        offset = rest[0] * len(SEED) // 256
        length = rest[1] % 8
        splice = rest[2:].decode("latin-1")
        return SEED[:offset] + splice + SEED[offset + length :]
    header, _, payload = rest.partition(b"\x00")
    h, p = b64url_encode(header), b64url_encode(payload)
    return f"{h}.{p}.{b64url_encode(KEY.sign(f'{h}.{p}'.encode('ascii')))}"


def fuzz_one_input(data: bytes) -> None:
    token = token_from(data)
    try:
        verified = verify_session_token(token, session_id=SID, keys=KEYS, rules=RULES, now=NOW)
    except TokenRejected:
        return
    check_accepted(token, verified)


def structured_input(header: dict[str, Any], claims: dict[str, Any]) -> bytes:
    """A mode-2 input: these header and claims (NaN and Infinity spelled as Python does)."""
    encode = json.JSONEncoder(ensure_ascii=False).encode

    def text(value: dict[str, Any]) -> bytes:
        return encode(value).encode("utf-8", "surrogatepass")

    return b"\x02" + text(header).replace(b"\x00", b"\\u0000") + b"\x00" + text(claims)


def hypothesis_inputs() -> Any:
    """A Hypothesis strategy of fuzz inputs: raw, spliced, and signed structures."""
    from hypothesis import strategies as st

    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(1 << 70), max_value=1 << 70)
        | st.floats()
        | st.text(max_size=12)
        | st.sampled_from([SID, ISSUER, KEY.kid, "RS256", "none", "JWT", SESSION_TOKEN_CAT, NOW])
    )
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=8,
    )
    header_names = st.sampled_from(
        ["alg", "kid", "typ", "cat", "oiat", "jku", "jwk", "x5c", "crit", "b64", "zip", "cty"]
    )
    claim_names = st.sampled_from(["sid", "sub", "iss", "iat", "nbf", "exp", "fva", "azp", "o"])
    header = st.builds(
        lambda changes, drop: {k: v for k, v in {**HEADER, **changes}.items() if k not in drop},
        st.dictionaries(header_names, values, max_size=3),
        st.sets(header_names, max_size=2),
    )
    claims = st.builds(
        lambda changes, drop: {k: v for k, v in {**CLAIMS, **changes}.items() if k not in drop},
        st.dictionaries(claim_names, values, max_size=3),
        st.sets(claim_names, max_size=2),
    )
    structured = st.builds(structured_input, header, claims)
    spliced = st.builds(
        lambda offset, length, splice: bytes([1, offset, length]) + splice,
        st.integers(0, 255),
        st.integers(0, 255),
        st.binary(max_size=16),
    )
    raw = st.binary(max_size=2048).map(lambda b: b"\x00" + b)
    return st.one_of(structured, spliced, raw, st.binary(max_size=64))


def run_hypothesis(runs: int) -> None:
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=runs,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(hypothesis_inputs())
    def fuzz(data: bytes) -> None:
        fuzz_one_input(data)

    fuzz()


SEED_INPUTS = (
    structured_input({**HEADER, "oiat": NOW - 20}, CLAIMS),
    b"\x01\x80\x04" + b"AAAA",
    b"\x00" + SEED.encode("ascii"),
)


def run_atheris(runs: int | None, extra: Sequence[str]) -> None:
    import atheris

    argv = [sys.argv[0], "-max_len=20000", *extra]
    if runs is not None:
        argv.append(f"-runs={runs}")
    if not any(not arg.startswith("-") for arg in extra):  # no corpus given: start from seeds
        corpus = Path(tempfile.mkdtemp(prefix="verify-corpus-"))
        for number, seed in enumerate(SEED_INPUTS):
            (corpus / f"seed-{number}").write_bytes(seed)
        argv.append(str(corpus))
    atheris.Setup(argv, fuzz_one_input)
    atheris.Fuzz()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="inputs to try (default: forever)")
    parser.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    parser.add_argument("libfuzzer_args", nargs="*", help="passed on to libFuzzer (atheris)")
    args = parser.parse_args(argv)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if ATHERIS else "hypothesis"
    # A self-check: the seed verifies, so the fuzzer starts from an accepted token.
    check_accepted(
        SEED, verify_session_token(SEED, session_id=SID, keys=KEYS, rules=RULES, now=NOW)
    )
    if engine == "atheris":
        run_atheris(args.runs, args.libfuzzer_args)
    else:
        run_hypothesis(args.runs if args.runs is not None else 10_000)
        print(f"hypothesis: {args.runs or 10_000} inputs, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())
