"""我的家庭 in the residents' app at 390x844: an old villager who wears a wristband names a
resident with the app as an emergency contact and consents, recorded by the village; the
contact opens 我的家庭 and finds the wearer's latest vitals and today's alerts. Screenshot
for docs/residents-app.md.

The consent is recorded through the API, not the admin's screen: a second (desktop)
sign-in would double the test's time, and the suite's time is short (issue 11)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from villagelink.tenants.demo.accounts import DEMO_PASSWORD
from villagelink.tenants.demo.region import DEMO_VILLAGES

from .conftest import Stack, check_accessible, login, shot
from .test_residents import BIND, RESIDENT_WITH_HOUSEHOLD, Api, resident_account

WEARERS = """query($village: String!) { village(slug: $village) {
  residents(first: 100) { edges { node { id name
    latestVitals { heartRate spo2 }
    healthRecord { emergencyContacts { name relation phone } } } } } } }"""
GRANT = """mutation($resident: ID!, $phone: String!) {
  grantReadingConsent(input: {resident: $resident, contactPhone: $phone}) {
    userErrors { field message } } }"""
NAME_CONTACTS = """mutation($resident: ID!, $contacts: [EmergencyContactInput!]!) {
  updateHealthRecord(input: {resident: $resident, emergencyContacts: $contacts}) {
    userErrors { field message } } }"""


def test_an_emergency_contact_sees_a_consenting_wearers_readings(phone: Page, browser_stack: Stack):
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
    granted = api(GRANT, resident=wearer["id"], phone=contact["phone"])["grantReadingConsent"]
    assert not granted["userErrors"], granted

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
