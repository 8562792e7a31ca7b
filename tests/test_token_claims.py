"""Tokens signed by the trusted issuer whose claims have the wrong shape.

The signature is good, so only the claim checks stand between such a token and the API. The
claims are generated (hypothesis) and signed with the development issuer's key; every one must
get 401 UNAUTHENTICATED with a message naming the problem, never a 500 and never a caller built
from the half of the claims that looked right.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from villagelink.platform.identity.dev_issuer import DevIssuer
from villagelink.platform.identity.principal import Principal
from villagelink.platform.identity.tokens import make_verifier

# Each request is a signature and a Flask test-client call: cheap enough for many examples.
generated = hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
slugs = st.from_regex(r"[a-z][a-z0-9_]{1,20}", fullmatch=True)


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


not_string_lists = json_values.filter(lambda v: not _is_string_list(v))
# A group path one edit away from canonical: each spelling could be read as the same group.
non_canonical_groups = st.builds(
    lambda parent, slug, spell: spell(parent, slug),
    st.sampled_from(["villages", "regions"]),
    slugs,
    st.sampled_from(
        [
            lambda p, s: f"/{p}//{s}",
            lambda p, s: f"/{p}/{s}/",
            lambda p, s: f"/{p}/{s.upper()}",
            lambda p, s: f"/{p.capitalize()}/{s}",
            lambda p, s: f"/{p}/../{s}",
            lambda p, s: f"/{p}/./{s}",
            lambda p, s: f"{p}/{s}",
            lambda p, s: f"//{p}/{s}",
            lambda p, s: f"/{p}/{s}/staff",
            lambda p, s: f"/{p}/ {s}",
            lambda p, s: f"/{p}/{s}\n",
            lambda p, s: f"/{p}/{s}٣",
            lambda p, s: f"/{p}/9{s}",
        ]
    ),
)
WRONG_SHAPES: dict[str, st.SearchStrategy] = {
    **{
        name: json_values.filter(lambda v: type(v) is not int) | st.integers(max_value=-1)
        for name in ("exp", "iat", "nbf")
    },
    "sub": json_values.filter(lambda v: not (isinstance(v, str) and v.strip())),
    **{
        name: json_values.filter(lambda v: not isinstance(v, str))
        for name in ("azp", "preferred_username", "typ", "jti", "scope")
    },
    "realm_access": json_values.filter(lambda v: not isinstance(v, dict))
    | st.fixed_dictionaries({"roles": not_string_lists}),
    "groups": not_string_lists
    | st.lists(non_canonical_groups, min_size=1, max_size=2).flatmap(
        # The bad path among good ones: the good ones must not be granted alone.
        lambda bad: st.permutations([*bad, "/villages/liulin", "/regions/r_test"])
    ),
}


@pytest.fixture(scope="module")
def issuer(settings) -> DevIssuer:
    return DevIssuer(settings)


@pytest.fixture(scope="module")
def http(app):
    return app.test_client()


def _signed(issuer: DevIssuer, claims: dict[str, Any]) -> str:
    return issuer.mint(
        sub="9a0e4c1b-claims",
        username="claims-test",
        roles=["village-admin"],
        villages=["liulin"],
        extra=claims,
    )


def _post(http, token: str):
    return http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {token}"}
    )


def _assert_refused(response) -> str:
    assert response.status_code == 401, response.get_data(as_text=True)
    error = response.get_json()["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["message"].startswith("invalid token: ")
    assert "invalid_token" in response.headers["WWW-Authenticate"]
    return error["message"]


def test_the_generator_s_base_token_is_accepted(issuer, http):
    """The control: without a wrong claim the same token passes, so the refusals below are
    the claims' doing."""
    response = _post(http, _signed(issuer, {}))
    assert response.status_code == 200
    assert response.get_json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize("claim", sorted(WRONG_SHAPES))
def test_a_claim_of_the_wrong_shape_is_refused_with_401(issuer, http, claim):
    @generated
    @given(value=WRONG_SHAPES[claim])
    def check(value):
        message = _assert_refused(_post(http, _signed(issuer, {claim: value})))
        # The message names the claim (PyJWT's own checks say "missing ..." for a null one).
        named = claim.split("_")[0].rstrip("s")
        assert named in message or "missing" in message, message

    check()


@generated
@given(
    claims=st.lists(
        st.sampled_from(sorted(WRONG_SHAPES)), min_size=2, max_size=4, unique=True
    ).flatmap(lambda names: st.fixed_dictionaries({name: WRONG_SHAPES[name] for name in names}))
)
def test_several_wrong_claims_at_once_are_refused(issuer, http, claims):
    _assert_refused(_post(http, _signed(issuer, claims)))


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"realm_access": ["village-admin"]}, "realm_access claim must be an object"),
        (
            {"realm_access": {"roles": "village-admin"}},
            "realm_access.roles claim must be a list of strings",
        ),
        ({"exp": "9999999999"}, "exp claim must be a whole number of seconds"),
        ({"exp": 9999999999.5}, "exp claim must be a whole number of seconds"),
        ({"iat": True}, "iat claim must be a whole number of seconds"),
        ({"groups": "/villages/liulin"}, "groups claim must be a list of strings"),
        ({"groups": ["/villages//liulin"]}, "group path '/villages//liulin' is not canonical"),
        ({"groups": ["/villages/Liulin"]}, "group path '/villages/Liulin' is not canonical"),
        ({"groups": ["/regions/../liulin"]}, "group path '/regions/../liulin' is not canonical"),
        ({"azp": ["villagelink-console"]}, "azp claim must be a string"),
        ({"sub": 42}, "sub claim must be a string"),
    ],
)
def test_the_message_says_which_claim_is_wrong(issuer, http, claims, message):
    assert _assert_refused(_post(http, _signed(issuer, claims))) == f"invalid token: {message}"


@generated
@given(
    villages=st.lists(slugs, max_size=3),
    regions=st.lists(slugs, max_size=2),
    others=st.lists(st.from_regex(r"/[a-z]{3,8}(/[a-z]{3,8})?", fullmatch=True), max_size=2),
)
def test_canonical_group_paths_are_read_exactly(settings, issuer, villages, regions, others):
    """Well-formed groups pass and grant exactly the villages and regions they name."""
    others = [g for g in others if g.split("/")[1] not in ("villages", "regions")]
    groups = [f"/villages/{v}" for v in villages] + [f"/regions/{r}" for r in regions] + others
    claims = make_verifier(settings).verify(_signed(issuer, {"groups": [*groups, "/villages"]}))
    principal = Principal.from_claims(claims)
    assert principal.villages == frozenset(villages)
    assert principal.regions == frozenset(regions)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]+", v) for v in principal.villages)
