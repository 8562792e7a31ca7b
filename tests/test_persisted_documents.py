"""Persisted documents (graphql/core/persisted.py): automatic persisted queries in Apollo's
shape over POST and GET, hashes that do not match refused, mutations never over GET, and the
registered-only clients of PERSISTED_DOCUMENTS_ONLY_CLIENTS with `villagelink documents
register`, against the real PostgreSQL and Valkey."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import select

from villagelink.platform import models as pm
from villagelink.platform.app import create_app
from villagelink.platform.cli import main
from villagelink.platform.identity.dev_issuer import CONSOLE_CLIENT
from villagelink.platform.persisted_documents import persisted_documents

QUERY = "query Me { me { username roles } }"
MUTATION = """mutation Region($input: CreateRegionInput!) {
  createRegion(input: $input) { userErrors { code } } }"""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(text: str) -> dict:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(text)}}


@pytest.fixture
def bearer(token):
    return {"Authorization": f"Bearer {token('platform-admin', sub='apq-caller')}"}


def post(client, headers, **params):
    return client.post("/graphql", json=params, headers=headers)


def get(client, headers, **params):
    query = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in params.items()}
    return client.get("/graphql", query_string=query, headers=headers)


def code_of(response) -> str:
    return response.get_json()["errors"][0]["extensions"]["code"]


def test_the_hash_alone_is_not_found_until_sent_with_the_text(client, bearer):
    document = f"{QUERY} # {bearer['Authorization'][-12:]}"
    unknown = post(client, bearer, extensions=apq(document))
    assert unknown.status_code == 200
    assert unknown.get_json()["errors"][0] == {
        "message": "PersistedQueryNotFound",
        "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
    }
    sent = post(client, bearer, query=document, extensions=apq(document))
    assert sent.status_code == 200 and sent.get_json()["data"]["me"]["roles"] == ["platform-admin"]
    by_hash = post(client, bearer, extensions=apq(document))
    assert by_hash.get_json()["data"] == sent.get_json()["data"]
    # GET carries queries by hash too, extensions and variables as JSON parameters.
    over_get = get(client, bearer, extensions=apq(document))
    assert over_get.status_code == 200
    assert over_get.get_json()["data"] == sent.get_json()["data"]


def test_a_text_that_does_not_match_its_hash_is_refused_and_not_kept(client, bearer):
    document = "query Other { me { subject } }"
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": sha(QUERY)}}
    refused = post(client, bearer, query=document, extensions=wrong)
    assert refused.status_code == 400 and code_of(refused) == "BAD_REQUEST"
    # Nothing was remembered under either hash by the refused request.
    assert code_of(post(client, bearer, extensions=apq(document))) == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": {"version": 2, "sha256Hash": sha(QUERY)}},
        {"persistedQuery": {"version": 1, "sha256Hash": sha(QUERY).upper()}},
        {"persistedQuery": {"version": 1, "sha256Hash": "abc"}},
        {"persistedQuery": {"version": 1}},
        {"persistedQuery": "x"},
    ],
)
def test_a_persisted_query_of_another_shape_is_a_bad_request(client, bearer, extensions):
    answer = post(client, bearer, extensions=extensions)
    assert answer.status_code == 400 and code_of(answer) == "BAD_REQUEST"


def test_extensions_must_be_an_object(client, bearer):
    answer = post(client, bearer, query=QUERY, extensions="persistedQuery")
    assert answer.status_code == 400 and code_of(answer) == "BAD_REQUEST"
    answer = get(client, bearer, query=QUERY, extensions="[1]")
    assert answer.status_code == 400 and code_of(answer) == "BAD_REQUEST"


def test_an_invalid_document_is_not_remembered(client, bearer):
    document = "query Broken { me { noSuchField } }"
    answer = post(client, bearer, query=document, extensions=apq(document))
    assert code_of(answer) == "GRAPHQL_VALIDATION_FAILED"
    assert code_of(post(client, bearer, extensions=apq(document))) == "PERSISTED_QUERY_NOT_FOUND"


def test_a_mutation_is_never_run_over_get_even_by_hash(client, bearer):
    variables = {"input": {"id": "apq_region", "name": "持久化片区"}}
    sent = post(client, bearer, query=MUTATION, variables=variables, extensions=apq(MUTATION))
    assert sent.status_code == 200 and "errors" not in sent.get_json()
    over_get = get(client, bearer, variables=variables, extensions=apq(MUTATION))
    assert over_get.status_code == 405 and over_get.headers["Allow"] == "POST"


@pytest.fixture
def consoles_only(settings, db):
    """A production-like gateway: the console's client runs registered documents only."""
    app = create_app(
        replace(settings, persisted_documents_only_clients=frozenset({CONSOLE_CLIENT}))
    )
    return app.test_client()


def register(settings, *paths) -> object:
    return CliRunner().invoke(
        main,
        ["documents", "register", *map(str, paths)],
        env={"DATABASE_URL": settings.external_database_url},
    )


def test_registered_only_clients_run_registered_documents_alone(
    consoles_only, settings, db, token, tmp_path
):
    console = {"Authorization": f"Bearer {token('platform-admin', client=CONSOLE_CLIENT)}"}
    integrator = {"Authorization": f"Bearer {token('integrator', client='apq-integrator')}"}
    document = "query ConsoleMe { me { username clientId } }"

    # Not registered: refused as text, by hash, and even once remembered by another caller.
    refused = post(consoles_only, console, query=document)
    assert refused.status_code == 403 and code_of(refused) == "FORBIDDEN"
    assert code_of(post(consoles_only, console, extensions=apq(document))) == "FORBIDDEN"
    remembered = post(consoles_only, integrator, query=document, extensions=apq(document))
    assert "errors" not in remembered.get_json()
    assert code_of(post(consoles_only, console, extensions=apq(document))) == "FORBIDDEN"

    path = tmp_path / "ConsoleMe.graphql"
    path.write_text(document, encoding="utf-8")
    registered = register(settings, path)
    assert registered.exit_code == 0, registered.output
    assert registered.output.split()[:3] == [sha(document), str(path), "registered"]
    assert register(settings, path).output.split()[2:] == ["already", "registered"]

    by_hash = post(consoles_only, console, extensions=apq(document))
    assert by_hash.status_code == 200
    assert by_hash.get_json()["data"]["me"]["clientId"] == CONSOLE_CLIENT
    assert post(consoles_only, console, query=document).status_code == 200
    over_get = get(consoles_only, console, extensions=apq(document))
    assert over_get.get_json()["data"] == by_hash.get_json()["data"]
    # Other clients are not held to the registered set.
    assert post(consoles_only, integrator, query="{ __typename }").status_code == 200


def test_register_refuses_a_document_the_schema_does_not_accept(settings, db, tmp_path):
    good, bad = tmp_path / "Good.graphql", tmp_path / "Bad.graphql"
    good.write_text("query Good { me { subject } }", encoding="utf-8")
    bad.write_text("query Bad { me { nothingLikeThis } }", encoding="utf-8")
    refused = register(settings, good, bad)
    assert refused.exit_code != 0 and "Bad.graphql" in refused.output
    with db.platform() as conn:
        hashes = set(conn.execute(select(persisted_documents.c.sha256)).scalars())
    # All or nothing: the valid file was not registered either.
    assert sha(good.read_text()) not in hashes


def test_migration_creates_what_the_table_describes(db):
    def only_ours(_object, name, type_, _reflected, _compare_to) -> bool:
        return type_ != "table" or name == "persisted_documents"

    with db.platform() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_server_default": False,
                "include_object": only_ours,
                "include_schemas": True,
                "include_name": lambda name, type_, _parent: (
                    type_ != "schema" or name == "platform"
                ),
            },
        )
        assert compare_metadata(context, pm.metadata) == []
