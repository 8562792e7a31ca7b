"""Signing in to the console in a real browser: the development issuer's page, the landing
screen, and logout ending the session (its refresh token stops working)."""

from __future__ import annotations

import json
import re

import requests
from playwright.sync_api import Page, expect

from villagelink.tenants.demo.accounts import DEMO_PASSWORD

from .conftest import Stack, check_accessible, login, shot

ADMIN = "village-admin-xinghua"
TOKEN_PATH = "/dev-issuer/realms/villagelink/protocol/openid-connect/token"


def signed_in_user(page: Page) -> dict:
    """What oidc-client-ts keeps for the signed-in person (sessionStorage `oidc.user:*`)."""
    stored = page.evaluate(
        "() => Object.keys(sessionStorage).filter(k => k.startsWith('oidc.user:'))"
        ".map(k => sessionStorage.getItem(k))"
    )
    assert len(stored) == 1, stored
    return json.loads(stored[0])


def test_the_login_page_is_chinese_accessible_and_says_what_went_wrong(desktop: Page):
    desktop.goto("/console/")
    desktop.wait_for_url(re.compile(r"/dev-issuer/.*/protocol/openid-connect/auth"))
    expect(desktop.get_by_role("heading", name="登录 villagelink")).to_be_visible()
    check_accessible(desktop)
    shot(desktop, "dev-issuer-login")

    desktop.get_by_label("用户名").fill(ADMIN)
    desktop.get_by_label("密码").fill("not-the-password")
    desktop.get_by_role("button", name="登录").click()
    expect(desktop.get_by_role("alert")).to_have_text("用户名或密码错误，请重新输入。")
    expect(desktop.get_by_label("用户名")).to_have_value(ADMIN)
    check_accessible(desktop)
    shot(desktop, "dev-issuer-login-refused")


def test_village_admin_signs_in_to_the_workbench_and_logout_ends_the_session(
    desktop: Page, browser_stack: Stack
):
    login(desktop, ADMIN, DEMO_PASSWORD)
    expect(desktop).to_have_url(re.compile(r"/console/admin/dashboard"))
    expect(desktop.get_by_role("menuitem", name="工作台")).to_be_visible()
    expect(desktop.get_by_role("heading", name="杏花村 · 工作台")).to_be_visible()
    check_accessible(desktop)
    user = signed_in_user(desktop)
    assert user["profile"]["preferred_username"] == ADMIN
    refresh_token = user["refresh_token"]
    shot(desktop, "admin-dashboard")

    # The header names the person as they signed in (the ID token's name), not their
    # username; its menu signs them out.
    desktop.get_by_role("button", name="杏花村管理员").click()
    desktop.get_by_text("退出登录").click()
    # Back at the console, which finds nobody signed in and sends the browser to sign in.
    desktop.wait_for_url(re.compile(r"/protocol/openid-connect/auth"))
    expect(desktop.get_by_label("用户名")).to_be_visible()
    answer = requests.post(
        browser_stack.url + TOKEN_PATH,
        data={
            "grant_type": "refresh_token",
            "client_id": "villagelink-console",
            "refresh_token": refresh_token,
        },
        timeout=10,
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_the_api_explorer_runs_under_the_pages_policy(desktop: Page):
    """GraphiQL (React, CodeMirror) is the build's largest app: it must work with scripts
    from this origin only (the `desktop` fixture fails on anything the policy refused)."""
    desktop.goto("/graphiql/")
    expect(desktop.locator(".graphiql-container")).to_be_visible()
    shot(desktop, "graphiql")

    # Signed in by the console's own flow, the explorer asks as that person.
    desktop.get_by_role("button", name=re.compile("登录")).click()
    desktop.wait_for_url(re.compile(r"/protocol/openid-connect/auth"))
    login(desktop, ADMIN, DEMO_PASSWORD, app="graphiql")
    expect(desktop.get_by_role("button", name=re.compile("退出登录"))).to_be_visible()
    # CodeMirror fills the editor after the page has drawn; a click before then sends an
    # empty query (the server's answer to that is right, but not what this test asks).
    expect(desktop.locator(".graphiql-query-editor .CodeMirror-code")).to_contain_text("username")
    desktop.get_by_role("button", name=re.compile("Execute query")).click()
    expect(desktop.locator(".graphiql-response")).to_contain_text(ADMIN)
    expect(desktop.locator(".graphiql-response")).to_contain_text('"xinghua"')
    # The schema's own docs, and the query kept in the history.
    desktop.get_by_role("button", name=re.compile("Documentation Explorer")).click()
    expect(desktop.locator(".graphiql-doc-explorer")).to_contain_text("Query")
    desktop.get_by_role("button", name=re.compile("History")).click()
    expect(desktop.locator(".graphiql-history")).to_contain_text("query")
    shot(desktop, "graphiql-signed-in")
