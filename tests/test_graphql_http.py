"""GraphQL over HTTP: methods, media types, malformed requests, limits, and tokens."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from villagelink.platform.identity.dev_issuer import DevIssuer

GRAPHQL_RESPONSE = "application/graphql-response+json"


def auth(token: str) -> dict:
    # The messages these tests read are the English ones (tests/test_messages.py: Chinese).
    return {"Authorization": f"Bearer {token}", "Accept-Language": "en"}


@pytest.fixture
def admin(token):
    return token("platform-admin")


def test_post_json_query(client, admin):
    response = client.post("/graphql", json={"query": "{ __typename }"}, headers=auth(admin))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["data"] == {"__typename": "Query"}
    # The cost and the caller's budget travel with every answer (docs/api.md).
    assert body["extensions"]["cost"]["requested"] == 1
    assert body["extensions"]["cost"]["remaining"] == int(response.headers["RateLimit-Remaining"])
    assert response.headers["X-Request-Id"]


def test_graphql_response_media_type_when_asked(client, admin):
    response = client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={**auth(admin), "Accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 200
    assert response.mimetype == GRAPHQL_RESPONSE


def test_unacceptable_media_type_is_406(client, admin):
    response = client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={**auth(admin), "Accept": "text/html"}
    )
    assert response.status_code == 406
    assert response.get_json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_get_query(client, admin):
    response = client.get("/graphql", query_string={"query": "{ __typename }"}, headers=auth(admin))
    assert response.status_code == 200
    assert response.get_json()["data"] == {"__typename": "Query"}


def test_get_with_variables(client, admin):
    response = client.get(
        "/graphql",
        query_string={
            "query": "query($s: String!) { village(slug: $s) { slug } }",
            "variables": json.dumps({"s": "nowhere"}),
        },
        headers=auth(admin),
    )
    body = response.get_json()
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_mutation_over_get_is_405(client, admin):
    query = (
        'mutation { untagResident(input: {resident: "x", tag: VOLUNTEER}) { userErrors { code } } }'
    )
    response = client.get("/graphql", query_string={"query": query}, headers=auth(admin))
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.get_json()["errors"][0]["message"] == "mutations are sent with POST"


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_other_methods_are_405(client, admin, method):
    response = getattr(client, method)("/graphql", headers=auth(admin))
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"
    assert response.get_json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_wrong_content_type_is_415(client, admin):
    response = client.post(
        "/graphql", data="{ __typename }", content_type="text/plain", headers=auth(admin)
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{", "request body is not JSON"),
        ("[]", "request body must be a JSON object"),
        ('{"query": 5}', "query must be a non-empty string"),
        ('{"query": ""}', "query must be a non-empty string"),
        ('{"query": "{ __typename }", "variables": [1]}', "variables must be a JSON object"),
        ('{"query": "{ __typename }", "operationName": 3}', "operationName must be a string"),
    ],
)
def test_malformed_bodies_are_400(client, admin, body, message):
    response = client.post(
        "/graphql", data=body, content_type="application/json", headers=auth(admin)
    )
    assert response.status_code == 400
    assert response.get_json() == {
        "errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]
    }


def test_body_over_the_limit_is_413(client, admin, settings):
    padding = "x" * (settings.max_body_bytes + 1)
    response = client.post(
        "/graphql", json={"query": "{ __typename }", "padding": padding}, headers=auth(admin)
    )
    assert response.status_code == 413
    assert response.get_json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_parse_error_status_depends_on_media_type(client, admin):
    legacy = client.post("/graphql", json={"query": "{ village("}, headers=auth(admin))
    assert legacy.status_code == 200
    assert legacy.get_json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "data" not in legacy.get_json()
    modern = client.post(
        "/graphql",
        json={"query": "{ village("},
        headers={**auth(admin), "Accept": GRAPHQL_RESPONSE},
    )
    assert modern.status_code == 400


def test_validation_error(client, admin):
    response = client.post(
        "/graphql", json={"query": "{ nope }"}, headers={**auth(admin), "Accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 400
    error = response.get_json()["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_bad_variable_is_bad_user_input(client, admin):
    query = 'query($first: Int) { village(slug: "x") { residents(first: $first) { totalCount } } }'
    response = client.post(
        "/graphql", json={"query": query, "variables": {"first": "many"}}, headers=auth(admin)
    )
    body = response.get_json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "data" not in body


def test_depth_limit(client, admin, settings):
    inner = "id"
    for _ in range(settings.max_query_depth):
        inner = f"parent {{ {inner} }}"
    query = f'{{ village(slug: "x") {{ grids {{ edges {{ node {{ {inner} }} }} }} }} }}'
    response = client.post("/graphql", json={"query": query}, headers=auth(admin))
    error = response.get_json()["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "depth" in error["message"]


def test_cost_limit(client, admin):
    page = "residents(first: 100) { edges { node { household { members { name } } } } }"
    query = "{ villages { " + " ".join(f"r{i}: {page}" for i in range(6)) + " } }"
    response = client.post("/graphql", json={"query": query}, headers=auth(admin))
    error = response.get_json()["errors"][0]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "cost" in error["message"].lower()


def test_first_is_capped(client, admin, demo_region, settings):
    query = '{ village(slug: "liulin") { residents(first: 101) { totalCount } } }'
    body = client.post("/graphql", json={"query": query}, headers=auth(admin)).get_json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["data"] == {"village": None}


def test_errors_never_show_internals(client, admin):
    body = client.post(
        "/graphql", json={"query": '{ node(id: "%%%") { id } }'}, headers=auth(admin)
    ).get_json()
    text = json.dumps(body)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "Traceback" not in text and "SELECT" not in text


def test_health_endpoints(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_metrics_count_operations_and_error_codes(client, admin):
    client.post("/graphql", json={"query": "query Probe { __typename }"}, headers=auth(admin))
    client.post("/graphql", json={"query": "{ __typename }"})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'villagelink_graphql_request_seconds_count{operation="Probe"}' in text
    assert 'villagelink_graphql_errors_total{code="UNAUTHENTICATED"}' in text


# -- tokens -------------------------------------------------------------------


def _unauthenticated(client, headers) -> dict:
    response = client.post("/graphql", json={"query": "{ me { subject } }"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.get_json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in body
    return body


def _claims(settings, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": settings.issuer,
        "aud": [settings.oidc_audience],
        "sub": "someone",
        "azp": "villagelink-console",
        "typ": "Bearer",
        "iat": now,
        "exp": now + 300,
        "realm_access": {"roles": ["platform-admin"]},
    }
    claims.update(overrides)
    return claims


def _signed(settings, claims: dict, kid: str | None = None) -> str:
    issuer = DevIssuer(settings)
    key = serialization.load_pem_private_key(settings.dev_issuer_key_path.read_bytes(), None)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or issuer.kid})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_missing_token(client):
    _unauthenticated(client, {})
    _unauthenticated(client, {"Authorization": "Basic dXNlcjpwYXNz"})


def test_token_signed_by_the_dev_issuer_key_is_accepted(client, settings):
    response = client.post(
        "/graphql",
        json={"query": "{ me { subject } }"},
        headers=auth(_signed(settings, _claims(settings))),
    )
    assert response.get_json()["data"] == {"me": {"subject": "someone"}}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "token expired"),
        ({"iss": "https://elsewhere.example/realms/villagelink"}, "wrong issuer"),
        ({"aud": ["another-api"]}, "wrong audience"),
    ],
)
def test_rejected_claims(client, settings, overrides, reason):
    body = _unauthenticated(client, auth(_signed(settings, _claims(settings, **overrides))))
    assert reason in body["errors"][0]["message"]


def test_bad_signature(client, settings):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        _claims(settings), other, algorithm="RS256", headers={"kid": DevIssuer(settings).kid}
    )
    _unauthenticated(client, auth(forged))


def test_alg_none(client, settings):
    token = (
        f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': DevIssuer(settings).kid})}."
        f"{_b64(_claims(settings))}."
    )
    _unauthenticated(client, auth(token))


def test_hs256_signed_with_the_public_key(client, settings):
    import hashlib
    import hmac

    issuer = DevIssuer(settings)
    public_pem = (
        serialization.load_pem_private_key(settings.dev_issuer_key_path.read_bytes(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = (
        f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': issuer.kid})}.{_b64(_claims(settings))}"
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    _unauthenticated(client, auth(token))


def test_unknown_kid(client, settings):
    _unauthenticated(client, auth(_signed(settings, _claims(settings), kid="not-a-key")))


def test_village_not_in_claims_is_not_found(client, token, demo_region):
    admin_of_liulin = token("village-admin", village="liulin")
    response = client.post(
        "/graphql",
        json={"query": '{ village(slug: "xinghua") { name } }'},
        headers=auth(admin_of_liulin),
    )
    body = response.get_json()
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert body["data"] == {"village": None}


def test_an_answer_is_compact_utf8_json_and_any_value_still_goes_out():
    from datetime import UTC, date, datetime

    from villagelink.graphql.gateway import _answer_json

    body = {"data": {"name": "柳林村", "n": [1, 2.5, None, True]}}
    assert _answer_json(body) == '{"data":{"name":"柳林村","n":[1,2.5,null,true]}}'.encode()
    # Dates as `str` spells them, as the standard library's `default=str` did.
    at = datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC)
    assert json.loads(_answer_json({"at": at, "on": date(2026, 12, 7)})) == {
        "at": str(at),
        "on": "2026-12-07",
    }
    # A lone surrogate (an error quoting the request) or a number past 64 bits: still JSON.
    for odd in ({"message": "bad \ud800 text"}, {"count": 2**70}):
        assert json.loads(_answer_json(odd)) == odd
