"""Optional API keys: a ``Bearer`` token names the principal that owns the programs it starts."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from autellix_backend.server.errors import APIError


class KeyRing:
    """The configured keys; with none, every request is anonymous and allowed.

    Secrets are kept only as SHA-256 digests and compared in constant time.
    """

    def __init__(self, keys: Mapping[str, str]) -> None:
        self._digests = {name: _digest(secret) for name, secret in keys.items()}

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def principal(self, authorization: str | None) -> str | None:
        """Name of the key in an ``Authorization`` header; None when auth is off.

        Raises ``APIError`` (401) for a missing or unknown key.
        """
        if not self._digests:
            return None
        token = _bearer(authorization)
        digest = _digest(token)
        found: str | None = None
        for name, known in self._digests.items():
            if hmac.compare_digest(known, digest):
                found = name
        if found is None:
            raise _unauthorized("invalid API key")
        return found


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("malformed Authorization header: expected 'Bearer <key>'")
    return token.strip()


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def _unauthorized(message: str) -> APIError:
    return APIError(401, message, type="authentication_error", code="invalid_api_key")
