"""Verifying access tokens: signature against the issuer's JWKS, then issuer, audience, expiry.

One `TokenVerifier` serves the built-in development issuer and Keycloak alike; only the key
source differs. The checks are strict on purpose: the algorithm comes from a fixed allow-list of
asymmetric algorithms and must fit the key's type, so `alg: none` and HS256 tokens "signed" with
the public key as an HMAC secret never reach signature verification.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

from villagelink.platform.identity.dev_issuer import DevIssuer
from villagelink.platform.identity.principal import ClaimShapeError, check_claim_shapes
from villagelink.platform.settings import Settings

log = logging.getLogger(__name__)

# Which public key type each allowed algorithm needs. Symmetric algorithms are absent on
# purpose: a JWKS is public, so an HMAC "key" from it would be a secret everybody knows.
_KEY_TYPE_FOR_ALG: dict[str, type] = {
    "RS256": rsa.RSAPublicKey,
    "RS384": rsa.RSAPublicKey,
    "RS512": rsa.RSAPublicKey,
    "PS256": rsa.RSAPublicKey,
    "PS384": rsa.RSAPublicKey,
    "PS512": rsa.RSAPublicKey,
    "ES256": ec.EllipticCurvePublicKey,
    "ES384": ec.EllipticCurvePublicKey,
    "ES512": ec.EllipticCurvePublicKey,
    "EdDSA": ed25519.Ed25519PublicKey,
}
# ECDSA fixes the curve per algorithm; a P-384 key must not verify an ES256 token.
_CURVE_FOR_ALG = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}

# A JWKS document is a handful of keys; anything far larger is not one.
_MAX_JWKS_BYTES = 1024 * 1024


class InvalidToken(Exception):
    """The token is not acceptable; the message is a short reason, never the token itself."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeySource(Protocol):
    """Where the verifier finds the public key a token's `kid` names."""

    def get_key(self, kid: str) -> jwt.PyJWK: ...


def parse_jwks(document: Mapping[str, Any]) -> dict[str, jwt.PyJWK]:
    """Signing keys of a JWKS document by `kid`.

    Keys meant for encryption (Keycloak publishes an RSA-OAEP one next to its signing key),
    keys without a `kid` and key types PyJWT does not know are left out rather than failing
    the whole document.
    """
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise ValueError("JWKS document has no 'keys' list")
    found: dict[str, jwt.PyJWK] = {}
    for entry in keys:
        if not isinstance(entry, dict):
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") == "oct" or "d" in entry:
            # A published symmetric or private key is a misconfigured issuer: never trust it.
            log.warning("ignoring non-public key %r in JWKS", kid)
            continue
        try:
            found[kid] = jwt.PyJWK(entry)
        except jwt.PyJWTError as error:
            log.info("ignoring unusable key %r in JWKS: %s", kid, error)
    return found


class StaticKeySource:
    """Keys fixed at construction: the development issuer's own JWKS, or tests."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = parse_jwks(jwks)

    def get_key(self, kid: str) -> jwt.PyJWK:
        try:
            return self._keys[kid]
        except KeyError:
            raise InvalidToken("unknown signing key") from None


class JwksKeySource:
    """Keys fetched from the issuer's JWKS URL, cached, and refreshed on rotation.

    The cache is refreshed when older than `cache_seconds` (so a key the issuer removed stops
    verifying) and when a token names an unknown `kid` (so a new key works at once). Fetches
    are never closer together than `min_refresh_interval`: a flood of tokens with made-up kids
    costs the issuer at most one request per interval. If a fetch fails the previous keys stay
    in use, so a brief issuer outage does not log everybody out.

    One lock guards the cache and the fetch: gunicorn's threads that need fresh keys wait for
    the single fetch in flight instead of each starting their own. `clock` is there for tests.
    """

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 300,
        min_refresh_interval: float = 10,
        timeout: float = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"JWKS URL must be http(s): {url!r}")
        self.url = url
        self.cache_seconds = cache_seconds
        self.min_refresh_interval = min_refresh_interval
        self.timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None

    def get_key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self.cache_seconds
            if stale and self._may_fetch(now):
                self._refresh(now)
            key = self._keys.get(kid)
            if key is None and self._may_fetch(now):
                self._refresh(now)
                key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown signing key")
        return key

    def _may_fetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self.min_refresh_interval

    def _refresh(self, now: float) -> None:
        self._attempted_at = now
        try:
            self._keys = parse_jwks(self._fetch())
        except (OSError, ValueError) as error:
            log.warning("could not refresh signing keys from %s: %s", self.url, error)
            return
        self._fetched_at = now

    def _fetch(self) -> Mapping[str, Any]:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            body = response.read(_MAX_JWKS_BYTES + 1)
        if len(body) > _MAX_JWKS_BYTES:
            raise ValueError("JWKS document too large")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("JWKS document is not a JSON object")
        return document


class TokenVerifier:
    """Checks an access token and returns its claims, or raises `InvalidToken`."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        key_source: KeySource,
        algorithms: Iterable[str] = ("RS256", "PS256", "ES256"),
        leeway: float = 30,
    ) -> None:
        self.algorithms = tuple(algorithms)
        unsupported = [alg for alg in self.algorithms if alg not in _KEY_TYPE_FOR_ALG]
        if unsupported:
            raise ValueError(f"only asymmetric algorithms can be allowed, not {unsupported}")
        self.issuer = issuer
        self.audience = audience
        self.key_source = key_source
        self.leeway = leeway

    def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken("algorithm not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("missing key id")
        key = self.key_source.get_key(kid).key
        if not _key_fits(key, alg):
            raise InvalidToken("key does not fit the algorithm")
        claims = self._decode(token, key, alg)
        # Every claim's shape is checked before any claim is read, the times included: a
        # string `exp` is refused as such, not compared, and never half-understood.
        try:
            check_claim_shapes(claims)
        except ClaimShapeError as error:
            raise InvalidToken(str(error)) from None
        self.check_times(claims)
        # Keycloak marks access tokens "Bearer" and ID tokens "ID"; other issuers omit the claim.
        if claims.get("typ", "Bearer") != "Bearer":
            raise InvalidToken("not an access token")
        return claims

    def check_times(self, claims: dict[str, Any]) -> None:
        """`InvalidToken` unless the claims' token is valid now (exp, iat, nbf)."""
        now = time.time()
        if claims["exp"] <= now - self.leeway:
            raise InvalidToken("token expired")
        if max(claims["iat"], claims.get("nbf", 0)) > now + self.leeway:
            raise InvalidToken("token not yet valid")

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                # The times are checked by `check_times`, once their shape is known.
                options={
                    "require": ["exp", "iat", "iss", "aud", "sub"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"missing {error.claim} claim") from None
        except InvalidSubjectError:
            raise InvalidToken("sub claim must be a string") from None
        except InvalidJTIError:
            raise InvalidToken("jti claim must be a string") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad signature") from None
        except jwt.InvalidAlgorithmError:
            raise InvalidToken("algorithm not allowed") from None
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None


def _key_fits(key: Any, alg: str) -> bool:
    if not isinstance(key, _KEY_TYPE_FOR_ALG[alg]):
        return False
    curve = _CURVE_FOR_ALG.get(alg)
    return curve is None or (isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == curve)


def make_verifier(settings: Settings) -> TokenVerifier:
    """The verifier for the configured issuer.

    The development issuer's keys are read in-process (no HTTP request to ourselves, which a
    single-threaded dev server could not even answer); any other issuer's come from its JWKS URL.
    """
    source: KeySource
    if settings.dev_issuer_enabled:
        source = StaticKeySource(DevIssuer(settings).jwks())
    else:
        source = JwksKeySource(
            settings.jwks_url,
            cache_seconds=settings.jwks_cache_seconds,
            min_refresh_interval=settings.jwks_min_refresh_seconds,
        )
    return TokenVerifier(settings.issuer, settings.oidc_audience, source)
