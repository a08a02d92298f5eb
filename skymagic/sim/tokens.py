"""Self-contained bearer tokens for the simulated fleet.

Why self-contained and signed: the exec credential plugin runs as a separate process (like
`aws eks get-token`) and must mint tokens the API servers accept without talking to them, and
the servers must check expiry (to exercise client refresh on 401) without a token table. So a
token carries its user, groups and expiry, signed with HMAC-SHA256 under a per-fleet secret:
`sim1.<base64url JSON payload>.<base64url signature>`.

This module imports only the standard library: the exec plugin imports it on every run and
must start fast.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Identity", "TokenError", "TokenExpired", "TokenInvalid", "TokenMinter"]

_PREFIX = "sim1"


class TokenError(Exception):
    """A bearer token the fleet does not accept (the server answers 401)."""


class TokenInvalid(TokenError):
    """Malformed, or signed with another secret (another fleet, or tampered with)."""


class TokenExpired(TokenError):
    """Well-formed and correctly signed, but past its expiry."""


@dataclass(frozen=True)
class Identity:
    """Who a request is from, as the authorizer sees it."""

    user: str
    groups: tuple[str, ...]


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenMinter:
    """Mints and verifies the fleet's tokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("token secret must not be empty")
        self._secret = bytes(secret)

    def __repr__(self) -> str:
        return "TokenMinter(<secret>)"

    def _sign(self, signing_input: bytes) -> bytes:
        return hmac.new(self._secret, signing_input, hashlib.sha256).digest()

    def mint(
        self,
        user: str,
        groups: Sequence[str] = (),
        ttl_s: float | None = None,
        now: float | None = None,
    ) -> str:
        """A token for `user` in `groups`; expires `ttl_s` seconds after `now` (None: never).

        Static kubeconfig tokens use ttl_s=None (like a service-account token); the exec
        plugin passes its --ttl so clients must refresh.
        """
        if not user:
            raise ValueError("token user must not be empty")
        payload: dict[str, object] = {"u": user, "g": list(groups)}
        if ttl_s is not None:
            payload["exp"] = (time.time() if now is None else now) + ttl_s
        body = _b64e(json.dumps(payload, separators=(",", ":")).encode())
        signing_input = f"{_PREFIX}.{body}"
        return f"{signing_input}.{_b64e(self._sign(signing_input.encode()))}"

    @staticmethod
    def expiry(token: str) -> float | None:
        """The expiry (epoch seconds) a token claims, unverified; None if none or unreadable.

        For callers that print an ExecCredential's expirationTimestamp from a fresh token.
        """
        try:
            payload = json.loads(_b64d(token.split(".")[1]))
            exp = payload.get("exp")
            return float(exp) if exp is not None else None
        except (ValueError, IndexError, AttributeError, TypeError):
            return None

    def verify(self, token: str, now: float | None = None) -> Identity:
        """The identity a token proves; TokenInvalid / TokenExpired otherwise."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise TokenInvalid("token is not a skymagic sim token")
        signing_input = f"{parts[0]}.{parts[1]}".encode()
        try:
            sig = _b64d(parts[2])
        except ValueError:
            raise TokenInvalid("token signature is not base64url")
        if not hmac.compare_digest(sig, self._sign(signing_input)):
            raise TokenInvalid("token signature does not match")
        try:
            payload = json.loads(_b64d(parts[1]))
            user = payload["u"]
            groups = payload.get("g", [])
            exp = payload.get("exp")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TokenInvalid("token payload is malformed")
        if (
            not isinstance(user, str)
            or not user
            or not isinstance(groups, list)
            or not all(isinstance(g, str) for g in groups)
            or (exp is not None and not isinstance(exp, (int, float)))
        ):
            raise TokenInvalid("token payload is malformed")
        if exp is not None and (time.time() if now is None else now) >= exp:
            raise TokenExpired("token has expired")
        return Identity(user, tuple(groups))
