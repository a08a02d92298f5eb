"""TokenMinter: self-contained signed tokens, expiry, tampering."""

from __future__ import annotations

import base64
import json

import pytest

from skymagic.sim.tokens import Identity, TokenError, TokenExpired, TokenInvalid, TokenMinter


def test_round_trip_and_expiry() -> None:
    m = TokenMinter(b"s3cret")
    tok = m.mint("alice", ["team-a", "dev"], ttl_s=60, now=1000.0)
    assert tok.startswith("sim1.") and tok.count(".") == 2
    assert m.verify(tok, now=1059.9) == Identity("alice", ("team-a", "dev"))
    with pytest.raises(TokenExpired):
        m.verify(tok, now=1060.0)
    assert TokenMinter.expiry(tok) == 1060.0


def test_no_ttl_never_expires() -> None:
    m = TokenMinter(b"k")
    tok = m.mint("bob")
    assert m.verify(tok, now=1e12) == Identity("bob", ())
    assert TokenMinter.expiry(tok) is None


@pytest.mark.parametrize(
    "bad", ["", "abc", "sim1.x.y", "Bearer x", "sim2.a.b", "sim1..", "sim1.a.b.c"]
)
def test_garbage_is_invalid(bad: str) -> None:
    with pytest.raises(TokenInvalid):
        TokenMinter(b"k").verify(bad)


def test_other_secret_and_tampering() -> None:
    tok = TokenMinter(b"one").mint("alice", ttl_s=60)
    with pytest.raises(TokenInvalid):
        TokenMinter(b"two").verify(tok)
    prefix, payload, sig = tok.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["u"] = "admin"
    fp = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        TokenMinter(b"one").verify(f"{prefix}.{fp}.{sig}")


def test_expired_is_a_token_error_and_repr_hides_secret() -> None:
    assert issubclass(TokenExpired, TokenError) and issubclass(TokenInvalid, TokenError)
    assert "s3cret" not in repr(TokenMinter(b"s3cret"))
    with pytest.raises(ValueError):
        TokenMinter(b"")
