"""Access-token verification and the development issuer.

Tokens are made with PyJWT directly (and by hand where PyJWT refuses to make them, as for
`alg: none` and HS256 keyed with a public key) so that every check of the verifier is shown
to reject what it should, not merely to accept good tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from villagelink.platform.identity.dev_issuer import (
    DevIssuer,
    DevIssuerRefused,
    _rfc7638_thumbprint,
    blueprint,
    mint_for_role,
)
from villagelink.platform.identity.principal import Principal
from villagelink.platform.identity.tokens import (
    InvalidToken,
    JwksKeySource,
    StaticKeySource,
    TokenVerifier,
    make_verifier,
)
from villagelink.platform.settings import Settings, load_settings

from .threaded_server import serving

ISSUER = "https://sso.example.test/realms/villagelink"
AUDIENCE = "villagelink-api"


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    return {**algorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": [AUDIENCE, "account"],
        "sub": "0b6c8f57-5a43-4bd3-9c2e-6c1d3c1e2f10",
        "iat": now,
        "exp": now + 300,
        "typ": "Bearer",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any, kid: str, alg: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def rejection(verifier: TokenVerifier, token: str) -> str:
    """The reason `token` is refused; the reason must never echo the token."""
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    assert not token or token not in str(caught.value)
    return str(caught.value)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture
def verifier(signing_key: rsa.RSAPrivateKey) -> TokenVerifier:
    source = StaticKeySource({"keys": [public_jwk(signing_key, "k1")]})
    return TokenVerifier(ISSUER, AUDIENCE, source)


# --- the verifier ----------------------------------------------------------------------------


def test_valid_token_returns_its_claims(verifier, signing_key):
    payload = claims(realm_access={"roles": ["village-admin"]}, groups=["/villages/dongcun"])
    assert verifier.verify(sign(payload, signing_key, "k1")) == payload


def test_audience_may_be_a_single_string(verifier, signing_key):
    assert verifier.verify(sign(claims(aud=AUDIENCE), signing_key, "k1"))["aud"] == AUDIENCE


def test_ps256_and_es256_are_allowed_with_keys_of_their_type(signing_key):
    ec_key = ec.generate_private_key(ec.SECP256R1())
    source = StaticKeySource({"keys": [public_jwk(signing_key, "rsa"), public_jwk(ec_key, "ec")]})
    verifier = TokenVerifier(ISSUER, AUDIENCE, source)
    assert verifier.verify(sign(claims(), signing_key, "rsa", "PS256"))["iss"] == ISSUER
    assert verifier.verify(sign(claims(), ec_key, "ec", "ES256"))["iss"] == ISSUER


def test_expired_token_is_refused_beyond_the_leeway(verifier, signing_key):
    now = int(time.time())
    within_leeway = sign(claims(iat=now - 400, exp=now - 10), signing_key, "k1")
    assert verifier.verify(within_leeway)["sub"]
    expired = sign(claims(iat=now - 400, exp=now - 60), signing_key, "k1")
    assert rejection(verifier, expired) == "token expired"


def test_token_without_exp_is_refused(verifier, signing_key):
    token = sign(claims(exp=None), signing_key, "k1")
    assert rejection(verifier, token) == "missing exp claim"


@pytest.mark.parametrize("issuer", ["https://evil.example.test/realms/villagelink", ISSUER + "/"])
def test_issuer_must_match_exactly(verifier, signing_key, issuer):
    assert rejection(verifier, sign(claims(iss=issuer), signing_key, "k1")) == "wrong issuer"


@pytest.mark.parametrize("audience", ["account", ["account", "villagelink-console"]])
def test_wrong_audience_is_refused(verifier, signing_key, audience):
    assert rejection(verifier, sign(claims(aud=audience), signing_key, "k1")) == "wrong audience"


def test_missing_audience_is_refused(verifier, signing_key):
    # Keycloak leaves `aud` out when the client has no audience mapper: that token is not ours.
    assert rejection(verifier, sign(claims(aud=None), signing_key, "k1")) == "missing aud claim"


def test_signature_by_another_key_with_the_same_kid_is_refused(verifier):
    forged = sign(claims(), rsa_key(), "k1")
    assert rejection(verifier, forged) == "bad signature"


def test_alg_none_is_refused(verifier):
    header = b64url(json.dumps({"alg": "none", "kid": "k1", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims()).encode())
    assert rejection(verifier, f"{header}.{payload}.") == "algorithm not allowed"


def test_hs256_keyed_with_the_public_key_is_refused(verifier, signing_key):
    # The classic key-confusion attack: the public key, which anybody can fetch, used as an
    # HMAC secret. PyJWT refuses to make such a token, so it is made by hand.
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64url(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims()).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert rejection(verifier, f"{header}.{payload}.{b64url(mac)}") == "algorithm not allowed"


def test_symmetric_algorithms_cannot_be_allowed():
    with pytest.raises(ValueError, match="HS256"):
        TokenVerifier(ISSUER, AUDIENCE, StaticKeySource({"keys": []}), algorithms=["HS256"])


def test_allowed_algorithm_with_a_key_of_another_type_is_refused(signing_key):
    # ES256 is allowed, but the kid names an RSA key: the key type decides, not the header.
    source = StaticKeySource({"keys": [public_jwk(signing_key, "k1")]})
    verifier = TokenVerifier(ISSUER, AUDIENCE, source)
    token = sign(claims(), ec.generate_private_key(ec.SECP256R1()), "k1", "ES256")
    assert rejection(verifier, token) == "key does not fit the algorithm"


def test_unknown_or_missing_kid_is_refused(verifier, signing_key):
    assert rejection(verifier, sign(claims(), signing_key, "k2")) == "unknown signing key"
    no_kid = jwt.encode(claims(), signing_key, algorithm="RS256")
    assert rejection(verifier, no_kid) == "missing key id"


@pytest.mark.parametrize("sub", [None, ""])
def test_token_without_subject_is_refused(verifier, signing_key, sub):
    assert rejection(verifier, sign(claims(sub=sub), signing_key, "k1")) == "missing sub claim"


def test_id_token_is_not_an_access_token(verifier, signing_key):
    assert rejection(verifier, sign(claims(typ="ID"), signing_key, "k1")) == "not an access token"


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"])
def test_garbage_is_a_malformed_token(verifier, token):
    assert rejection(verifier, token) == "malformed token"


def test_encryption_and_symmetric_keys_in_a_jwks_are_ignored(signing_key):
    source = StaticKeySource(
        {
            "keys": [
                {**public_jwk(signing_key, "enc"), "use": "enc", "alg": "RSA-OAEP"},
                {"kty": "oct", "kid": "oct", "k": b64url(b"shared secret")},
                public_jwk(signing_key, "sig"),
            ]
        }
    )
    assert source.get_key("sig").key_id == "sig"
    for kid in ("enc", "oct"):
        with pytest.raises(InvalidToken, match="unknown signing key"):
            source.get_key(kid)


# --- JWKS over HTTP: caching, rotation, rate limit ---------------------------------------------


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose document the test swaps, counting the requests."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.status = 200
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = json.dumps(server.document).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/certs"

    def serve(self, *keys: dict[str, Any]) -> None:
        self.document = {"keys": list(keys)}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    with serving(server.httpd):
        yield server


def test_rotation_is_picked_up_and_removed_keys_stop_verifying(jwks_server):
    old, new = rsa_key(), rsa_key()
    clock = FakeClock()
    source = JwksKeySource(jwks_server.url, cache_seconds=60, min_refresh_interval=5, clock=clock)
    verifier = TokenVerifier(ISSUER, AUDIENCE, source)

    jwks_server.serve(public_jwk(old, "old"))
    assert verifier.verify(sign(claims(), old, "old"))
    assert jwks_server.requests == 1

    # The issuer rotates: the new key is published, the old one kept for tokens in flight.
    jwks_server.serve(public_jwk(old, "old"), public_jwk(new, "new"))
    clock.now += 6
    assert verifier.verify(sign(claims(), new, "new"))
    assert verifier.verify(sign(claims(), old, "old"))
    assert jwks_server.requests == 2

    # The old key is withdrawn; once the cache is due for refresh it must stop verifying.
    jwks_server.serve(public_jwk(new, "new"))
    clock.now += 61
    assert rejection(verifier, sign(claims(), old, "old")) == "unknown signing key"
    assert verifier.verify(sign(claims(), new, "new"))
    assert jwks_server.requests == 3


def test_a_flood_of_unknown_kids_fetches_at_most_once_per_interval(jwks_server, signing_key):
    clock = FakeClock()
    source = JwksKeySource(jwks_server.url, min_refresh_interval=10, clock=clock)
    verifier = TokenVerifier(ISSUER, AUDIENCE, source)
    jwks_server.serve(public_jwk(signing_key, "k1"))
    assert verifier.verify(sign(claims(), signing_key, "k1"))
    assert jwks_server.requests == 1

    bogus = [sign(claims(), signing_key, f"bogus-{i}") for i in range(40)]
    # Within the interval of the first fetch: no request at all.
    for token in bogus[:5]:
        assert rejection(verifier, token) == "unknown signing key"
    assert jwks_server.requests == 1

    clock.now += 10
    refused = []

    def attack(tokens: list[str]) -> None:
        for token in tokens:
            try:
                verifier.verify(token)
            except InvalidToken as error:
                refused.append(str(error))

    threads = [threading.Thread(target=attack, args=(bogus[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert refused == ["unknown signing key"] * len(bogus)
    assert jwks_server.requests == 2


def test_keys_are_kept_while_the_issuer_is_unreachable(jwks_server, signing_key):
    clock = FakeClock()
    source = JwksKeySource(jwks_server.url, cache_seconds=60, min_refresh_interval=5, clock=clock)
    verifier = TokenVerifier(ISSUER, AUDIENCE, source)
    jwks_server.serve(public_jwk(signing_key, "k1"))
    assert verifier.verify(sign(claims(), signing_key, "k1"))

    jwks_server.status = 503
    clock.now += 120
    assert verifier.verify(sign(claims(), signing_key, "k1"))
    assert jwks_server.requests == 2


# --- the development issuer ----------------------------------------------------------------------


def dev_settings(tmp_path: Path, **environ: str) -> Settings:
    return load_settings({"VILLAGELINK_VAR_DIR": str(tmp_path), **environ})


def test_dev_issuer_refuses_production(tmp_path):
    settings = dev_settings(tmp_path, VILLAGELINK_ENV="production")
    with pytest.raises(DevIssuerRefused, match="KEYCLOAK_URL"):
        DevIssuer(settings)
    with pytest.raises(DevIssuerRefused):
        make_verifier(settings)
    assert not settings.dev_issuer_key_path.exists()


def test_key_file_is_private_and_reused(tmp_path):
    settings = dev_settings(tmp_path)
    first = DevIssuer(settings)
    mode = stat.S_IMODE(os.stat(settings.dev_issuer_key_path).st_mode)
    assert mode == 0o600
    second = DevIssuer(settings)
    assert second.kid == first.kid
    assert second.jwks() == first.jwks()


def test_racing_processes_end_up_with_one_key(tmp_path):
    settings = dev_settings(tmp_path)
    kids: list[str] = []
    threads = [
        threading.Thread(target=lambda: kids.append(DevIssuer(settings).kid)) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 6 and len(set(kids)) == 1
    assert sorted(p.name for p in settings.dev_issuer_key_path.parent.iterdir()) == [
        "signing-key.pem"
    ]


def test_kid_is_the_rfc7638_thumbprint():
    # The example key of RFC 7638, section 3.1, and its published thumbprint.
    jwk = {
        "kty": "RSA",
        "e": "AQAB",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4v"
        "MQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert _rfc7638_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_minted_token_is_keycloak_shaped_and_verifies(tmp_path):
    settings = dev_settings(tmp_path)
    issuer = DevIssuer(settings)
    token = issuer.mint(
        sub="s-1",
        username="wang.fang",
        roles=["village-admin"],
        villages=["dongcun"],
        regions=["wuqu"],
    )
    assert jwt.get_unverified_header(token)["kid"] == issuer.kid
    found = make_verifier(settings).verify(token)
    assert found["iss"] == settings.issuer
    assert found["aud"] == ["villagelink-api"]
    assert found["azp"] == "villagelink-console"
    assert found["realm_access"] == {"roles": ["village-admin"]}
    assert found["groups"] == ["/villages/dongcun", "/regions/wuqu"]
    assert found["typ"] == "Bearer"
    assert found["exp"] - found["iat"] == 3600
    uuid.UUID(found["jti"])
    principal = Principal.from_claims(found)
    assert principal.villages == {"dongcun"} and principal.regions == {"wuqu"}


def test_verifier_for_keycloak_reads_the_realm_jwks(tmp_path):
    settings = dev_settings(tmp_path, KEYCLOAK_URL="https://sso.example.test")
    verifier = make_verifier(settings)
    assert verifier.issuer == "https://sso.example.test/realms/villagelink"
    assert isinstance(verifier.key_source, JwksKeySource)
    assert verifier.key_source.url == settings.jwks_url
    assert not settings.dev_issuer_key_path.exists()


def test_dev_token_is_refused_by_a_verifier_for_another_issuer(tmp_path):
    settings = dev_settings(tmp_path)
    token = mint_for_role(settings, "platform-admin")
    other = dev_settings(tmp_path, VILLAGELINK_PUBLIC_URL="https://villages.example.test")
    assert rejection(make_verifier(other), token) == "wrong issuer"


def test_mint_for_role_gives_a_stable_subject(tmp_path):
    settings = dev_settings(tmp_path)
    verifier = make_verifier(settings)
    first = verifier.verify(mint_for_role(settings, "grid-worker", village="dongcun"))
    again = verifier.verify(mint_for_role(settings, "grid-worker", village="dongcun"))
    elsewhere = verifier.verify(mint_for_role(settings, "grid-worker", village="xicun"))
    assert first["sub"] == again["sub"] != elsewhere["sub"]
    assert first["jti"] != again["jti"]
    assert first["groups"] == ["/villages/dongcun"]
    explicit = verifier.verify(mint_for_role(settings, "grid-worker", village="dongcun", sub="x"))
    assert explicit["sub"] == "x"


def test_mint_for_role_integrator_is_a_service_account(tmp_path):
    settings = dev_settings(tmp_path)
    verifier = make_verifier(settings)
    default = verifier.verify(mint_for_role(settings, "integrator"))
    assert default["azp"] == "demo-integrator"
    assert default["preferred_username"] == "service-account-demo-integrator"
    camera = verifier.verify(mint_for_role(settings, "integrator", client="ai-cameras"))
    assert camera["azp"] == "ai-cameras"
    assert camera["preferred_username"] == "service-account-ai-cameras"
    assert camera["sub"] != default["sub"]


def test_mint_for_role_coordinator(tmp_path):
    settings = dev_settings(tmp_path)
    found = make_verifier(settings).verify(
        mint_for_role(settings, "regional-coordinator", region="wuqu")
    )
    assert found["groups"] == ["/regions/wuqu"]
    assert found["realm_access"]["roles"] == ["regional-coordinator"]


@pytest.mark.parametrize(
    ("role", "options", "message"),
    [
        ("mayor", {}, "unknown role 'mayor'"),
        ("village-admin", {}, "--village is required"),
        ("grid-worker", {"region": "wuqu"}, "--village is required"),
        ("regional-coordinator", {}, "--region is required"),
        ("regional-coordinator", {"region": "wuqu", "village": "dongcun"}, "--village does not"),
        ("platform-admin", {"village": "dongcun"}, "--village does not apply"),
        ("village-admin", {"village": "dongcun", "region": "wuqu"}, "--region does not apply"),
        ("integrator", {"username": "bob"}, "service account"),
        ("village-admin", {"village": "Dong Cun"}, "village slug"),
        ("regional-coordinator", {"region": "../x"}, "region id"),
    ],
)
def test_mint_for_role_refuses_bad_combinations(tmp_path, role, options, message):
    with pytest.raises(ValueError, match=message):
        mint_for_role(dev_settings(tmp_path), role, **options)


def test_blueprint_serves_discovery_and_jwks_at_the_issuer_paths(tmp_path):
    settings = dev_settings(tmp_path)
    issuer = DevIssuer(settings)
    app = Flask(__name__)
    app.register_blueprint(blueprint(issuer))
    client = app.test_client()

    discovery = client.get("/dev-issuer/realms/villagelink/.well-known/openid-configuration")
    assert discovery.status_code == 200
    assert discovery.json["issuer"] == settings.issuer
    assert discovery.json["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "max-age=300" in discovery.headers["Cache-Control"]

    # The advertised jwks_uri is served by this same blueprint.
    certs_path = discovery.json["jwks_uri"].removeprefix(settings.public_url)
    certs = client.get(certs_path)
    assert certs.status_code == 200
    assert certs.json == issuer.jwks()
    assert "max-age=300" in certs.headers["Cache-Control"]
    assert "d" not in certs.json["keys"][0]  # public half only

    # And what it serves verifies the issuer's tokens.
    verifier = TokenVerifier(settings.issuer, AUDIENCE, StaticKeySource(certs.json))
    assert verifier.verify(mint_for_role(settings, "platform-admin"))["sub"]

    assert client.get("/dev-issuer/realms/other/protocol/openid-connect/certs").status_code == 404
