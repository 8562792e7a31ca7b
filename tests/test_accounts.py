"""Staff and their logins, API clients: with the development issuer's account directory.

The same mutations run against a real Keycloak in tests/test_keycloak.py; here the directory
is the development issuer's tables (what `make run` uses), and logins are proved by its
token endpoint.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from villagelink.platform import models as pm
from villagelink.platform.cli import main as cli
from villagelink.platform.identity.accounts import (
    DevDirectory,
    DirectoryUnavailable,
    account_directory,
)
from villagelink.tenants.demo.plans import DEMO_VILLAGES
from villagelink.tenants.demo.residents import build_village, write_village

from .conftest import new_village

# Enum values of GridStaffTier, in one place.
CHIEF, MICRO = "GRID_CHIEF", "MICRO_GRID_WORKER"
TOKEN_PATH = "/dev-issuer/realms/villagelink/protocol/openid-connect/token"

STAFF_FIELDS = "id name tier accountUsername disabledAt grids { id code }"
ADD = f"""mutation($input: AddGridStaffInput!) {{ addGridStaff(input: $input) {{
  gridStaff {{ {STAFF_FIELDS} }} userErrors {{ field message code }} }} }}"""
UPDATE = f"""mutation($input: UpdateGridStaffInput!) {{ updateGridStaff(input: $input) {{
  gridStaff {{ {STAFF_FIELDS} }} userErrors {{ field message code }} }} }}"""
ASSIGN = f"""mutation($input: AssignGridStaffInput!) {{ assignGridStaff(input: $input) {{
  gridStaff {{ {STAFF_FIELDS} }} userErrors {{ field message code }} }} }}"""
INVITE = f"""mutation($input: InviteGridStaffInput!) {{ inviteGridStaff(input: $input) {{
  gridStaff {{ {STAFF_FIELDS} }} login {{ username temporaryPassword }}
  userErrors {{ field message code }} }} }}"""
DISABLE = f"""mutation($input: DisableGridStaffInput!) {{ disableGridStaff(input: $input) {{
  gridStaff {{ {STAFF_FIELDS} }} userErrors {{ field message code }} }} }}"""
ENABLE = f"""mutation($input: EnableGridStaffInput!) {{ enableGridStaff(input: $input) {{
  gridStaff {{ {STAFF_FIELDS} }} userErrors {{ field message code }} }} }}"""
STAFF_LIST = f"""query($slug: String!, $first: Int, $all: Boolean) {{ village(slug: $slug) {{
  staff(first: $first, includeDisabled: $all) {{ totalCount edges {{ node {{ {STAFF_FIELDS} }} }} }}
}} }}"""
GRIDS = """query($slug: String!) { village(slug: $slug) {
  grids(first: 100) { edges { node { id level code } } } } }"""
MY_STAFF = """query($slug: String!) { village(slug: $slug) { myStaff { id name } } }"""
RESIDENTS = """query($slug: String!) { village(slug: $slug) { residents(first: 100) {
  totalCount } } }"""

SCHEDULE = """mutation($input: ScheduleDutyShiftInput!) { scheduleDutyShift(input: $input) {
  dutyShift { id } userErrors { field code } } }"""
SHIFTS = """query($slug: String!, $staff: ID) { village(slug: $slug) {
  dutyShifts(staff: $staff) { totalCount } } }"""
SHIFT = ("2099-01-01T08:00:00+08:00", "2099-01-01T20:00:00+08:00")

CLIENT_FIELDS = "clientId name scopes villages enabled lastUsedAt"
REGISTER = f"""mutation($input: RegisterApiClientInput!) {{ registerApiClient(input: $input) {{
  apiClient {{ {CLIENT_FIELDS} }} clientSecret userErrors {{ field message code }} }} }}"""
ROTATE = f"""mutation($input: ApiClientInput!) {{ rotateApiClientSecret(input: $input) {{
  apiClient {{ {CLIENT_FIELDS} }} clientSecret userErrors {{ field message code }} }} }}"""
SWITCH = """mutation($input: ApiClientInput!) {{ {name}(input: $input) {{
  apiClient {{ clientId enabled }} userErrors {{ field message code }} }} }}"""
CONSENT = """mutation($input: ApiClientVillageInput!) {{ {name}(input: $input) {{
  apiClient {{ clientId villages }} userErrors {{ field message code }} }} }}"""
CLIENTS = f"{{ apiClients {{ {CLIENT_FIELDS} }} }}"


def data(body: dict, field: str) -> dict:
    assert "errors" not in body, body
    return body["data"][field]


def first_error_code(body: dict) -> str:
    return body["errors"][0]["extensions"]["code"]


def grids_of_level(gql, admin: str, slug: str, level: str) -> list[dict]:
    _, body = gql(GRIDS, admin, {"slug": slug})
    edges = body["data"]["village"]["grids"]["edges"]
    return [e["node"] for e in edges if e["node"]["level"].lower() == level]


def password_grant(client, username: str, password: str):
    return client.post(
        TOKEN_PATH,
        data={"grant_type": "password", "username": username, "password": password},
    )


def client_grant(client, client_id: str, secret: str):
    return client.post(
        TOKEN_PATH,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )


def audit_rows(db, action: str, subject_id: str, village: str | None = None) -> list[dict]:
    """The audit entries of one action on one record; a village's record keys are its
    own, so staff entries are looked up in their village (other tests' villages have
    staff of the same key)."""
    a = pm.audit_log
    where = [a.c.action == action, a.c.subject_id == subject_id]
    if village is not None:
        where.append(a.c.village == village)
    with db.platform() as conn:
        rows = conn.execute(select(a).where(*where)).mappings()
        return [dict(r) for r in rows]


def unique_email() -> str:
    return f"staff-{uuid.uuid4().hex[:8]}@example.org"


@pytest.fixture(scope="module")
def gridded_village(db):
    """A village of its own with several micro-grids, so that a grid worker sees only part."""
    village = new_village(db, "网格村")
    slug = village.slug
    plan = replace(DEMO_VILLAGES[0], slug=slug, name="网格村", residents=600)
    with db.tenant(slug) as conn:
        write_village(conn, build_village(plan, seed=7))
    return village


@pytest.fixture
def admin_of(token, gridded_village):
    return token("village-admin", village=gridded_village.slug)


# -- staff --------------------------------------------------------------------------------


def test_a_village_admin_keeps_staff_and_their_logins(gql, client, db, admin_of, gridded_village):
    slug = gridded_village.slug
    micros = grids_of_level(gql, admin_of, slug, "micro")
    _, body = gql(
        ADD,
        admin_of,
        {
            "input": {
                "village": slug,
                "name": "李新",
                "phone": "13800001111",
                "tier": MICRO,
                "grids": [micros[0]["id"]],
            }
        },
    )
    added = data(body, "addGridStaff")
    assert added["userErrors"] == []
    staff = added["gridStaff"]
    assert [g["id"] for g in staff["grids"]] == [micros[0]["id"]]

    # Micro-grid workers look after micro-grids only: refused in Chinese, nothing changed.
    community = grids_of_level(gql, admin_of, slug, "community")[0]
    _, body = gql(ASSIGN, admin_of, {"input": {"id": staff["id"], "grids": [community["id"]]}})
    refused = data(body, "assignGridStaff")
    assert refused["userErrors"][0]["code"] == "INVALID"
    assert "微网格员" in refused["userErrors"][0]["message"]
    _, body = gql(ASSIGN, admin_of, {"input": {"id": staff["id"], "grids": [micros[1]["id"]]}})
    assert [g["id"] for g in data(body, "assignGridStaff")["gridStaff"]["grids"]] == [
        micros[1]["id"]
    ]
    # A tier that does not suit the grids assigned is refused on `tier`.
    _, body = gql(UPDATE, admin_of, {"input": {"id": staff["id"], "tier": CHIEF}})
    assert data(body, "updateGridStaff")["userErrors"][0]["field"] == "tier"
    _, body = gql(UPDATE, admin_of, {"input": {"id": staff["id"], "name": "李新华"}})
    assert data(body, "updateGridStaff")["gridStaff"]["name"] == "李新华"

    # The invitation: a login with a temporary password, shown once, stored nowhere.
    email = unique_email()
    _, body = gql(INVITE, admin_of, {"input": {"id": staff["id"], "email": email.upper()}})
    invited = data(body, "inviteGridStaff")
    assert invited["userErrors"] == []
    login = invited["login"]
    assert login["username"] == email
    assert invited["gridStaff"]["accountUsername"] == email
    password = login["temporaryPassword"]
    key = staff["id"]
    entries = audit_rows(db, "grid_staff.invite", _key(key), slug)
    assert len(entries) == 1 and password not in json.dumps(entries[0], default=str)
    with db.platform() as conn:
        stored = conn.execute(
            select(pm.dev_accounts).where(pm.dev_accounts.c.username == email)
        ).one()
    assert password not in stored.password_hash and stored.roles == ["grid-worker"]
    assert stored.villages == [slug]

    # The login works at the development issuer and reaches the staff member's grids only.
    answer = password_grant(client, email, password)
    assert answer.status_code == 200, answer.get_json()
    worker = answer.get_json()["access_token"]
    _, whole = gql(RESIDENTS, admin_of, {"slug": slug})
    _, own = gql(RESIDENTS, worker, {"slug": slug})
    seen = own["data"]["village"]["residents"]["totalCount"]
    assert 0 < seen < whole["data"]["village"]["residents"]["totalCount"]
    # The login finds its own staff record (the phone's duty days); the admin has none.
    _, mine = gql(MY_STAFF, worker, {"slug": slug})
    assert mine["data"]["village"]["myStaff"] == {"id": staff["id"], "name": "李新华"}
    _, mine = gql(MY_STAFF, admin_of, {"slug": slug})
    assert mine["data"]["village"]["myStaff"] is None
    assert password_grant(client, email, "wrong").status_code == 401
    as_client = {"grant_type": "password", "username": email, "password": password}
    answer = client.post(TOKEN_PATH, data={**as_client, "client_id": "demo-integrator"})
    assert answer.status_code == 401

    # The same email cannot be given to another staff member: it is somebody's account.
    _, body = gql(ADD, admin_of, {"input": {"village": slug, "name": "王五", "tier": MICRO}})
    other = data(body, "addGridStaff")["gridStaff"]
    _, body = gql(INVITE, admin_of, {"input": {"id": other["id"], "email": email}})
    assert [e["code"] for e in data(body, "inviteGridStaff")["userErrors"]] == ["DUPLICATE"], body
    # Inviting again re-issues the temporary password: the old one stops working.
    _, body = gql(INVITE, admin_of, {"input": {"id": staff["id"]}})
    again = data(body, "inviteGridStaff")["login"]
    assert again["username"] == email and again["temporaryPassword"] != password
    assert password_grant(client, email, password).status_code == 401
    assert password_grant(client, email, again["temporaryPassword"]).status_code == 200

    # Disabling: off the grids and the roster ahead, login refused; the list hides them
    # unless asked, and no new work (a shift, here) can be given to them.
    shift = {"village": slug, "staff": staff["id"], "startsAt": SHIFT[0], "endsAt": SHIFT[1]}
    _, body = gql(SCHEDULE, admin_of, {"input": shift})
    assert data(body, "scheduleDutyShift")["userErrors"] == []
    _, body = gql(DISABLE, admin_of, {"input": {"id": staff["id"], "reason": "调离"}})
    disabled = data(body, "disableGridStaff")["gridStaff"]
    assert disabled["disabledAt"] is not None and disabled["grids"] == []
    assert password_grant(client, email, again["temporaryPassword"]).status_code == 401
    _, body = gql(SHIFTS, admin_of, {"slug": slug, "staff": staff["id"]})
    assert body["data"]["village"]["dutyShifts"]["totalCount"] == 0
    _, body = gql(SCHEDULE, admin_of, {"input": shift})
    assert data(body, "scheduleDutyShift")["userErrors"][0]["code"] == "NOT_FOUND"
    _, body = gql(STAFF_LIST, admin_of, {"slug": slug, "first": 100, "all": False})
    listed = [e["node"]["id"] for e in body["data"]["village"]["staff"]["edges"]]
    assert staff["id"] not in listed
    _, body = gql(STAFF_LIST, admin_of, {"slug": slug, "first": 100, "all": True})
    assert staff["id"] in [e["node"]["id"] for e in body["data"]["village"]["staff"]["edges"]]
    _, body = gql(ASSIGN, admin_of, {"input": {"id": staff["id"], "grids": [micros[0]["id"]]}})
    assert data(body, "assignGridStaff")["userErrors"][0]["code"] == "INVALID_TRANSITION"
    _, body = gql(ENABLE, admin_of, {"input": {"id": staff["id"]}})
    assert data(body, "enableGridStaff")["gridStaff"]["disabledAt"] is None
    assert password_grant(client, email, again["temporaryPassword"]).status_code == 200
    for action in ("add", "assign", "update", "reissue_login", "disable", "enable"):
        assert audit_rows(db, f"grid_staff.{action}", _key(key), slug), action


def _key(global_id: str) -> str:
    """The record key inside a GridStaff ID, as the audit log names it."""
    raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    return raw.rsplit(":", 1)[1]


def test_staff_input_is_validated_in_chinese(gql, admin_of, gridded_village):
    slug = gridded_village.slug
    _, body = gql(
        ADD, admin_of, {"input": {"village": slug, "name": "", "phone": "123", "tier": MICRO}}
    )
    errors = {e["field"]: e for e in data(body, "addGridStaff")["userErrors"]}
    assert set(errors) == {"name", "phone"} and "手机" in errors["phone"]["message"]
    _, body = gql(ADD, admin_of, {"input": {"village": slug, "name": "赵六", "tier": MICRO}})
    staff = data(body, "addGridStaff")["gridStaff"]
    for email in (None, "not-an-address"):
        _, body = gql(INVITE, admin_of, {"input": {"id": staff["id"], "email": email}})
        refused = data(body, "inviteGridStaff")
        assert refused["login"] is None and refused["userErrors"][0]["field"] == "email"
    _, body = gql(DISABLE, admin_of, {"input": {"id": staff["id"], "reason": ""}})
    assert data(body, "disableGridStaff")["userErrors"][0]["field"] == "reason"
    _, body = gql(ENABLE, admin_of, {"input": {"id": staff["id"]}})
    assert data(body, "enableGridStaff")["userErrors"][0]["code"] == "INVALID_TRANSITION"
    # A grid of another village is not found, whatever it is.
    _, body = gql(ASSIGN, admin_of, {"input": {"id": staff["id"], "grids": ["R3JpZDpsaXVsaW46MQ"]}})
    assert data(body, "assignGridStaff")["userErrors"][0]["code"] == "NOT_FOUND"


def test_only_the_village_managers_change_staff(gql, token, admin_of, gridded_village):
    slug = gridded_village.slug
    _, body = gql(ADD, admin_of, {"input": {"village": slug, "name": "钱七", "tier": MICRO}})
    staff_id = data(body, "addGridStaff")["gridStaff"]["id"]
    platform_admin = token("platform-admin")
    _, body = gql(UPDATE, platform_admin, {"input": {"id": staff_id, "name": "钱七七"}})
    assert data(body, "updateGridStaff")["gridStaff"]["name"] == "钱七七"

    calls = [
        (ADD, {"village": slug, "name": "孙八", "tier": MICRO}),
        (UPDATE, {"id": staff_id, "name": "x"}),
        (ASSIGN, {"id": staff_id, "grids": []}),
        (INVITE, {"id": staff_id, "email": unique_email()}),
        (DISABLE, {"id": staff_id, "reason": "x"}),
        (ENABLE, {"id": staff_id}),
    ]
    refused = {
        "FORBIDDEN": [
            token("grid-worker", village=slug),
            token("regional-coordinator", region="testregion"),
        ],
        # Outside the caller's reach the village and its staff do not exist.
        "NOT_FOUND": [
            token("integrator"),
            token("village-admin", village="elsewhere"),
            token("regional-coordinator", region="other_region"),
        ],
    }
    for code, callers in refused.items():
        for caller in callers:
            for document, variables in calls:
                _, body = gql(document, caller, {"input": variables})
                assert body["data"] is None, body
                assert first_error_code(body) == code, (document, body)
    _, body = gql(STAFF_LIST, admin_of, {"slug": slug, "first": 100, "all": True})
    names = [e["node"]["name"] for e in body["data"]["village"]["staff"]["edges"]]
    assert "孙八" not in names and "钱七七" in names
    # The login's username is the managers' to see.
    _, body = gql(STAFF_LIST, token("grid-worker", village=slug), {"slug": slug, "first": 100})
    assert body["data"]["village"]["staff"]["totalCount"] > 0


# -- API clients ------------------------------------------------------------------------------


def test_api_client_lifecycle_through_graphql(gql, client, db, token, populated_village):
    slug = populated_village.slug
    platform_admin = token("platform-admin")
    admin = token("village-admin", village=slug)
    client_id = f"it-{uuid.uuid4().hex[:8]}"
    _, body = gql(
        REGISTER,
        platform_admin,
        {"input": {"clientId": client_id, "name": "某设备平台", "scopes": ["RESIDENTS_READ"]}},
    )
    registered = data(body, "registerApiClient")
    assert registered["userErrors"] == []
    assert registered["apiClient"]["scopes"] == ["RESIDENTS_READ"]
    assert (
        registered["apiClient"]["villages"] == [] and registered["apiClient"]["lastUsedAt"] is None
    )
    secret = registered["clientSecret"]
    _, body = gql(
        REGISTER,
        platform_admin,
        {"input": {"clientId": client_id, "name": "again", "scopes": []}},
    )
    assert data(body, "registerApiClient")["userErrors"][0]["code"] == "DUPLICATE"

    answer = client_grant(client, client_id, secret)
    assert answer.status_code == 200, answer.get_json()
    integrator = answer.get_json()["access_token"]
    _, body = gql("{ villages { slug } }", integrator)
    assert body["data"]["villages"] == []  # no village has consented yet

    # The village's consent: its admin only; a platform admin cannot give it.
    grant = CONSENT.format(name="grantApiClientVillage")
    _, body = gql(grant, platform_admin, {"input": {"clientId": client_id, "village": slug}})
    assert first_error_code(body) == "FORBIDDEN"
    _, body = gql(grant, admin, {"input": {"clientId": client_id, "village": slug}})
    assert data(body, "grantApiClientVillage")["apiClient"]["villages"] == [slug]
    _, body = gql(RESIDENTS, integrator, {"slug": slug})
    assert body["data"]["village"]["residents"]["totalCount"] > 0
    assert audit_rows(db, "api_client.grant", client_id)[0]["village"] == slug

    _, body = gql(CLIENTS, platform_admin)
    listed = {c["clientId"]: c for c in data(body, "apiClients")}
    assert listed[client_id]["lastUsedAt"] is not None

    # A new secret: the old one stops working.
    _, body = gql(ROTATE, platform_admin, {"input": {"clientId": client_id}})
    new_secret = data(body, "rotateApiClientSecret")["clientSecret"]
    assert new_secret != secret
    assert client_grant(client, client_id, secret).status_code == 401
    assert client_grant(client, client_id, new_secret).status_code == 200

    # Disabled: its tokens reach nothing and no new ones are given.
    _, body = gql(
        SWITCH.format(name="disableApiClient"), platform_admin, {"input": {"clientId": client_id}}
    )
    assert data(body, "disableApiClient")["apiClient"]["enabled"] is False
    _, body = gql("{ villages { slug } }", integrator)
    assert body["data"]["villages"] == []
    assert client_grant(client, client_id, new_secret).status_code == 401
    _, body = gql(
        SWITCH.format(name="enableApiClient"), platform_admin, {"input": {"clientId": client_id}}
    )
    assert data(body, "enableApiClient")["apiClient"]["enabled"] is True

    withdraw = CONSENT.format(name="withdrawApiClientVillage")
    _, body = gql(withdraw, admin, {"input": {"clientId": client_id, "village": slug}})
    assert data(body, "withdrawApiClientVillage")["apiClient"]["villages"] == []
    _, body = gql(withdraw, admin, {"input": {"clientId": client_id, "village": slug}})
    assert data(body, "withdrawApiClientVillage")["userErrors"][0]["code"] == "INVALID_TRANSITION"
    _, body = gql(RESIDENTS, integrator, {"slug": slug})
    assert first_error_code(body) == "NOT_FOUND"
    for action in ("register", "rotate_secret", "disable", "enable", "grant", "withdraw"):
        assert audit_rows(db, f"api_client.{action}", client_id), action


def test_only_platform_admins_manage_clients_and_villages_consent_for_themselves(
    gql, token, populated_village
):
    slug = populated_village.slug
    platform_admin = token("platform-admin")
    client_id = f"it-{uuid.uuid4().hex[:8]}"
    _, body = gql(
        REGISTER, platform_admin, {"input": {"clientId": client_id, "name": "甲", "scopes": []}}
    )
    assert data(body, "registerApiClient")["userErrors"] == []
    for bad in ("X", "ab", "1abc", "has space"):
        _, body = gql(
            REGISTER, platform_admin, {"input": {"clientId": bad, "name": "甲", "scopes": []}}
        )
        assert data(body, "registerApiClient")["userErrors"][0]["field"] == "clientId"

    others = [
        token("village-admin", village=slug),
        token("grid-worker", village=slug),
        token("integrator"),
        token("regional-coordinator", region="testregion"),
    ]
    for caller in others:
        for document, variables in [
            (REGISTER, {"clientId": f"x-{uuid.uuid4().hex[:6]}", "name": "乙", "scopes": []}),
            (ROTATE, {"clientId": client_id}),
            (SWITCH.format(name="disableApiClient"), {"clientId": client_id}),
            (SWITCH.format(name="enableApiClient"), {"clientId": client_id}),
        ]:
            _, body = gql(document, caller, {"input": variables})
            assert first_error_code(body) == "FORBIDDEN", body
    consent = {"clientId": client_id, "village": slug}
    for name in ("grantApiClientVillage", "withdrawApiClientVillage"):
        for caller, code in [
            (token("grid-worker", village=slug), "FORBIDDEN"),
            (token("integrator"), "NOT_FOUND"),
            (token("village-admin", village="elsewhere"), "NOT_FOUND"),
        ]:
            _, body = gql(CONSENT.format(name=name), caller, {"input": consent})
            assert first_error_code(body) == code, (name, body)
    _, body = gql(CLIENTS, token("grid-worker", village=slug))
    assert first_error_code(body) == "FORBIDDEN"
    _, body = gql(CLIENTS, token("village-admin", village=slug))
    assert client_id in [c["clientId"] for c in data(body, "apiClients")]
    # Unknown clients are NOT_FOUND userErrors, not failures.
    _, body = gql(ROTATE, platform_admin, {"input": {"clientId": "no-such-client"}})
    assert data(body, "rotateApiClientSecret")["userErrors"][0]["code"] == "NOT_FOUND"
    _, body = gql(ROTATE, platform_admin, {"input": {"clientId": "Not An Id"}})
    assert data(body, "rotateApiClientSecret")["userErrors"][0]["code"] == "INVALID"


def test_cli_shares_the_client_actions(settings, db, client, populated_village):
    runner = CliRunner()
    env = {
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "VILLAGELINK_VAR_DIR": str(settings.var_dir),
        "VILLAGELINK_ENV": "test",
    }
    client_id = f"cli-{uuid.uuid4().hex[:8]}"

    def run(*args: str):
        return runner.invoke(cli, ["clients", *args], env=env, catch_exceptions=False)

    result = run("register", client_id, "--name", "命令行", "--scope", "alerts:read")
    assert result.exit_code == 0, result.output
    secret = result.output.rsplit(": ", 1)[1].strip()
    assert client_grant(client, client_id, secret).status_code == 200
    assert run("grant", client_id, "--village", populated_village.slug).exit_code == 0
    refused = run("grant", client_id, "--village", populated_village.slug)
    assert refused.exit_code != 0 and "已获本村授权" in refused.output
    assert run("disable", client_id).exit_code == 0
    listed = run("list").output
    assert (
        f"{client_id}\t命令行\tdisabled\tscopes=alerts:read\tvillages={populated_village.slug}"
        in listed
    )
    assert client_grant(client, client_id, secret).status_code == 401
    assert audit_rows(db, "api_client.register", client_id)[0]["actor_sub"] == "system:cli"


def test_an_issuer_that_is_not_keycloak_has_no_directory(settings, db):
    """Accounts made here would not exist at an external issuer: the directory refuses."""
    external = replace(settings, oidc_issuer="https://sso.example.org/realms/x")
    with pytest.raises(DirectoryUnavailable):
        account_directory(external, db)
    assert isinstance(account_directory(settings, db), DevDirectory)
