"""The console against a real Keycloak: sign in on Keycloak's own login page, land on 工作台.

One test, with a stack of its own (`villagelink run` with KEYCLOAK_URL; the session's
development-issuer stack serves every other browser test)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from villagelink.platform.services import KeycloakServer

from ..keycloak_accounts import PASSWORD, create_account, realm_admin
from ..processes import free_ports
from .conftest import Stack, build_console, opened, shot, stack_url, start_stack

# Marked by hand: this file's pages come from its own stack, not `browser_stack`.
pytestmark = pytest.mark.browser

REALM_FILE = Path(__file__).parents[2] / "platform" / "identity" / "realm-villagelink.json"
PROVISIONER_SECRET = next(
    c["secret"]
    for c in json.loads(REALM_FILE.read_text())["clients"]
    if c["clientId"] == "villagelink-provisioner"
)


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
        KEYCLOAK_ADMIN_CLIENT_SECRET=PROVISIONER_SECRET,
    )


@pytest.fixture
def desktop(browser: Browser, keycloak_stack: Stack) -> Iterator[Page]:
    """A desktop page on the Keycloak-backed stack (not the session's)."""
    with opened(browser, keycloak_stack, phone=False) as page:
        yield page


def test_village_admin_signs_in_through_the_keycloak_login_page(
    keycloak: KeycloakServer, keycloak_stack: Stack, desktop: Page
):
    # The stack made the demo villages' groups in the realm as it started.
    username = f"kc-browser-{uuid.uuid4().hex[:8]}"
    master = realm_admin(keycloak)
    user_id = create_account(master, username, ("village-admin",), ("/villages/xinghua",))
    try:
        desktop.goto(keycloak_stack.console)
        desktop.wait_for_url(re.compile(re.escape(keycloak.url) + r"/realms/villagelink/"))
        shot(desktop, "keycloak-login")
        desktop.locator("#username").fill(username)
        desktop.locator("#password").fill(PASSWORD)
        desktop.locator("#kc-login").click()
        desktop.wait_for_url(re.compile(re.escape(keycloak_stack.url) + r"/console/admin/"))
        expect(desktop.get_by_role("heading", name="杏花村 · 工作台")).to_be_visible()
        expect(desktop.get_by_role("button", name=username)).to_be_visible()
        shot(desktop, "keycloak-admin-dashboard")
    finally:
        master.delete_user(user_id)
