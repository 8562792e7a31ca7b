"""The realm in the repository, provisioning, and the gateway with tokens from a real Keycloak.

Keycloak is the `keycloak` session fixture: a `start-dev` server with the realm imported from
platform/identity/realm-villagelink.json. The accounts these tests sign in with are made
through the master realm's admin (with known passwords); what provisioning makes is made
through the `villagelink-provisioner` service account, as in production. The last test signs
in to the console in a real browser on Keycloak's own login page (here rather than in
tests/browser/, so that the suite's one Keycloak serves it: xdist sends a file to one worker).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import jwt
import pytest
import requests
from click.testing import CliRunner
from keycloak import KeycloakAdmin
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select, update

from villagelink.graphql.core.ids import encode_id
from villagelink.platform.app import create_app, runtime_of
from villagelink.platform.cli import main as cli
from villagelink.platform.identity.dev_issuer import CONSOLE_CLIENT, RESIDENTS_CLIENT
from villagelink.platform.identity.keycloak_admin import (
    INVITE_ACTIONS,
    KeycloakProvisioningError,
    RealmAdmin,
    disable_village,
    enable_village,
    sync_village,
)
from villagelink.platform.services import KeycloakServer, realm_document
from villagelink.tenants import models as m
from villagelink.tenants import provisioning
from villagelink.tenants.demo.plans import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_VILLAGES,
    DEMO_VILLAGES,
    demo_grid_worker_subject,
)
from villagelink.tenants.demo.residents import build_village, write_village

from .browser.conftest import (
    Stack,
    build_console,
    check_accessible,
    opened,
    shot,
    stack_url,
    start_stack,
)
from .conftest import new_village
from .keycloak_accounts import PASSWORD, create_account, realm_admin
from .processes import free_ports

REALM_FILE = Path(__file__).parent.parent / "platform" / "identity" / "realm-villagelink.json"
REALM = json.loads(REALM_FILE.read_text())
SECRETS = {c["clientId"]: c["secret"] for c in REALM["clients"] if "secret" in c}
REGION = "nanhe"  # the demo region
TEST_REGION = "testregion"  # conftest's region for fresh villages

VILLAGES = "{ villages { slug } }"
ME = "{ me { subject username roles clientId } }"
RESIDENTS = """query($slug: String!) { village(slug: $slug) {
  residents(first: 100) { totalCount edges { node { id idNumber phone } } } } }"""
UNMASKED = """query($slug: String!) { village(slug: $slug) {
  residents(first: 1) { edges { node { idNumber(unmasked: true, reason: "核对身份") } } } } }"""
TAG = """mutation($id: ID!) { tagResident(input: {resident: $id, tag: VOLUNTEER}) {
  resident { tags { tag } } userErrors { field code } } }"""
NODE = "query($id: ID!) { node(id: $id) { id } }"


# -- servers, settings, apps --------------------------------------------------------------


@pytest.fixture(scope="module")
def kc_settings(settings, keycloak):
    """The test settings pointed at the Keycloak realm: the development issuer is off."""
    configured = replace(
        settings,
        keycloak_url=keycloak.url,
        keycloak_realm=keycloak.realm,
        keycloak_admin_client_secret=SECRETS["villagelink-provisioner"],
        jwks_cache_seconds=2,
        # The rotation test waits out this interval: 1 s instead of production's 10.
        jwks_min_refresh_seconds=1,
    )
    assert not configured.dev_issuer_enabled
    return configured


@pytest.fixture(scope="module")
def kc_app(kc_settings, db):
    app = create_app(kc_settings)
    yield app
    runtime_of(app).db.dispose()


@pytest.fixture(scope="module")
def master(keycloak) -> KeycloakAdmin:
    """The villagelink realm administered by the bootstrap admin: for test accounts and keys."""
    return realm_admin(keycloak)


@pytest.fixture(scope="module")
def realm(kc_settings) -> RealmAdmin:
    return RealmAdmin(kc_settings)


@pytest.fixture(scope="module")
def demo_groups(kc_settings, demo_region) -> list[str]:
    """The demo villages' groups, as `tenants create` makes them."""
    for plan in DEMO_VILLAGES:
        sync_village(kc_settings, plan.slug, plan.name, REGION)
    return demo_region.slugs


def graphql(app, token: str, query: str, variables: dict | None = None):
    response = app.test_client().post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code, response.get_json()


def slugs(body) -> set[str]:
    return {v["slug"] for v in body["data"]["villages"]}


def first_code(body) -> str:
    return body["errors"][0]["extensions"]["code"]


# -- tokens and accounts ---------------------------------------------------------------------


def token_endpoint(keycloak) -> str:
    return f"{keycloak.url}/realms/{keycloak.realm}/protocol/openid-connect/token"


def password_grant(keycloak, username: str, password: str = PASSWORD) -> requests.Response:
    return requests.post(
        token_endpoint(keycloak),
        data={
            "grant_type": "password",
            "client_id": "villagelink-dev-cli",
            "username": username,
            "password": password,
            "scope": "openid",
        },
        timeout=30,
    )


def password_token(keycloak, username: str) -> str:
    response = password_grant(keycloak, username)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def integrator_token(keycloak) -> str:
    response = requests.post(
        token_endpoint(keycloak),
        data={
            "grant_type": "client_credentials",
            "client_id": DEMO_CLIENT_ID,
            "client_secret": SECRETS[DEMO_CLIENT_ID],
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def make_account(master) -> Iterator[Callable[..., tuple[str, str]]]:
    """make_account(role, groups) -> (username, user id): a ready account with PASSWORD."""
    created: list[str] = []

    def make(*roles: str, groups: tuple[str, ...] = ()) -> tuple[str, str]:
        username = unique("kc-test")
        user_id = create_account(master, username, roles, groups)
        created.append(user_id)
        return username, user_id

    yield make
    for user_id in created:
        master.delete_user(user_id)


@pytest.fixture(scope="module")
def platform_admin(keycloak, make_account) -> Callable[[], str]:
    username, _ = make_account("platform-admin")
    return lambda: password_token(keycloak, username)


def village_with_group(db, realm, name: str, residents: int) -> Iterator[provisioning.Village]:
    """A populated village of its own with its Keycloak group; the group goes afterwards."""
    slug = f"kc_{uuid.uuid4().hex[:8]}"
    village = new_village(db, name, TEST_REGION, slug=slug)
    plan = replace(DEMO_VILLAGES[0], slug=slug, name=name, residents=residents)
    with db.tenant(slug) as conn:
        write_village(conn, build_village(plan, seed=7))
    realm.ensure_region_group(TEST_REGION)
    realm.ensure_village_group(slug, name, TEST_REGION)
    yield village
    realm.remove_village_group(slug)


@pytest.fixture
def fresh_village(db, realm) -> Iterator[provisioning.Village]:
    yield from village_with_group(db, realm, "测试村", residents=60)


@pytest.fixture
def gridded_village(db, realm) -> Iterator[provisioning.Village]:
    """Large enough for several micro-grids, so that a grid worker sees only part."""
    yield from village_with_group(db, realm, "网格村", residents=600)


def a_resident_id(app, admin_token: str, slug: str) -> str:
    _, body = graphql(app, admin_token, RESIDENTS, {"slug": slug})
    return body["data"]["village"]["residents"]["edges"][0]["node"]["id"]


# -- the realm file ----------------------------------------------------------------------------


def test_realm_file_marks_its_secrets_as_development_only():
    for client in REALM["clients"]:
        if "secret" in client:
            assert client["secret"].startswith("dev-only-"), client["clientId"]
            assert "DEVELOPMENT ONLY" in client["description"], client["clientId"]
    dev_cli = next(c for c in REALM["clients"] if c["clientId"] == "villagelink-dev-cli")
    assert "DEVELOPMENT ONLY" in dev_cli["description"]


def test_imported_realm_has_roles_groups_and_clients(master):
    roles = {r["name"] for r in master.get_realm_roles()}
    assert {
        "platform-admin",
        "regional-coordinator",
        "village-admin",
        "grid-worker",
        "integrator",
    } <= roles
    assert {"/villages", "/regions"} <= {g["path"] for g in master.get_groups()}
    clients = {c["clientId"]: c for c in master.get_clients()}
    console = clients["villagelink-console"]
    assert console["publicClient"] and console["standardFlowEnabled"]
    assert not console["directAccessGrantsEnabled"] and not console["implicitFlowEnabled"]
    assert console["attributes"]["pkce.code.challenge.method"] == "S256"
    assert clients[DEMO_CLIENT_ID]["serviceAccountsEnabled"]
    assert not clients[DEMO_CLIENT_ID]["publicClient"]


def test_tokens_carry_audience_roles_and_full_group_paths(keycloak, make_account, demo_groups):
    username, user_id = make_account("village-admin", groups=("/villages/liulin",))
    claims = jwt.decode(password_token(keycloak, username), options={"verify_signature": False})
    assert "villagelink-api" in claims["aud"]
    assert claims["sub"] == user_id
    assert "village-admin" in claims["realm_access"]["roles"]
    assert claims["groups"] == ["/villages/liulin"]
    integrator = jwt.decode(integrator_token(keycloak), options={"verify_signature": False})
    assert "villagelink-api" in integrator["aud"]
    assert integrator["azp"] == DEMO_CLIENT_ID
    assert "integrator" in integrator["realm_access"]["roles"]


# -- provisioning --------------------------------------------------------------------------


def test_provisioning_creates_the_village_group_once(kc_settings, master, village):
    first = sync_village(kc_settings, village.slug, village.name, TEST_REGION)
    second = sync_village(kc_settings, village.slug, "测试村（改名）", TEST_REGION)
    assert first == second
    children = master.get_group_children(master.get_group_by_path("/villages")["id"])
    assert [g["id"] for g in children if g["name"] == village.slug] == [first]
    group = master.get_group(first)
    assert group["path"] == f"/villages/{village.slug}"
    assert group["attributes"]["villageName"] == ["测试村（改名）"]
    assert group["attributes"]["region"] == [TEST_REGION]
    assert master.get_group_by_path(f"/regions/{TEST_REGION}")["name"] == TEST_REGION
    RealmAdmin(kc_settings).remove_village_group(village.slug)


def test_invite_creates_an_account_with_required_actions(keycloak, master, realm, fresh_village):
    email = f"{unique('invitee')}@Example.org"
    user_id = realm.invite_user(fresh_village.slug, "grid-worker", email, first_name="小红")
    try:
        user = master.get_user(user_id)
        assert user["username"] == user["email"] == email.lower()
        assert sorted(user["requiredActions"]) == sorted(INVITE_ACTIONS)
        assert user["enabled"] and not user["emailVerified"]
        assert user["firstName"] == "小红"
        groups = [g["path"] for g in master.get_user_groups(user_id)]
        assert groups == [f"/villages/{fresh_village.slug}"]
        assert "grid-worker" in {r["name"] for r in master.get_realm_roles_of_user(user_id)}
        # Twice, in whatever case: the same account, still in one group.
        assert realm.invite_user(fresh_village.slug, "grid-worker", email.upper()) == user_id
        assert len(master.get_user_groups(user_id)) == 1
        # The account cannot sign in before it has set a password.
        refused = password_grant(keycloak, email.lower())
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    finally:
        master.delete_user(user_id)


def test_invite_refuses_what_it_cannot_give(realm, fresh_village, demo_groups):
    email = f"{unique('refused')}@example.org"
    refusals = {
        "boss": "unknown role",
        "integrator": "not given per village",
        "platform-admin": "not given per village",
    }
    for role, message in refusals.items():
        with pytest.raises(KeycloakProvisioningError, match=message):
            realm.invite_user(fresh_village.slug, role, email)
    with pytest.raises(KeycloakProvisioningError, match="tenants create"):
        realm.invite_user("nosuchvillage", "grid-worker", email)
    with pytest.raises(KeycloakProvisioningError, match="not an email"):
        realm.invite_user(fresh_village.slug, "grid-worker", "not-an-address")
    user_id = realm.invite_user(fresh_village.slug, "village-admin", email)
    try:
        # A village-admin of one village made grid-worker of another would be admin there too.
        with pytest.raises(KeycloakProvisioningError, match="separate address"):
            realm.invite_user("liulin", "grid-worker", email)
        # The same role in a second village is what the model can express.
        assert realm.invite_user("liulin", "village-admin", email) == user_id
    finally:
        realm.admin.delete_user(user_id)


def test_cli_provisions_invites_disables_and_drops(kc_settings, master, db):
    slug = f"kc_{uuid.uuid4().hex[:8]}"
    email = f"{unique('cli')}@example.org"
    env = {
        "DATABASE_URL": kc_settings.database_url,
        "REDIS_URL": kc_settings.redis_url,
        "VILLAGELINK_VAR_DIR": str(kc_settings.var_dir),
        "VILLAGELINK_ENV": "test",
        "KEYCLOAK_URL": kc_settings.keycloak_url,
        "KEYCLOAK_REALM": kc_settings.keycloak_realm,
        "KEYCLOAK_ADMIN_CLIENT_SECRET": kc_settings.keycloak_admin_client_secret,
    }
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    create = ("tenants", "create", slug, "--name", "命令村", "--region", TEST_REGION)
    run(*create)
    assert f"/villages/{slug}" in run(*create)
    group_id = master.get_group_by_path(f"/villages/{slug}")["id"]
    invite = (
        "users",
        "invite",
        "--village",
        slug,
        "--role",
        "village-admin",
        "--email",
        email,
    )
    user_id = run(*invite).split("Keycloak user ")[1].strip(" )\n")
    assert f"Keycloak user {user_id}" in run(*invite)
    assert [u["id"] for u in master.get_group_members(group_id)] == [user_id]

    assert "1 accounts disabled" in run("tenants", "disable", slug)
    assert not master.get_user(user_id)["enabled"]
    assert "0 accounts disabled" in run("tenants", "disable", slug)
    assert "1 accounts enabled" in run("tenants", "enable", slug)
    assert master.get_user(user_id)["enabled"]

    refused = runner.invoke(cli, [*invite[:4], "--role", "integrator", *invite[6:]], env=env)
    assert refused.exit_code != 0 and "integrator" in refused.output

    run("tenants", "drop", slug, "--confirm", slug)
    assert "id" not in master.get_group_by_path(f"/villages/{slug}")
    master.delete_user(user_id)


# -- the gateway with real tokens ------------------------------------------------------------


def test_dev_issuer_tokens_are_refused_when_keycloak_is_configured(kc_app, token):
    status, body = graphql(kc_app, token("platform-admin"), ME)
    assert status == 401
    assert first_code(body) == "UNAUTHENTICATED"


def test_me_reads_the_keycloak_token(kc_app, keycloak, make_account):
    username, user_id = make_account("grid-worker")
    status, body = graphql(kc_app, password_token(keycloak, username), ME)
    assert status == 200, body
    assert body["data"]["me"] == {
        "subject": user_id,
        "username": username,
        "roles": ["grid-worker"],
        "clientId": "villagelink-dev-cli",
    }


def test_platform_admin_sees_and_writes_everywhere(
    kc_app, platform_admin, demo_groups, fresh_village
):
    admin = platform_admin()
    _, body = graphql(kc_app, admin, VILLAGES)
    assert set(demo_groups) | {fresh_village.slug} <= slugs(body)
    resident = a_resident_id(kc_app, admin, fresh_village.slug)
    _, body = graphql(kc_app, admin, TAG, {"id": resident})
    assert body["data"]["tagResident"]["userErrors"] == []
    _, body = graphql(kc_app, admin, UNMASKED, {"slug": fresh_village.slug})
    assert first_code(body) == "FORBIDDEN"


def test_regional_coordinator_reads_its_region_only(
    kc_app,
    keycloak,
    make_account,
    platform_admin,
    demo_region,
    demo_groups,
    fresh_village,
):
    username, _ = make_account("regional-coordinator", groups=(f"/regions/{REGION}",))
    coordinator = password_token(keycloak, username)
    _, body = graphql(kc_app, coordinator, VILLAGES)
    assert slugs(body) == set(demo_groups)
    _, body = graphql(kc_app, coordinator, RESIDENTS, {"slug": "liulin"})
    assert body["data"]["village"]["residents"]["totalCount"] == demo_region.residents_per_village
    _, body = graphql(kc_app, coordinator, RESIDENTS, {"slug": fresh_village.slug})
    assert first_code(body) == "NOT_FOUND"
    # Read-only: no writes, no whole ID numbers.
    _, body = graphql(
        kc_app,
        coordinator,
        TAG,
        {"id": a_resident_id(kc_app, platform_admin(), "liulin")},
    )
    assert first_code(body) == "FORBIDDEN"
    _, body = graphql(kc_app, coordinator, UNMASKED, {"slug": "liulin"})
    assert first_code(body) == "FORBIDDEN"


def test_village_admin_reads_writes_and_unmasks_its_own_village_only(
    kc_app, keycloak, make_account, platform_admin, demo_groups, fresh_village
):
    username, _ = make_account("village-admin", groups=(f"/villages/{fresh_village.slug}",))
    admin = password_token(keycloak, username)
    _, body = graphql(kc_app, admin, VILLAGES)
    assert slugs(body) == {fresh_village.slug}
    _, body = graphql(kc_app, admin, UNMASKED, {"slug": fresh_village.slug})
    assert "*" not in body["data"]["village"]["residents"]["edges"][0]["node"]["idNumber"]
    _, body = graphql(kc_app, admin, TAG, {"id": a_resident_id(kc_app, admin, fresh_village.slug)})
    assert body["data"]["tagResident"]["resident"]["tags"]
    neighbour = a_resident_id(kc_app, platform_admin(), "xinghua")
    _, body = graphql(kc_app, admin, RESIDENTS, {"slug": "xinghua"})
    assert first_code(body) == "NOT_FOUND"
    _, body = graphql(kc_app, admin, NODE, {"id": neighbour})
    assert first_code(body) == "NOT_FOUND"
    _, body = graphql(kc_app, admin, TAG, {"id": neighbour})
    assert first_code(body) == "NOT_FOUND"


def test_grid_worker_sees_only_the_grids_its_account_is_linked_to(
    kc_app, keycloak, db, make_account, platform_admin, demo_groups, gridded_village
):
    slug = gridded_village.slug
    username, user_id = make_account("grid-worker", groups=(f"/villages/{slug}",))
    worker = password_token(keycloak, username)
    # Not yet linked to a grid_staff row: the account sees no residents.
    _, body = graphql(kc_app, worker, RESIDENTS, {"slug": slug})
    assert body["data"]["village"]["residents"]["totalCount"] == 0
    with db.tenant(slug) as conn:
        conn.execute(
            update(m.grid_staff)
            .where(m.grid_staff.c.account_sub == demo_grid_worker_subject(slug))
            .values(account_sub=user_id)
        )
    admin = platform_admin()
    _, everyone = graphql(kc_app, admin, RESIDENTS, {"slug": slug})
    total = everyone["data"]["village"]["residents"]["totalCount"]
    _, mine = graphql(kc_app, worker, RESIDENTS, {"slug": slug})
    mine = mine["data"]["village"]["residents"]
    assert 0 < mine["totalCount"] < total
    _, grids = graphql(
        kc_app,
        admin,
        "query($slug: String!) { village(slug: $slug) {"
        " grids(first: 100, level: MICRO) { edges { node { id } } } } }",
        {"slug": slug},
    )
    in_grid = """query($slug: String!, $grid: ID!) { village(slug: $slug) {
        residents(first: 1, filter: {grid: $grid}) { totalCount edges { node { id } } } } }"""
    outsider = None
    for edge in grids["data"]["village"]["grids"]["edges"]:
        grid = {"slug": slug, "grid": edge["node"]["id"]}
        _, theirs = graphql(kc_app, worker, in_grid, grid)
        _, all_of = graphql(kc_app, admin, in_grid, grid)
        if (
            theirs["data"]["village"]["residents"]["totalCount"] == 0
            and all_of["data"]["village"]["residents"]["edges"]
        ):
            outsider = all_of["data"]["village"]["residents"]["edges"][0]["node"]["id"]
            break
    assert outsider is not None, "every micro-grid is the worker's: the village is too small"
    _, body = graphql(kc_app, worker, NODE, {"id": outsider})
    assert first_code(body) == "NOT_FOUND"
    _, body = graphql(kc_app, worker, TAG, {"id": outsider})
    assert body["data"]["tagResident"]["userErrors"][0]["code"] == "NOT_FOUND"
    _, body = graphql(kc_app, worker, TAG, {"id": mine["edges"][0]["node"]["id"]})
    assert body["data"]["tagResident"]["userErrors"] == []
    _, body = graphql(kc_app, worker, UNMASKED, {"slug": slug})
    assert first_code(body) == "FORBIDDEN"
    _, body = graphql(kc_app, worker, RESIDENTS, {"slug": "liulin"})
    assert first_code(body) == "NOT_FOUND"


def test_integrator_reads_granted_villages_masked_and_writes_nothing(
    kc_app, keycloak, platform_admin, demo_groups
):
    integrator = integrator_token(keycloak)
    _, body = graphql(kc_app, integrator, VILLAGES)
    assert slugs(body) == set(DEMO_CLIENT_VILLAGES)
    granted = DEMO_CLIENT_VILLAGES[0]
    _, body = graphql(kc_app, integrator, RESIDENTS, {"slug": granted})
    assert "********" in body["data"]["village"]["residents"]["edges"][0]["node"]["idNumber"]
    _, body = graphql(kc_app, integrator, UNMASKED, {"slug": granted})
    assert first_code(body) == "FORBIDDEN"
    _, body = graphql(
        kc_app,
        integrator,
        TAG,
        {"id": a_resident_id(kc_app, platform_admin(), granted)},
    )
    assert first_code(body) == "FORBIDDEN"
    _, body = graphql(kc_app, integrator, RESIDENTS, {"slug": "xinghua"})
    assert first_code(body) == "NOT_FOUND"


CONSOLE_REDIRECT = "http://127.0.0.1:8000/console/callback"
RESIDENTS_REDIRECT = "http://127.0.0.1:8000/h5/callback"


def console_sign_in(
    keycloak,
    username: str,
    challenge: str | None,
    client_id: str = CONSOLE_CLIENT,
    redirect_uri: str = CONSOLE_REDIRECT,
) -> requests.Response:
    """What a browser does for the console (or the residents' app): the authorization
    request, then the login form. Returns the last answer: a redirect to the client with a
    code, or what refused it."""
    authorize = f"{keycloak.url}/realms/{keycloak.realm}/protocol/openid-connect/auth"
    params = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": "openid",
        "state": secrets.token_urlsafe(8),
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    with requests.Session() as browser:
        page = browser.get(authorize, params=params, allow_redirects=False, timeout=30)
        form = re.search(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', page.text)
        if form is None:
            return page
        # Keycloak marks its cookies Secure; browsers send those to http://127.0.0.1 (a
        # secure context), requests does not.
        for cookie in browser.cookies:
            cookie.secure = False
        return browser.post(
            html.unescape(form.group(1)),
            data={"username": username, "password": PASSWORD, "credentialId": ""},
            allow_redirects=False,
            timeout=30,
        )


def redirected_code(answer: requests.Response, redirect_uri: str = CONSOLE_REDIRECT) -> str:
    assert answer.status_code == 302, answer.text[:300]
    location = urlparse(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    return parse_qs(location.query)["code"][0]


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def code_grant(keycloak, username: str, client_id: str, redirect_uri: str) -> requests.Response:
    """Sign in through a client's login form with PKCE and exchange the code: the token
    endpoint's answer."""
    verifier, challenge = pkce_pair()
    code = redirected_code(
        console_sign_in(keycloak, username, challenge, client_id, redirect_uri), redirect_uri
    )
    return requests.post(
        token_endpoint(keycloak),
        data={
            "grant_type": "authorization_code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "code": code,
            "code_verifier": verifier,
        },
        timeout=30,
    )


def test_console_signs_in_with_authorization_code_and_pkce(
    kc_app, keycloak, make_account, demo_groups
):
    username, user_id = make_account("village-admin", groups=("/villages/liulin",))
    # Without a code challenge the console client is turned away before any login form.
    refused = console_sign_in(keycloak, username, challenge=None)
    assert "code=" not in refused.headers.get("Location", "")
    assert "code_challenge" in unquote(refused.headers.get("Location", "") + refused.text)

    verifier, challenge = pkce_pair()
    exchange = {
        "grant_type": "authorization_code",
        "client_id": "villagelink-console",
        "redirect_uri": CONSOLE_REDIRECT,
    }
    # A code is worth nothing without the verifier it was challenged for.
    code = redirected_code(console_sign_in(keycloak, username, challenge))
    wrong = requests.post(
        token_endpoint(keycloak),
        data={**exchange, "code": code, "code_verifier": secrets.token_urlsafe(48)},
        timeout=30,
    )
    assert wrong.status_code == 400, wrong.text
    code = redirected_code(console_sign_in(keycloak, username, challenge))
    answer = requests.post(
        token_endpoint(keycloak),
        data={**exchange, "code": code, "code_verifier": verifier},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    status, body = graphql(kc_app, answer.json()["access_token"], ME)
    assert status == 200, body
    assert body["data"]["me"]["subject"] == user_id
    assert body["data"]["me"]["clientId"] == "villagelink-console"
    # The console keeps its session by refresh token, as against the development issuer.
    renewed = requests.post(
        token_endpoint(keycloak),
        data={
            "grant_type": "refresh_token",
            "client_id": "villagelink-console",
            "refresh_token": answer.json()["refresh_token"],
        },
        timeout=30,
    )
    assert renewed.status_code == 200, renewed.text
    # Only the console's own pages may receive its codes.
    outside = requests.get(
        f"{keycloak.url}/realms/{keycloak.realm}/protocol/openid-connect/auth",
        params={
            "client_id": "villagelink-console",
            "response_type": "code",
            "redirect_uri": "http://127.0.0.1:8000/graphql",
            "scope": "openid",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        allow_redirects=False,
        timeout=30,
    )
    assert outside.status_code == 400, outside.status_code


MY_ACCOUNT = """{ me { roles clientId residentAccountState
  resident { id village name phone } } }"""
REQUEST_ACCOUNT = """mutation($input: RequestResidentAccountInput!) {
  requestResidentAccount(input: $input) { state userErrors { field code } } }"""
PENDING_ACCOUNTS = """query($slug: String!) { village(slug: $slug) {
  residentAccounts(first: 10, state: PENDING) {
    edges { node { id account resident { id } } } } } }"""
APPROVE = """mutation($input: ApproveResidentAccountInput!) {
  approveResidentAccount(input: $input) {
    residentAccount { state source } userErrors { field code } } }"""


def test_resident_signs_in_to_the_residents_app_and_is_bound_by_the_village_admin(
    kc_app, keycloak, db, make_account, demo_groups, fresh_village
):
    slug = fresh_village.slug
    r = m.residents
    with db.tenant(slug) as conn:
        person = conn.execute(
            select(r.c.id, r.c.name, r.c.id_number, r.c.phone)
            .where(r.c.phone.is_not(None))
            .order_by(r.c.id)
            .limit(1)
        ).one()
    username, user_id = make_account("resident", groups=(f"/villages/{slug}",))
    answer = code_grant(keycloak, username, RESIDENTS_CLIENT, RESIDENTS_REDIRECT)
    assert answer.status_code == 200, answer.text
    resident = answer.json()["access_token"]
    _, body = graphql(kc_app, resident, MY_ACCOUNT)
    assert body["data"]["me"] == {
        "roles": ["resident"],
        "clientId": RESIDENTS_CLIENT,
        "residentAccountState": None,
        "resident": None,
    }

    asked = {"village": slug, "idNumber": person.id_number, "phone": person.phone}
    _, body = graphql(kc_app, resident, REQUEST_ACCOUNT, {"input": asked})
    assert body["data"]["requestResidentAccount"] == {"state": "PENDING", "userErrors": []}
    _, body = graphql(kc_app, resident, MY_ACCOUNT)
    assert body["data"]["me"]["residentAccountState"] == "PENDING"
    assert body["data"]["me"]["resident"] is None

    admin_name, _ = make_account("village-admin", groups=(f"/villages/{slug}",))
    admin = password_token(keycloak, admin_name)
    _, body = graphql(kc_app, admin, PENDING_ACCOUNTS, {"slug": slug})
    [pending] = [e["node"] for e in body["data"]["village"]["residentAccounts"]["edges"]]
    record = encode_id("Resident", slug, person.id)
    assert (pending["account"], pending["resident"]) == (user_id, {"id": record})
    approve = {"input": {"id": pending["id"], "verification": "视频核验"}}
    # The resident cannot approve their own request.
    _, body = graphql(kc_app, resident, APPROVE, approve)
    assert first_code(body) == "FORBIDDEN"
    _, body = graphql(kc_app, admin, APPROVE, approve)
    assert body["data"]["approveResidentAccount"] == {
        "residentAccount": {"state": "BOUND", "source": "REQUEST"},
        "userErrors": [],
    }

    _, body = graphql(kc_app, resident, MY_ACCOUNT)
    assert body["data"]["me"]["residentAccountState"] == "BOUND"
    assert body["data"]["me"]["resident"] == {
        "id": record,
        "village": slug,
        "name": person.name,
        "phone": person.phone,
    }
    # Bound, the resident still reads no village's residents: their own, nor another's.
    _, body = graphql(kc_app, resident, RESIDENTS, {"slug": slug})
    assert first_code(body) == "FORBIDDEN"
    _, body = graphql(kc_app, resident, RESIDENTS, {"slug": "liulin"})
    assert first_code(body) == "NOT_FOUND"

    # Unlike the development issuer's login page, the realm does not keep residents out of
    # the console client: Keycloak signs them in there too. What holds is the API: a console
    # token of a resident reaches what the resident's own does, no staff data.
    console = code_grant(keycloak, username, CONSOLE_CLIENT, CONSOLE_REDIRECT)
    assert console.status_code == 200, console.text
    console_token = console.json()["access_token"]
    _, body = graphql(kc_app, console_token, MY_ACCOUNT)
    assert body["data"]["me"]["roles"] == ["resident"]
    assert body["data"]["me"]["clientId"] == CONSOLE_CLIENT
    assert body["data"]["me"]["resident"]["id"] == record
    _, body = graphql(kc_app, console_token, RESIDENTS, {"slug": slug})
    assert first_code(body) == "FORBIDDEN"
    _, body = graphql(kc_app, console_token, PENDING_ACCOUNTS, {"slug": slug})
    assert first_code(body) == "FORBIDDEN"


def test_realm_names_the_gateways_public_url():
    document = json.loads(realm_document("https://village.example.org"))
    console = next(c for c in document["clients"] if c["clientId"] == "villagelink-console")
    assert "https://village.example.org/console/*" in console["redirectUris"]
    assert console["rootUrl"] == "https://village.example.org"
    assert "127.0.0.1:8000" not in json.dumps(document)


# -- disabling a village ---------------------------------------------------------------------


def test_disabling_a_village_disables_its_accounts_and_its_data(
    kc_app, kc_settings, keycloak, db, master, make_account, demo_groups, fresh_village
):
    slug = fresh_village.slug
    group = f"/villages/{slug}"
    admin_name, admin_id = make_account("village-admin", groups=(group,))
    # Also village-admin of liulin, which stays active: this account keeps working.
    both_name, both_id = make_account("village-admin", groups=(group, "/villages/liulin"))
    coordinator_name, _ = make_account("regional-coordinator", groups=(group,))
    admin = password_token(keycloak, admin_name)
    _, body = graphql(kc_app, admin, RESIDENTS, {"slug": slug})
    assert body["data"]["village"]["residents"]["totalCount"] > 0

    try:
        assert disable_village(kc_settings, db, slug) == [admin_id]
        assert disable_village(kc_settings, db, slug) == []  # idempotent
        refused = password_grant(keycloak, admin_name)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        assert master.get_group_by_path(group)["attributes"]["disabled"] == ["true"]
        # A token issued before is still well signed; the gateway no longer serves the village.
        _, body = graphql(kc_app, admin, RESIDENTS, {"slug": slug})
        assert first_code(body) == "NOT_FOUND"
        _, body = graphql(kc_app, admin, VILLAGES)
        assert slugs(body) == set()
        both = password_token(keycloak, both_name)
        _, body = graphql(kc_app, both, VILLAGES)
        assert slugs(body) == {"liulin"}
        password_token(keycloak, coordinator_name)  # a coordinator's reach is the region
        with pytest.raises(KeycloakProvisioningError, match="disabled"):
            RealmAdmin(kc_settings).invite_user(slug, "grid-worker", "late@example.org")
    finally:
        assert enable_village(kc_settings, db, slug) == [admin_id]
    assert enable_village(kc_settings, db, slug) == []
    assert master.get_user(admin_id)["enabled"] and master.get_user(both_id)["enabled"]
    assert "disabled" not in (master.get_group_by_path(group).get("attributes") or {})
    admin = password_token(keycloak, admin_name)
    _, body = graphql(kc_app, admin, RESIDENTS, {"slug": slug})
    assert body["data"]["village"]["residents"]["totalCount"] > 0


CREATE_VILLAGE = """mutation($input: CreateVillageInput!) { createVillage(input: $input) {
  village { slug status } userErrors { field code } } }"""
DISABLE_VILLAGE = """mutation($input: VillageStatusInput!) { disableVillage(input: $input) {
  village { status } userErrors { code } } }"""
ENABLE_VILLAGE = """mutation($input: VillageStatusInput!) { enableVillage(input: $input) {
  village { status } userErrors { code } } }"""


def test_villages_kept_through_graphql_provision_the_realm_as_the_cli_does(
    kc_app, keycloak, db, master, realm, make_account, platform_admin
):
    slug = f"kg_{uuid.uuid4().hex[:8]}"
    create = {"slug": slug, "name": "接口村", "region": TEST_REGION}
    try:
        _, body = graphql(kc_app, platform_admin(), CREATE_VILLAGE, {"input": create})
        assert body["data"]["createVillage"] == {
            "village": {"slug": slug, "status": "active"},
            "userErrors": [],
        }
        attributes = master.get_group_by_path(f"/villages/{slug}")["attributes"]
        assert attributes["region"] == [TEST_REGION] and attributes["villageName"] == ["接口村"]
        admin_name, admin_id = make_account("village-admin", groups=(f"/villages/{slug}",))
        password_token(keycloak, admin_name)

        _, body = graphql(kc_app, platform_admin(), DISABLE_VILLAGE, {"input": {"slug": slug}})
        assert body["data"]["disableVillage"]["village"] == {"status": "disabled"}
        assert not master.get_user(admin_id)["enabled"]
        assert password_grant(keycloak, admin_name).status_code == 400

        _, body = graphql(kc_app, platform_admin(), ENABLE_VILLAGE, {"input": {"slug": slug}})
        assert body["data"]["enableVillage"]["village"] == {"status": "active"}
        assert master.get_user(admin_id)["enabled"]
        password_token(keycloak, admin_name)
        # The same village again converges, group included; another name is refused.
        _, body = graphql(kc_app, platform_admin(), CREATE_VILLAGE, {"input": create})
        assert body["data"]["createVillage"]["userErrors"] == []
        renamed = {**create, "name": "改名村"}
        _, body = graphql(kc_app, platform_admin(), CREATE_VILLAGE, {"input": renamed})
        assert body["data"]["createVillage"]["userErrors"] == [
            {"field": "slug", "code": "DUPLICATE"}
        ]
    finally:
        realm.remove_village_group(slug)
        provisioning.drop_village(db, slug)


def test_enabling_a_village_leaves_accounts_locked_for_other_reasons(
    kc_settings, db, master, make_account, fresh_village
):
    slug = fresh_village.slug
    _, locked_id = make_account("village-admin", groups=(f"/villages/{slug}",))
    master.update_user(locked_id, {"enabled": False})
    assert disable_village(kc_settings, db, slug) == []
    assert enable_village(kc_settings, db, slug) == []
    assert not master.get_user(locked_id)["enabled"]


# -- key rotation (last: it replaces the realm's signing key) ---------------------------------


def _rsa_signing_keys(master) -> list[dict]:
    return [
        k
        for k in master.get_keys()["keys"]
        if k.get("algorithm") == "RS256" and k.get("use", "SIG") == "SIG"
    ]


def test_key_rotation_needs_no_restart_and_removed_keys_stop_working(
    kc_settings, db, keycloak, master, demo_groups
):
    # One app trusts its keys for an hour: only an unknown kid makes it fetch the JWKS.
    # The other refetches every 2 s: a removed key stops verifying soon after.
    patient = create_app(replace(kc_settings, jwks_cache_seconds=3600))
    eager = create_app(kc_settings)
    old_token = integrator_token(keycloak)
    for app in (patient, eager):
        status, body = graphql(app, old_token, VILLAGES)
        assert status == 200, body
    old_keys = _rsa_signing_keys(master)
    assert jwt.get_unverified_header(old_token)["kid"] in {k["kid"] for k in old_keys}
    # The verifier fetches at most once per min_refresh_interval, however many kids it sees.
    source = runtime_of(patient).verifier.key_source
    time.sleep(source.min_refresh_interval + 0.5)

    realm_id = master.get_realm(keycloak.realm)["id"]
    master.create_component(
        {
            "name": unique("rsa-rotated"),
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm_id,
            "config": {
                "priority": [str(max(k["providerPriority"] for k in old_keys) + 100)],
                "enabled": ["true"],
                "active": ["true"],
                "algorithm": ["RS256"],
                "keySize": ["2048"],
            },
        }
    )
    new_token = integrator_token(keycloak)
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert new_kid not in {k["kid"] for k in old_keys}
    status, body = graphql(patient, new_token, VILLAGES)
    assert status == 200, body
    assert slugs(body) == set(DEMO_CLIENT_VILLAGES)
    status, _ = graphql(patient, old_token, VILLAGES)  # the old key is still published
    assert status == 200

    for key in old_keys:
        master.delete_component(key["providerId"])
    assert {k["kid"] for k in _rsa_signing_keys(master)} == {new_kid}
    # The eager app refuses the old token once its cache has expired (2 s); allow slack.
    deadline = time.monotonic() + 30
    while graphql(eager, old_token, VILLAGES)[0] == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    status, body = graphql(eager, old_token, VILLAGES)
    assert status == 401
    assert first_code(body) == "UNAUTHENTICATED"
    status, body = graphql(eager, new_token, VILLAGES)
    assert status == 200, body
    for app in (patient, eager):
        runtime_of(app).db.dispose()


# -- staff logins and API clients through the account directory --------------------------------

STAFF_OUT = "gridStaff { id accountUsername disabledAt } userErrors { field code }"
ADD_STAFF = f"""mutation($input: AddGridStaffInput!) {{ addGridStaff(input: $input) {{
  {STAFF_OUT} }} }}"""
INVITE_STAFF = f"""mutation($input: InviteGridStaffInput!) {{ inviteGridStaff(input: $input) {{
  {STAFF_OUT} login {{ username temporaryPassword }} }} }}"""
DISABLE_STAFF = f"""mutation($input: DisableGridStaffInput!) {{ disableGridStaff(input: $input) {{
  {STAFF_OUT} }} }}"""
ENABLE_STAFF = f"""mutation($input: EnableGridStaffInput!) {{ enableGridStaff(input: $input) {{
  {STAFF_OUT} }} }}"""
CLIENT_OUT = "apiClient { clientId villages enabled lastUsedAt } userErrors { field code }"
REGISTER_CLIENT = f"""mutation($input: RegisterApiClientInput!) {{
  registerApiClient(input: $input) {{ {CLIENT_OUT} clientSecret }} }}"""
ROTATE_CLIENT = f"""mutation($input: ApiClientInput!) {{
  rotateApiClientSecret(input: $input) {{ {CLIENT_OUT} clientSecret }} }}"""
DISABLE_CLIENT = f"""mutation($input: ApiClientInput!) {{
  disableApiClient(input: $input) {{ {CLIENT_OUT} }} }}"""
GRANT_CLIENT = f"""mutation($input: ApiClientVillageInput!) {{
  grantApiClientVillage(input: $input) {{ {CLIENT_OUT} }} }}"""
MICRO_GRIDS = """query($slug: String!) { village(slug: $slug) {
  grids(first: 100) { edges { node { id level } } } } }"""


def client_credentials(keycloak, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        token_endpoint(keycloak),
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=30,
    )


def test_staff_invited_disabled_and_enabled_in_keycloak(
    kc_app, keycloak, master, db, make_account, gridded_village
):
    slug = gridded_village.slug
    admin_name, _ = make_account("village-admin", groups=(f"/villages/{slug}",))
    admin = password_token(keycloak, admin_name)
    _, grids = graphql(kc_app, admin, MICRO_GRIDS, {"slug": slug})
    micro = next(
        e["node"]["id"]
        for e in grids["data"]["village"]["grids"]["edges"]
        if e["node"]["level"].lower() == "micro"
    )
    _, body = graphql(
        kc_app,
        admin,
        ADD_STAFF,
        {"input": {"village": slug, "name": "周新", "tier": "MICRO_GRID_WORKER", "grids": [micro]}},
    )
    staff = body["data"]["addGridStaff"]["gridStaff"]
    email = f"{unique('staff')}@example.org"

    # A grid worker of the village may not invite anybody.
    worker_name, _ = make_account("grid-worker", groups=(f"/villages/{slug}",))
    _, body = graphql(
        kc_app,
        password_token(keycloak, worker_name),
        INVITE_STAFF,
        {"input": {"id": staff["id"], "email": email}},
    )
    assert first_code(body) == "FORBIDDEN"
    # An address that already has an account is somebody's: refused, that account untouched.
    _, body = graphql(
        kc_app,
        admin,
        INVITE_STAFF,
        {"input": {"id": staff["id"], "email": f"{worker_name}@example.org"}},
    )
    assert body["data"]["inviteGridStaff"]["userErrors"][0]["code"] == "DUPLICATE"
    password_token(keycloak, worker_name)

    _, body = graphql(kc_app, admin, INVITE_STAFF, {"input": {"id": staff["id"], "email": email}})
    invited = body["data"]["inviteGridStaff"]
    assert invited["userErrors"] == [] and invited["gridStaff"]["accountUsername"] == email
    password = invited["login"]["temporaryPassword"]
    user_id = master.get_user_id(email)
    assert {g["path"] for g in master.get_user_groups(user_id)} == {f"/villages/{slug}"}
    assert "grid-worker" in {r["name"] for r in master.get_realm_roles_of_user(user_id)}
    with db.tenant(slug) as conn:
        linked = conn.execute(
            select(m.grid_staff.c.account_sub).where(m.grid_staff.c.account_username == email)
        ).scalar_one()
    assert linked == user_id
    # The password is right but temporary: Keycloak wants it changed before any token.
    answer = password_grant(keycloak, email, password)
    assert answer.status_code == 400 and "not fully set up" in answer.text
    assert password_grant(keycloak, email, "wrong").json()["error_description"] == (
        "Invalid user credentials"
    )
    # Once the person has set a password of their own (here through the realm's admin, as
    # the login page would), the login reaches the staff member's grids.
    password = PASSWORD
    master.set_user_password(user_id, password, temporary=False)
    master.update_user(user_id, {"requiredActions": []})
    answer = password_grant(keycloak, email, password)
    assert answer.status_code == 200, answer.text
    _, mine = graphql(kc_app, answer.json()["access_token"], RESIDENTS, {"slug": slug})
    _, all_of = graphql(kc_app, admin, RESIDENTS, {"slug": slug})
    seen = mine["data"]["village"]["residents"]["totalCount"]
    assert 0 < seen < all_of["data"]["village"]["residents"]["totalCount"]

    _, body = graphql(
        kc_app, admin, DISABLE_STAFF, {"input": {"id": staff["id"], "reason": "调离"}}
    )
    assert body["data"]["disableGridStaff"]["gridStaff"]["disabledAt"] is not None
    assert master.get_user(user_id)["enabled"] is False
    assert password_grant(keycloak, email, password).status_code != 200
    _, body = graphql(kc_app, admin, ENABLE_STAFF, {"input": {"id": staff["id"]}})
    assert body["data"]["enableGridStaff"]["userErrors"] == []
    assert master.get_user(user_id)["enabled"] is True
    master.delete_user(user_id)


def test_api_client_registered_rotated_and_disabled_in_keycloak(
    kc_app, keycloak, master, make_account, platform_admin, fresh_village
):
    slug = fresh_village.slug
    admin = platform_admin()
    village_admin_name, _ = make_account("village-admin", groups=(f"/villages/{slug}",))
    village_admin = password_token(keycloak, village_admin_name)
    client_id = unique("it-client")
    registration = {
        "input": {"clientId": client_id, "name": "某平台", "scopes": ["RESIDENTS_READ"]}
    }
    _, body = graphql(kc_app, village_admin, REGISTER_CLIENT, registration)
    assert first_code(body) == "FORBIDDEN"
    _, body = graphql(kc_app, admin, REGISTER_CLIENT, registration)
    registered = body["data"]["registerApiClient"]
    assert registered["userErrors"] == [], body
    secret = registered["clientSecret"]
    internal = master.get_client_id(client_id)
    made = master.get_client(internal)
    assert made["serviceAccountsEnabled"] and not made["publicClient"]
    assert not made["standardFlowEnabled"] and not made["directAccessGrantsEnabled"]
    account = master.get_client_service_account_user(internal)
    assert "integrator" in {r["name"] for r in master.get_realm_roles_of_user(account["id"])}

    answer = client_credentials(keycloak, client_id, secret)
    assert answer.status_code == 200, answer.text
    token_ = answer.json()["access_token"]
    claims = jwt.decode(token_, options={"verify_signature": False})
    assert "villagelink-api" in claims["aud"] and claims["azp"] == client_id
    _, body = graphql(kc_app, token_, RESIDENTS, {"slug": slug})
    assert first_code(body) == "NOT_FOUND"  # the village has not consented yet
    consent = {"input": {"clientId": client_id, "village": slug}}
    _, body = graphql(kc_app, village_admin, GRANT_CLIENT, consent)
    assert body["data"]["grantApiClientVillage"]["apiClient"]["villages"] == [slug]
    _, body = graphql(kc_app, token_, RESIDENTS, {"slug": slug})
    assert body["data"]["village"]["residents"]["totalCount"] > 0
    _, body = graphql(kc_app, admin, "{ apiClients { clientId lastUsedAt } }")
    used = {c["clientId"]: c["lastUsedAt"] for c in body["data"]["apiClients"]}
    assert used[client_id] is not None

    _, body = graphql(kc_app, admin, ROTATE_CLIENT, {"input": {"clientId": client_id}})
    rotated = body["data"]["rotateApiClientSecret"]["clientSecret"]
    assert rotated != secret
    assert client_credentials(keycloak, client_id, secret).status_code == 401
    assert client_credentials(keycloak, client_id, rotated).status_code == 200

    _, body = graphql(kc_app, admin, DISABLE_CLIENT, {"input": {"clientId": client_id}})
    assert body["data"]["disableApiClient"]["apiClient"]["enabled"] is False
    assert master.get_client(internal)["enabled"] is False
    assert client_credentials(keycloak, client_id, rotated).status_code != 200
    _, body = graphql(kc_app, token_, RESIDENTS, {"slug": slug})
    assert first_code(body) == "NOT_FOUND"
    master.delete_client(internal)


# -- the console in a real browser -------------------------------------------------------------


@pytest.fixture(scope="module")
def keycloak_stack(
    keycloak: KeycloakServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """`villagelink run` against the session's Keycloak, whose console client is told the
    stack's address (the realm was imported for another one)."""
    build_console()
    ports = free_ports()
    url = stack_url(ports)
    master = realm_admin(keycloak)
    console = master.get_client_id("villagelink-console")
    client = master.get_client(console)
    client["redirectUris"].append(f"{url}/console/*")
    client["attributes"]["post.logout.redirect.uris"] += f"##{url}/*"
    master.update_client(console, client)
    yield from start_stack(
        tmp_path_factory.mktemp("keycloak-stack-var"),
        ports,
        KEYCLOAK_URL=keycloak.url,
        KEYCLOAK_ADMIN_CLIENT_SECRET=SECRETS["villagelink-provisioner"],
    )


@pytest.fixture
def kc_desktop(browser: Browser, keycloak_stack: Stack) -> Iterator[Page]:
    """A desktop page on the Keycloak-backed stack (not the session's)."""
    with opened(browser, keycloak_stack, phone=False) as page:
        yield page


@pytest.mark.browser
@pytest.mark.timeout(900)  # Keycloak's, the console's build and the stack's start
def test_village_admin_signs_in_to_the_console_through_the_keycloak_login_page(
    keycloak: KeycloakServer, keycloak_stack: Stack, kc_desktop: Page
):
    """A real browser on the real Keycloak login page (one test: its stack of its own costs
    a minute) lands on the console's 工作台."""
    desktop = kc_desktop
    # The stack made the demo villages' groups in the realm as it started.
    username = f"kc-browser-{uuid.uuid4().hex[:8]}"
    master = realm_admin(keycloak)
    user_id = create_account(master, username, ("village-admin",), ("/villages/xinghua",))
    try:
        desktop.goto(keycloak_stack.console)
        # A Keycloak just started answers its first discovery and login requests slowly.
        desktop.wait_for_url(
            re.compile(re.escape(keycloak.url) + r"/realms/villagelink/"), timeout=60_000
        )
        # The realm's pages are Chinese first, like everything else a village admin reads.
        expect(desktop.get_by_role("heading", name="登录到您的账户")).to_be_visible()
        shot(desktop, "keycloak-login")
        desktop.locator("#username").fill(username)
        desktop.locator("#password").fill(PASSWORD)
        desktop.locator("#kc-login").click()
        desktop.wait_for_url(re.compile(re.escape(keycloak_stack.url) + r"/console/admin/"))
        expect(desktop.get_by_role("heading", name="杏花村 · 工作台")).to_be_visible()
        # Named as a Chinese name is written: family name (林), then given name (建).
        expect(desktop.get_by_role("button", name="林建", exact=True)).to_be_visible()
        expect(desktop.locator(".el-loading-mask")).to_have_count(0)
        check_accessible(desktop)  # also lets the tags' entrance animations finish
        shot(desktop, "keycloak-admin-dashboard")
    finally:
        master.delete_user(user_id)
