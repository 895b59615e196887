"""Compact JWS plumbing: canonical base64url and strict JSON, both directions.

Strict means: base64url with no padding, no characters outside the alphabet
and no stray trailing bits (one encoding per value, so a token cannot be
altered without changing its bytes); JSON that is UTF-8 without a byte-order
mark, has no duplicate member names, no NaN or Infinity (nor numbers that
overflow to it), no lone surrogates, integers that fit in 64 bits, and an
object at the top.
"""

from __future__ import annotations

import binascii
import json
import math
from typing import Any

import orjson

from .errors import MalformedToken

__all__ = [
    "b64url_decode",
    "b64url_encode",
    "encode_json",
    "parse_json_object",
    "parse_own_json",
    "split_compact",
]

_INT64_LIMIT = 1 << 63


def b64url_encode(data: bytes) -> str:
    return (
        binascii.b2a_base64(data, newline=False)
        .translate(_TO_URL_BYTES)
        .rstrip(b"=")
        .decode("ascii")
    )


_TO_URL_BYTES = bytes.maketrans(b"+/", b"-_")
_FROM_URL_BYTES = bytes.maketrans(b"-_", b"+/")


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# For a segment of length 4k+2 (4k+3), the last character carries 4 (2) unused bits.
_UNUSED_BITS_MASK = {2: 0b1111, 3: 0b11}


def b64url_decode(segment: str, *, what: str) -> bytes:
    """Decode one canonical base64url segment; anything else is MalformedToken."""
    remainder = len(segment) % 4
    if remainder == 1 or "+" in segment or "/" in segment or "=" in segment:
        raise MalformedToken(f"{what} is not base64url")
    try:
        standard = segment.encode("ascii").translate(_FROM_URL_BYTES) + b"=" * (-remainder % 4)
        data = binascii.a2b_base64(standard, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken(f"{what} is not base64url") from exc
    if remainder and _ALPHABET.index(segment[-1]) & _UNUSED_BITS_MASK[remainder]:
        raise MalformedToken(f"{what} is not canonical base64url")
    return data


def split_compact(token: str, *, max_bytes: int) -> tuple[str, str, str]:
    """Split a compact JWS into its three segments, refusing anything else."""
    if len(token) > max_bytes:
        raise MalformedToken("token is too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedToken("token is not a compact JWS")
    header, payload, signature = parts
    if not header or not payload or not signature:
        raise MalformedToken("token has an empty segment")
    return header, payload, signature


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedToken("duplicate JSON member")
    return obj


def _no_constants(name: str) -> Any:
    raise MalformedToken(f"JSON constant {name} is not allowed")


def _bounded_int(text: str) -> int:
    value = int(text)
    if not -_INT64_LIMIT <= value < _INT64_LIMIT:
        raise MalformedToken("JSON integer out of range")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf, which would be re-signed as null
        raise MalformedToken("JSON number out of range")
    return value


def parse_json_object(data: bytes, *, what: str) -> dict[str, Any]:
    """Parse strict JSON whose top level is an object."""
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_int=_bounded_int,
            parse_float=_finite_float,
        )
        # Round-trips through the encoder we sign with: refuses lone surrogates.
        orjson.dumps(value)
    except MalformedToken:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError, TypeError) as exc:
        raise MalformedToken(f"{what} is not strict JSON") from exc
    if not isinstance(value, dict):
        raise MalformedToken(f"{what} is not a JSON object")
    return value


def parse_own_json(data: bytes) -> dict[str, Any]:
    """Parse JSON that `encode_json` produced here (already strict): no checks repeated."""
    value: dict[str, Any] = orjson.loads(data)
    return value


def encode_json(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value)
