"""One rule for language: every message a person may read is Chinese by default and
English with `Accept-Language: en`, codes English in both (graphql/core/messages.py)."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest

from villagelink.graphql.core import catalogue
from villagelink.graphql.core.catalogue import BY_CODE, CATALOGUE, UNKNOWN_CODE
from villagelink.graphql.core.ids import encode_id
from villagelink.graphql.core.messages import EN, ZH, has_cjk, language_of, localized, translate

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{(\w+)\}")
EN_HEADERS = {"Accept-Language": "en"}


def test_every_entry_has_both_languages_and_the_same_parameters():
    for zh, en in [*CATALOGUE, *BY_CODE.values(), UNKNOWN_CODE]:
        assert zh.strip() and has_cjk(zh), (zh, en)
        assert en.strip() and not has_cjk(en), (zh, en)
        assert sorted(PLACEHOLDER.findall(zh)) == sorted(PLACEHOLDER.findall(en)), (zh, en)


def test_each_message_id_names_one_message():
    """A message's id is its text in the language the code writes it in: Chinese for
    the actions' words and refusals, English for the API's errors and graphql-core's."""
    for texts in (
        [zh for zh, _ in catalogue.FROM_CHINESE],
        [en for _, en in catalogue.FROM_ENGLISH],
    ):
        assert len(texts) == len(set(texts)), {t for t in texts if texts.count(t) > 1}


# The calls that take a message a person reads, and where: (positional index).
MESSAGE_CALLS = {
    "refused": 1,
    "UserError": 1,
    "Coded": 0,
    "Forbidden": 0,
    "BadUserInput": 0,
    "DeadlineExceeded": 0,
    "ValidationError": 0,
    "require_manage": 1,
    "HttpFailure": 1,
    "InvalidToken": 0,
    "ItemError": 2,
}


def _messages_in(path: Path) -> list[tuple[str, int]]:
    """(message with each interpolation as X, line) of every literal that a message call
    gets (or a validator's `error=`), directly or through a module constant."""
    tree = ast.parse(path.read_text())
    constants = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id.isupper()
    }

    def text(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name) and node.id in constants:
            node = constants[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
        return None

    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        # a validator's `error=` (not an OAuth error code given to jsonify)
        keywords = () if name == "jsonify" else node.keywords
        arguments = [k.value for k in keywords if k.arg in ("error", "message")]
        if name == "messages":  # tenants/fields.py: a field's own messages by kind
            arguments += [k.value for k in node.keywords]
        if name in MESSAGE_CALLS and len(node.args) > MESSAGE_CALLS[name]:
            arguments.append(node.args[MESSAGE_CALLS[name]])
        for argument in arguments:
            message = text(argument)
            if message and len(message) > 1:
                found.append((message, node.lineno))
    return found


def test_every_message_the_code_writes_has_its_entry():
    """A Chinese message reaches an English caller translated, an English one a Chinese
    caller: the fallback by code is for what the code does not write (a driver's text)."""
    missing = []
    for folder in ("tenants", "platform", "graphql"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "demo" in path.parts or "migrations" in path.parts:
                continue
            for message, line in _messages_in(path):
                language = EN if has_cjk(message) else ZH
                if translate(message, language) is None:
                    missing.append(f"{path.relative_to(ROOT)}:{line}: {message}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, ZH),
        ("", ZH),
        ("en", EN),
        ("en-US,en;q=0.9", EN),
        ("zh-CN,zh;q=0.9,en;q=0.8", ZH),
        ("zh;q=0.5, en;q=0.9", EN),
        ("en;q=0.4, fr;q=0.8", ZH),  # French is not offered: anything not English is Chinese
        ("en;q=0", ZH),
        ("*", ZH),
        ("en;q=abc", ZH),
    ],
)
def test_accept_language_with_q_values(header, language):
    assert language_of(header) == language


def test_parameters_are_translated_where_the_catalogue_knows_them():
    assert translate("该网格下还有下级网格2个、住户3户，请先调整后再归档", EN) == (
        "this grid still has 2 sub-grid(s), 3 household(s): move them before archiving"
    )
    assert translate("网格须有上级社区", EN) == "a grid needs a parent community"
    # marshmallow's own messages, where a field sets none
    assert translate("Must be greater than or equal to 1 and less than or equal to 5.", ZH) == (
        "须大于或等于 1 且小于或等于 5"
    )
    # graphql-core's English quoting Chinese input is still English: translated for a
    # Chinese caller, left as it is for an English one
    quoting = "String cannot represent a non string value: ['网格']"
    assert localized(quoting, "BAD_USER_INPUT", ZH) == (
        "String 不能表示非字符串值：['网格']",
        quoting,
    )
    assert localized(quoting, "BAD_USER_INPUT", EN) == (quoting, None)
    # the API's own names stay as they are in Chinese
    assert translate("Cannot query field 'name' on type 'Grid'.", ZH) == (
        "类型 'Grid' 没有字段 'name'。"
    )


# One refusal at least per mutation domain: (role, mutation, input type, input).
def _refusals(village: str) -> list[tuple[str, str, str, dict]]:
    admin = "village-admin"
    platform = "platform-admin"

    def missing(type_name: str) -> str:
        return encode_id(type_name, village, 999999)

    return [
        (admin, "createGrid", "CreateGridInput",
         {"village": village, "level": "LARGE", "code": "bad code!", "name": ""}),
        (admin, "createResident", "CreateResidentInput",
         {"village": village, "name": "张三", "idNumber": "123", "phone": "12"}),
        (admin, "createRequestCategory", "CreateRequestCategoryInput",
         {"village": village, "code": "X", "name": ""}),
        (admin, "updateRequestSettings", "UpdateRequestSettingsInput",
         {"village": village, "simpleHours": 48, "complexHours": 24, "hardHours": 12}),
        (admin, "createActivity", "CreateActivityInput",
         {"village": village, "kind": "TALK", "title": "", "place": "村委会", "capacity": 0,
          "startsOn": "2026-12-01", "startTime": "25:99", "durationMinutes": 0}),
        (admin, "createServiceItem", "CreateServiceItemInput",
         {"village": village, "name": " ", "category": "HAIRCUT"}),
        (admin, "createNotice", "CreateNoticeInput",
         {"village": village, "category": "VILLAGE_AFFAIRS", "title": "通知",
          "publishFrom": "2026-12-10T09:00:00+08:00",
          "publishUntil": "2026-12-01T09:00:00+08:00"}),
        (admin, "createMediationCase", "CreateMediationCaseInput",
         {"village": village, "category": "NEIGHBOUR", "summary": "", "parties": []}),
        (admin, "createSharedResource", "CreateSharedResourceInput",
         {"village": village, "kind": "VENUE", "name": "", "latitude": 39.1}),
        (admin, "registerDevice", "RegisterDeviceInput",
         {"village": village, "kind": "SMOKE_SENSOR", "serialNumber": "bad serial!", "name": ""}),
        (admin, "updateHealthThresholds", "UpdateHealthThresholdsInput",
         {"village": village, "heartRateMin": 150, "heartRateMax": 60}),
        (admin, "addGridStaff", "AddGridStaffInput",
         {"village": village, "name": "", "phone": "12", "tier": "GRID_WORKER"}),
        (admin, "proposeAgreement", "ProposeAgreementInput",
         {"village": village, "recordTypes": [], "purpose": ""}),
        (admin, "createUploadUrl", "CreateUploadUrlInput",
         {"village": village, "purpose": "REQUEST_PHOTO", "filename": "",
          "contentType": "image/jpeg", "size": 0}),
        (admin, "scheduleDutyShift", "ScheduleDutyShiftInput",
         {"village": village, "staff": missing("GridStaff"),
          "startsAt": "2026-12-10T09:00:00+08:00", "endsAt": "2026-12-20T09:00:00+08:00"}),
        (admin, "createHealthRecord", "CreateHealthRecordInput",
         {"resident": missing("Resident"), "careLevel": "SELF_CARE"}),
        (admin, "openJointCase", "OpenJointCaseInput",
         {"request": missing("Request"), "villages": [village]}),
        (admin, "transferResident", "TransferResidentInput",
         {"resident": missing("Resident"), "destination": village}),
        (admin, "transferResident", "TransferResidentInput",
         {"resident": missing("Resident"), "destination": "elsewhere",
          "consent": {"givenBy": " ", "method": "IN_PERSON"}}),
        (admin, "bindResidentAccount", "BindResidentAccountInput",
         {"resident": missing("Resident"), "account": "acc-1", "verification": "核验身份证原件"}),
        (admin, "exportResidents", "ExportResidentsInput",
         {"village": village, "unmasked": True, "reason": "x"}),
        (platform, "registerApiClient", "RegisterApiClientInput",
         {"clientId": "X", "name": "", "scopes": []}),
        (platform, "createRegion", "CreateRegionInput", {"id": "X", "name": ""}),
        (platform, "createVillage", "CreateVillageInput",
         {"slug": "X", "name": "", "region": "nowhere"}),
    ]  # fmt: skip


def test_a_refusal_inside_an_input_object_names_its_whole_path(gql, token, village):
    """The console shows a message next to the field it names: inside a nested input,
    that is the whole path, not the last name."""
    caller = token("village-admin", village=village.slug)
    value = {
        "resident": encode_id("Resident", village.slug, 999999),
        "destination": "elsewhere",
        "consent": {"givenBy": " ", "method": "IN_PERSON"},
    }
    errors = _user_errors(gql, caller, "transferResident", "TransferResidentInput", value)
    assert ("consent.givenBy", "REQUIRED") in {(e["field"], e["code"]) for e in errors}, errors


def _user_errors(gql, caller: str, mutation: str, input_type: str, value: dict, **headers):
    document = (
        f"mutation($input: {input_type}!) {{ {mutation}(input: $input) "
        "{ userErrors { field message code } } }"
    )
    status, body = gql(document, caller, {"input": value}, **headers)
    assert status == 200 and "errors" not in body, body
    return body["data"][mutation]["userErrors"]


def test_refusals_are_chinese_by_default_and_english_when_asked(gql, token, village):
    callers = {
        "village-admin": token("village-admin", village=village.slug),
        "platform-admin": token("platform-admin"),
    }
    for role, mutation, input_type, value in _refusals(village.slug):
        chinese = _user_errors(gql, callers[role], mutation, input_type, value)
        english = _user_errors(gql, callers[role], mutation, input_type, value, **EN_HEADERS)
        assert chinese, mutation
        for zh, en in zip(chinese, english, strict=True):
            assert has_cjk(zh["message"]), (mutation, zh)
            assert not has_cjk(en["message"]), (mutation, en)
            # each of these refusals is about an input field, and names it
            assert en["field"], (mutation, en)
            # the same refusal: its code and the field it names do not change with language
            assert (zh["code"], zh["field"]) == (en["code"], en["field"]), mutation
            # a refusal the catalogue translates, not the fallback sentence of its code
            assert en["message"] != BY_CODE.get(en["code"], UNKNOWN_CODE)[1] or (
                zh["message"] == BY_CODE.get(zh["code"], UNKNOWN_CODE)[0]
            ), (mutation, zh, en)


def _top_level(client, caller: str | None, json: object, **headers) -> list[dict]:
    if caller is not None:
        headers["Authorization"] = f"Bearer {caller}"
    response = client.post("/graphql", json=json, headers=headers)
    assert "Accept-Language" in response.headers.get("Vary", "")
    return response.get_json()["errors"]


TOP_LEVEL = [
    # graphql-core: syntax, unknown field, unknown argument, missing argument, wrong type
    ({"query": "{ village("}, "GRAPHQL_PARSE_FAILED"),
    ({"query": "{ nope }"}, "GRAPHQL_VALIDATION_FAILED"),
    ({"query": "{ villages(bogus: 1) { slug } }"}, "GRAPHQL_VALIDATION_FAILED"),
    ({"query": "{ village { slug } }"}, "GRAPHQL_VALIDATION_FAILED"),
    ({"query": "{ unknownTypeField: village(slug: 5) { slug } }"}, "GRAPHQL_VALIDATION_FAILED"),
    (
        {
            "query": "query($s: String!) { village(slug: $s) { slug } }",
            "variables": {"s": 5},
        },
        "BAD_USER_INPUT",
    ),
    ({"query": "query($s: String!) { village(slug: $s) { slug } }"}, "BAD_USER_INPUT"),
    # the gateway's own refusals
    ([1], "BAD_REQUEST"),
    ({"query": ""}, "BAD_REQUEST"),
]


@pytest.mark.parametrize(("json", "code"), TOP_LEVEL)
def test_top_level_errors_in_both_languages(client, token, json, code):
    caller = token("platform-admin")
    chinese = _top_level(client, caller, json)
    english = _top_level(client, caller, json, **EN_HEADERS)
    assert [e["extensions"]["code"] for e in chinese] == [code] * len(chinese)
    assert [e["extensions"]["code"] for e in english] == [code] * len(english)
    for zh, en in zip(chinese, english, strict=True):
        assert has_cjk(zh["message"]), zh
        assert not has_cjk(en["message"]), en
        # the English original is kept for whoever reads the Chinese
        assert zh["extensions"]["originalMessage"] == en["message"]
        # graphql-core's common messages are translated, not replaced by their code's
        assert zh["message"] != BY_CODE[code][0], zh


FORBIDDEN_MUTATION = 'mutation { createRegion(input: {id: "r1", name: "片区"}) { region { id } } }'
COSTLY = "residents(first: 100) { edges { node { household { members { name } } } } }"


def test_authentication_forbidden_and_limits_in_both_languages(client, token, settings):
    cases = [
        (None, {"query": "{ __typename }"}, "UNAUTHENTICATED"),
        ("not-a-token", {"query": "{ __typename }"}, "UNAUTHENTICATED"),
        (
            token("village-admin", village="nowhere"),
            {"query": FORBIDDEN_MUTATION},
            "FORBIDDEN",
        ),
        (
            token("platform-admin"),
            {"query": "{ villages { " + " ".join(f"r{i}: {COSTLY}" for i in range(6)) + " } }"},
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ]
    for caller, json, code in cases:
        chinese = _top_level(client, caller, json)
        english = _top_level(client, caller, json, **EN_HEADERS)
        assert chinese[0]["extensions"]["code"] == english[0]["extensions"]["code"] == code
        assert has_cjk(chinese[0]["message"]) and not has_cjk(english[0]["message"]), (
            chinese,
            english,
        )
        assert chinese[0]["message"] != BY_CODE[code][0], chinese


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/no/such/path", {}, 404),
        ("delete", "/healthz", {}, 405),
        ("post", "/graphql", {"data": "x", "content_type": "text/plain"}, 415),
        ("post", "/graphql", {"data": "{", "content_type": "application/json"}, 400),
    ],
)
def test_http_errors_in_both_languages(client, token, method, path, kwargs, status):
    headers = {"Authorization": f"Bearer {token('platform-admin')}"}
    chinese = getattr(client, method)(path, headers=headers, **kwargs)
    english = getattr(client, method)(path, headers={**headers, **EN_HEADERS}, **kwargs)
    assert chinese.status_code == english.status_code == status
    zh, en = chinese.get_json()["errors"][0], english.get_json()["errors"][0]
    assert zh["extensions"]["code"] == en["extensions"]["code"]
    assert has_cjk(zh["message"]) and not has_cjk(en["message"]), (zh, en)


def test_body_over_the_limit_in_both_languages(client, token, settings):
    headers = {"Authorization": f"Bearer {token('platform-admin')}"}
    body = {"query": "{ __typename }", "padding": "x" * (settings.max_body_bytes + 1)}
    chinese = client.post("/graphql", json=body, headers=headers)
    english = client.post("/graphql", json=body, headers={**headers, **EN_HEADERS})
    assert chinese.status_code == english.status_code == 413
    assert has_cjk(chinese.get_json()["errors"][0]["message"])
    assert not has_cjk(english.get_json()["errors"][0]["message"])


def test_a_long_message_is_answered_at_once():
    """A message quoting a huge variable back neither backtracks nor leaks English."""
    near_fit = "Variable '$a' has invalid value: " + "Expected value of type 'X' " * 40_000
    started = time.perf_counter()
    text, original = localized(near_fit, "BAD_USER_INPUT", ZH)
    assert time.perf_counter() - started < 0.5
    assert (text, original) == (BY_CODE["BAD_USER_INPUT"][0], near_fit)
    # within the bound, one that almost fits every parameterised entry is still quick
    started = time.perf_counter()
    assert translate("该" + "楼第1单元还有住户，" * 150, EN) is None
    assert time.perf_counter() - started < 0.5


def test_what_a_resident_hears_after_asking_for_an_account(gql, token, village):
    """Not only refusals: the answer a resident reads follows their language too."""
    caller = token("resident", village=village.slug, sub="asker-lang", username="居民甲")
    document = """mutation($input: RequestResidentAccountInput!) {
      requestResidentAccount(input: $input) { state message userErrors { code } } }"""
    value = {"village": village.slug, "idNumber": "120111195804099021", "phone": "13800138000"}
    answers = []
    for headers in ({}, EN_HEADERS):
        status, body = gql(document, caller, {"input": value}, **headers)
        assert status == 200 and "errors" not in body, body
        answers.append(body["data"]["requestResidentAccount"])
    chinese, english = answers
    assert chinese["userErrors"] == english["userErrors"] == []
    assert has_cjk(chinese["message"]) and not has_cjk(english["message"]), answers
