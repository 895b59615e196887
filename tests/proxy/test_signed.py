"""The memo of edge-signed tokens: the last one per session, for a bounded time."""

from __future__ import annotations

from proxy.signed import SignedHere
from tests.stack import FakeClock

HEADER, CLAIMS = b'{"alg":"RS256"}', b'{"sid":"sess_a"}'


def memo(clock: FakeClock, max_entries: int = 10) -> SignedHere:
    return SignedHere(max_entries=max_entries, ttl_s=360, clock=clock)


def test_a_session_s_last_token_is_recalled_with_what_was_signed() -> None:
    signed = memo(FakeClock(1000))
    signed.add("sess_a", "token-1", HEADER, CLAIMS)
    assert signed.recall("sess_a", "token-1") == (HEADER, CLAIMS)
    assert signed.recall("sess_a", "token-1x") is None, "another token of the session"
    assert signed.recall("sess_b", "token-1") is None, "the same token on another session"


def test_a_later_mint_replaces_the_session_s_entry() -> None:
    signed = memo(FakeClock(1000))
    signed.add("sess_a", "token-1", HEADER, CLAIMS)
    signed.add("sess_a", "token-2", HEADER, b"{}")
    assert not signed.knows("sess_a", "token-1")
    assert signed.recall("sess_a", "token-2") == (HEADER, b"{}")
    assert len(signed) == 1


def test_entries_expire_and_are_bounded() -> None:
    clock = FakeClock(1000)
    signed = memo(clock, max_entries=2)
    for name in ("a", "b", "c"):
        signed.add(f"sess_{name}", f"token-{name}", HEADER, CLAIMS)
    assert not signed.knows("sess_a", "token-a"), "the least recently used went first"
    assert signed.knows("sess_c", "token-c")
    clock.advance(360)
    assert not signed.knows("sess_c", "token-c"), "past the lifetime plus max_expired"


def test_remember_signed_zero_remembers_nothing() -> None:
    signed = memo(FakeClock(1000), max_entries=0)
    signed.add("sess_a", "token-1", HEADER, CLAIMS)
    assert not signed.knows("sess_a", "token-1")
    assert len(signed) == 0


def test_a_header_too_long_to_pack_is_not_remembered() -> None:
    signed = memo(FakeClock(1000))
    signed.add("sess_a", "token-1", b"h" * 65536, CLAIMS)
    assert not signed.knows("sess_a", "token-1")
    signed.add("sess_a", "token-2", b"h" * 65535, CLAIMS)
    assert signed.recall("sess_a", "token-2") == (b"h" * 65535, CLAIMS)
