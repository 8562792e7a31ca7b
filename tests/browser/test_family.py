"""我的家庭 in the residents' app at 390x844: an old villager who wears a wristband names a
resident with the app as an emergency contact (the village's record, through the API), and
grants 家属查看授权 themselves on their own phone; the contact opens 我的家庭 and finds the
wearer's latest vitals and today's alerts. Screenshots for docs/residents-app.md."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from villagelink.tenants.demo.accounts import DEMO_PASSWORD
from villagelink.tenants.demo.plans import DEMO_VILLAGES

from .conftest import Stack, check_accessible, login, opened, shot
from .test_residents import (
    BIND,
    RESIDENT_WITH_HOUSEHOLD,
    Api,
    another_resident_login,
    check_accessible_after_toast,
    resident_account,
    settle,
)

WEARERS = """query($village: String!) { village(slug: $village) {
  residents(first: 100) { edges { node { id name
    latestVitals { heartRate spo2 }
    healthRecord { emergencyContacts { name relation phone } } } } } } }"""
CONSENTS = """query($id: ID!) { node(id: $id) { ... on Resident {
  healthRecord { readingConsents { contactName recordedBy } } } } }"""
NAME_CONTACTS = """mutation($resident: ID!, $contacts: [EmergencyContactInput!]!) {
  updateHealthRecord(input: {resident: $resident, emergencyContacts: $contacts}) {
    userErrors { field message } } }"""


def test_an_emergency_contact_sees_a_consenting_wearers_readings(
    browser: Browser, phone: Page, browser_stack: Stack
):
    # A village the other residents' journeys leave alone: its demo resident is ours to bind.
    village = DEMO_VILLAGES[2].slug
    api = Api(browser_stack, village)
    contact = api(RESIDENT_WITH_HOUSEHOLD)["village"]["residents"]["edges"][0]["node"]
    account = resident_account(village)
    bound = api(BIND, resident=contact["id"], account=account.subject)["bindResidentAccount"]
    assert bound["residentAccount"]["state"] == "BOUND", bound

    wearer = next(
        e["node"]
        for e in api(WEARERS)["village"]["residents"]["edges"]
        if e["node"]["id"] != contact["id"]
        and e["node"]["healthRecord"]
        and e["node"]["latestVitals"]
        and e["node"]["latestVitals"]["heartRate"] is not None
    )
    daughter = {"name": contact["name"], "relation": "女儿", "phone": contact["phone"]}
    named = [*wearer["healthRecord"]["emergencyContacts"][:4], daughter]
    assert not api(NAME_CONTACTS, resident=wearer["id"], contacts=named)["updateHealthRecord"][
        "userErrors"
    ]
    wearer_sub, wearer_login, wearer_password = another_resident_login(
        browser_stack, village, wearer["name"]
    )
    bound = api(BIND, resident=wearer["id"], account=wearer_sub)["bindResidentAccount"]
    assert bound["residentAccount"]["state"] == "BOUND", bound

    # The wearer, on their own phone, lets their daughter see their readings.
    with opened(browser, browser_stack, phone=True) as theirs:
        login(theirs, wearer_login, wearer_password, app="h5")
        theirs.goto("/h5/family")
        named = theirs.get_by_role("article", name=contact["name"])
        named.get_by_role("button", name="授权查看").click()
        theirs.get_by_role("dialog").get_by_role("button", name="确认").click()
        expect(named.get_by_text(re.compile("已授权查看.*本人授权"))).to_be_visible()
        check_accessible_after_toast(theirs)
        shot(theirs, "residents-family-consent")

    def recorded() -> list:
        found = api(CONSENTS, id=wearer["id"])["node"]["healthRecord"]["readingConsents"]
        return [c for c in found if c["contactName"] == contact["name"]]

    # Recorded in the village, as given by the wearer themselves.
    assert settle(recorded) == [{"contactName": contact["name"], "recordedBy": wearer_login}]

    login(phone, account.username, DEMO_PASSWORD, app="h5")
    phone.get_by_role("tab", name="我的").click()
    phone.get_by_text("我的家庭").click()
    expect(phone).to_have_url(re.compile(r"/h5/family"))
    card = phone.get_by_role("region", name=wearer["name"])
    expect(card.get_by_text("您是其女儿")).to_be_visible()
    vitals = wearer["latestVitals"]
    expect(card.get_by_text(f"{vitals['heartRate']} 次/分")).to_be_visible()
    expect(card.get_by_text("今日预警")).to_be_visible()
    check_accessible(phone)
    shot(phone, "residents-family")
