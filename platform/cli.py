"""The `villagelink` command: serve, migrate, seed, manage villages, mint development tokens."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from villagelink.jobs.queues import QUEUES
from villagelink.platform.audit import system_actor
from villagelink.platform.db import Database, InvalidSlug
from villagelink.platform.settings import Settings, load_settings

# Who the audit log names for what an operator does on the command line.
CLI_ACTOR = system_actor("cli")


def _database(settings: Settings) -> Database:
    """An operator's commands migrate and provision: a session of their own, not PgBouncer's."""
    return Database(settings.database_direct_url, statement_timeout_ms=0)


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """villagelink: 五村联动 multi-village platform."""
    ctx.obj = load_settings()


@main.command()
@click.pass_obj
def run(settings: Settings) -> None:
    """Start everything `make run` serves: embedded servers, gateway, worker, scheduler."""
    from villagelink.platform.runner import run as run_platform

    sys.exit(run_platform(settings))


@main.command()
@click.option("--jobs", default=4, show_default=True, help="villages migrated in parallel")
@click.pass_obj
def migrate(settings: Settings, jobs: int) -> None:
    """Migrate the platform schema and every village schema to head."""
    from villagelink.platform.migrate import upgrade_platform

    db = _database(settings)
    upgrade_platform(db)
    _migrate_all(db, jobs)


@main.command()
@click.option(
    "--residents", type=int, default=None, help="residents per village (default: 2,000-4,000)"
)
@click.pass_obj
def seed(settings: Settings, residents: int | None) -> None:
    """Seed the demo region (five villages) once; a second call changes nothing."""
    from villagelink.storage.factory import object_store
    from villagelink.tenants.demo.region import seed_demo_region

    store = object_store(settings)
    if seed_demo_region(_database(settings), residents_per_village=residents, store=store):
        click.echo("演示片区已生成 / demo region seeded")
    else:
        click.echo("演示片区已存在，未重复生成 / demo region already seeded, left as it is")


@main.group()
def tenants() -> None:
    """Villages (tenants): create, list, migrate, drop."""


@tenants.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="the village's Chinese name, e.g. 柳林村")
@click.option("--region", "region_id", required=True, help="region id, e.g. nanhe")
@click.option(
    "--count",
    type=click.IntRange(1, 10000),
    help="provision COUNT villages SLUG_0001... named NAME1... (e.g. for a region-sized bench)",
)
@click.pass_obj
def tenants_create(
    settings: Settings, slug: str, name: str, region_id: str, count: int | None
) -> None:
    """Provision village SLUG (idempotent: a second call brings it up to date)."""
    from tqdm import tqdm

    from villagelink.platform.villages import provision_village
    from villagelink.storage.factory import object_store

    wanted = (
        [(f"{slug}_{n:04d}", f"{name}{n}") for n in range(1, count + 1)]
        if count
        else [(slug, name)]
    )
    db, store = _database(settings), object_store(settings)
    for each_slug, each_name in tqdm(wanted, unit="village", disable=len(wanted) == 1):
        with _refusals():
            village = provision_village(
                settings,
                db,
                store,
                CLI_ACTOR,
                {"slug": each_slug, "name": each_name, "region": region_id},
            )
        if len(wanted) == 1:
            click.echo(
                f"village {village['slug']} ({village['name']}) ready in region "
                f"{village['region_id']}"
            )
            if settings.keycloak_url:
                click.echo(f"Keycloak group /villages/{village['slug']} ready")
    if len(wanted) > 1:
        click.echo(f"{len(wanted)} villages {wanted[0][0]}…{wanted[-1][0]} ready in {region_id}")


@tenants.command("list")
@click.pass_obj
def tenants_list(settings: Settings) -> None:
    """List villages with their region, status and migration revision."""
    from villagelink.tenants.provisioning import list_villages, village_revision

    db = _database(settings)
    rows = list_villages(db)
    click.echo(f"{'slug':<20} {'name':<12} {'region':<12} {'status':<9} revision")
    for v in rows:
        click.echo(
            f"{v.slug:<20} {v.name:<12} {v.region_id:<12} {v.status:<9} "
            f"{village_revision(db, v.slug)}"
        )
    click.echo(f"{len(rows)} villages")


@tenants.command("migrate")
@click.option("--all", "all_villages", is_flag=True, required=True, help="every village")
@click.option("--jobs", default=4, show_default=True, help="villages migrated in parallel")
@click.pass_obj
def tenants_migrate(settings: Settings, all_villages: bool, jobs: int) -> None:
    """Migrate every village schema to head, in parallel, with progress."""
    _migrate_all(_database(settings), jobs)


def _migrate_all(db: Database, jobs: int) -> None:
    from villagelink.tenants.provisioning import migrate_all_villages

    count, failures = migrate_all_villages(db, jobs=jobs)
    for failure in failures:
        click.echo(f"FAILED {failure.slug}: {failure.error}", err=True)
    if failures:
        raise click.ClickException(
            f"{len(failures)} of {count} villages failed; rerun to resume them"
        )
    click.echo(f"{count} villages at head")


@tenants.command("disable")
@click.argument("slug")
@click.pass_obj
def tenants_disable(settings: Settings, slug: str) -> None:
    """Stop serving village SLUG and disable the accounts that only it gave access to."""
    from villagelink.platform.villages import disable_village

    with _refusals():
        _village, accounts = disable_village(settings, _database(settings), CLI_ACTOR, slug)
    click.echo(f"village {slug} disabled; {len(accounts)} accounts disabled in Keycloak")


@tenants.command("enable")
@click.argument("slug")
@click.pass_obj
def tenants_enable(settings: Settings, slug: str) -> None:
    """Serve village SLUG again and re-enable the accounts its disabling turned off."""
    from villagelink.platform.villages import enable_village

    with _refusals():
        _village, accounts = enable_village(settings, _database(settings), CLI_ACTOR, slug)
    click.echo(f"village {slug} enabled; {len(accounts)} accounts enabled in Keycloak")


@tenants.command("drop")
@click.argument("slug")
@click.option(
    "--confirm",
    "confirmation",
    default=None,
    metavar="SLUG",
    help="type the slug again to confirm: every record of the village is deleted",
)
@click.pass_obj
def tenants_drop(settings: Settings, slug: str, confirmation: str | None) -> None:
    """Delete village SLUG with all its data (needs --confirm SLUG)."""
    from villagelink.tenants.provisioning import drop_village

    if confirmation != slug:
        raise click.ClickException(
            f"refusing to drop {slug!r}: this deletes all of its data. "
            f"Repeat the slug to confirm: villagelink tenants drop {slug} --confirm {slug}"
        )
    try:
        drop_village(_database(settings), slug)
    except InvalidSlug as exc:
        raise click.ClickException(str(exc)) from exc
    if settings.keycloak_url:
        from villagelink.platform.identity.keycloak_admin import RealmAdmin

        with _realm_errors():
            RealmAdmin(settings).remove_village_group(slug)
    click.echo(f"village {slug} dropped")


@contextmanager
def _refusals() -> Iterator[None]:
    """An action's refusal (the same as the API's userErrors) as a one-line operator error."""
    from villagelink.tenants.user_errors import ActionFailed

    try:
        yield
    except ActionFailed as failed:
        raise click.ClickException(
            "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in failed.errors)
        ) from failed


@contextmanager
def _realm_errors() -> Iterator[None]:
    """Provisioning refusals and Keycloak failures as one-line operator errors."""
    from keycloak import KeycloakError

    from villagelink.platform.identity.keycloak_admin import KeycloakProvisioningError

    try:
        yield
    except (KeycloakProvisioningError, InvalidSlug) as exc:
        raise click.ClickException(str(exc)) from exc
    except KeycloakError as exc:
        raise click.ClickException(f"Keycloak refused or failed: {exc}") from exc


@main.group()
def users() -> None:
    """Accounts in the Keycloak realm."""


@users.command("invite")
@click.option("--village", required=True, help="village slug, e.g. liulin")
@click.option("--role", required=True, type=click.Choice(["village-admin", "grid-worker"]))
@click.option("--email", required=True, help="the address; also the username")
@click.option("--first-name", default=None)
@click.option("--last-name", default=None)
@click.pass_obj
def users_invite(
    settings: Settings,
    village: str,
    role: str,
    email: str,
    first_name: str | None,
    last_name: str | None,
) -> None:
    """Give EMAIL a ROLE in VILLAGE, creating the account (idempotent)."""
    from villagelink.platform.identity.keycloak_admin import RealmAdmin

    with _realm_errors():
        user_id = RealmAdmin(settings).invite_user(
            village, role, email, first_name=first_name, last_name=last_name
        )
    click.echo(f"{email.strip().lower()} is {role} in {village} (Keycloak user {user_id})")


@main.group()
def clients() -> None:
    """API clients (integrators): the same actions as the GraphQL mutations, audited as
    `system:cli`. Secrets are printed once."""


@contextmanager
def _client_action(settings: Settings) -> Iterator[tuple]:
    """A platform transaction, the account directory and the CLI's actor; refusals and
    Keycloak failures as one-line operator errors (userErrors' Chinese messages)."""
    from villagelink.platform.audit import system_actor
    from villagelink.platform.identity.accounts import DirectoryUnavailable, account_directory
    from villagelink.tenants.user_errors import ActionFailed

    db = _database(settings)
    try:
        with _realm_errors(), db.platform() as conn:
            yield conn, account_directory(settings, db), system_actor("cli")
    except DirectoryUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    except ActionFailed as failed:
        raise click.ClickException(
            "; ".join(f"{e.field}: {e.message} ({e.code})" for e in failed.errors)
        ) from failed
    finally:
        db.dispose()


def _echo_client(row: dict) -> None:
    used = row["last_used_at"].isoformat() if row["last_used_at"] else "never"
    state = "enabled" if row["enabled"] else "disabled"
    click.echo(
        f"{row['client_id']}\t{row['name']}\t{state}\tscopes={','.join(row['scopes'])}"
        f"\tvillages={','.join(row['villages'])}\tlast used {used}"
    )


@clients.command("register")
@click.argument("client_id")
@click.option("--name", required=True, help="who the client is, e.g. 某设备平台")
@click.option(
    "--scope", "scopes", multiple=True, required=True, help="residents:read, notices:read, ..."
)
@click.pass_obj
def clients_register(settings: Settings, client_id: str, name: str, scopes: tuple) -> None:
    """Register CLIENT_ID (client credentials, role integrator) and print its secret."""
    from villagelink.platform.api_clients import do_register_client

    data = {"client_id": client_id, "name": name, "scopes": list(scopes)}
    with _client_action(settings) as (conn, directory, actor):
        row, secret = do_register_client(conn, actor, directory, data)
    _echo_client(row)
    click.echo(f"client secret (shown once): {secret}")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.pass_obj
def clients_rotate_secret(settings: Settings, client_id: str) -> None:
    """Give CLIENT_ID a new secret (the old one stops working) and print it."""
    from villagelink.platform.api_clients import do_rotate_client_secret

    with _client_action(settings) as (conn, directory, actor):
        _, secret = do_rotate_client_secret(conn, actor, directory, client_id)
    click.echo(f"client secret (shown once): {secret}")


def _switch_command(name: str, enabled: bool, summary: str) -> None:
    @clients.command(name, help=summary)
    @click.argument("client_id")
    @click.pass_obj
    def switch(settings: Settings, client_id: str) -> None:
        from villagelink.platform.api_clients import do_set_client_enabled

        with _client_action(settings) as (conn, directory, actor):
            row = do_set_client_enabled(conn, actor, directory, client_id, enabled)
        _echo_client(row)


_switch_command("disable", False, "Disable CLIENT_ID: its tokens are refused and reach nothing.")
_switch_command("enable", True, "Enable CLIENT_ID again.")


def _consent_command(name: str, summary: str) -> None:
    @clients.command(name, help=summary)
    @click.argument("client_id")
    @click.option("--village", required=True, help="village slug")
    @click.pass_obj
    def consent(settings: Settings, client_id: str, village: str) -> None:
        from villagelink.platform import api_clients

        step = api_clients.do_grant_village if name == "grant" else api_clients.do_withdraw_village
        with _client_action(settings) as (conn, _directory, actor):
            row = step(conn, actor, client_id, village)
        _echo_client(row)


_consent_command("grant", "Record VILLAGE's consent: CLIENT_ID reaches it within its scopes.")
_consent_command("withdraw", "Withdraw VILLAGE's consent from CLIENT_ID.")


@clients.command("list")
@click.pass_obj
def clients_list(settings: Settings) -> None:
    """Every API client with its scopes, villages and last use."""
    from villagelink.platform.api_clients import clients as client_rows

    db = _database(settings)
    try:
        with db.platform() as conn:
            rows = client_rows(conn)
    finally:
        db.dispose()
    for row in rows:
        _echo_client(row)


@main.group()
def schema() -> None:
    """The GraphQL schema as a contract: print it, check it against the released one."""


@schema.command("print")
@click.option("--write", is_flag=True, help="write docs/schema.graphql instead of stdout")
def schema_print(write: bool) -> None:
    """Print the live schema's SDL (sorted, with descriptions and directives)."""
    from villagelink.graphql.core.contract import SCHEMA_FILE, printed_schema
    from villagelink.graphql.core.schema import executable_schema

    printed = printed_schema(executable_schema())
    if write:
        SCHEMA_FILE.write_text(printed)
        click.echo(f"wrote {SCHEMA_FILE}")
    else:
        click.echo(printed, nl=False)


@schema.command("check")
def schema_check() -> None:
    """Compare the live schema with docs/schema.baseline.graphql: fails on a breaking change
    docs/api-changes.md does not list; shows the unlisted dangerous ones."""
    from villagelink.graphql.core.contract import CHANGES_FILE, review_files
    from villagelink.graphql.core.schema import executable_schema

    outcome = review_files(executable_schema())
    for line in outcome.malformed_entries:
        click.echo(f"malformed entry in {CHANGES_FILE.name}: {line}")
    for change in outcome.unlisted_breaking + outcome.unlisted_dangerous:
        click.echo(f"- {change.severity}: {change.kind} {change.description}")
    if not outcome.passes:
        raise click.ClickException(
            f"breaking changes not listed in {CHANGES_FILE.name} (docs/api.md, Deprecations)"
        )
    click.echo("no unlisted breaking change")


@schema.command("lint")
def schema_lint() -> None:
    """Every type, field, argument, input field, enum value and directive described, and
    every name in GraphQL's conventions (graphql/core/lint.py); fails listing each miss."""
    from villagelink.graphql.core.lint import problems
    from villagelink.graphql.core.schema import executable_schema

    found = problems(executable_schema())
    for line in found:
        click.echo(line)
    if found:
        raise click.ClickException(f"{len(found)} schema lint problems")
    click.echo("schema lint: every element described, every name conventional")


@main.group()
def documents() -> None:
    """Persisted GraphQL documents: register the ones PERSISTED_DOCUMENTS_ONLY_CLIENTS run."""


@documents.command("register")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.pass_obj
def documents_register(settings: Settings, files: tuple[str, ...]) -> None:
    """Register each FILE's text, exactly as the client sends it, as one document (it must
    be valid against the live schema); prints its SHA-256, the client's sha256Hash."""
    from pathlib import Path

    from graphql import GraphQLError, parse, validate
    from villagelink.graphql.core.schema import executable_schema
    from villagelink.platform.persisted_documents import register

    texts = [Path(name).read_text(encoding="utf-8") for name in files]
    for name, text in zip(files, texts, strict=True):
        try:
            problems = validate(executable_schema(), parse(text))
        except GraphQLError as exc:
            problems = [exc]
        if problems:
            raise click.ClickException(f"{name}: {problems[0].message}; nothing registered")
    with _database(settings).platform() as conn:
        outcome = register(conn, texts)
    for name, (sha256, added) in zip(files, outcome, strict=True):
        click.echo(f"{sha256}  {name}  {'registered' if added else 'already registered'}")


@main.command()
@click.option(
    "--role",
    required=True,
    help="platform-admin, regional-coordinator, village-admin, grid-worker, integrator or resident",
)
@click.option("--village", default=None, help="village slug (village-admin, grid-worker, resident)")
@click.option("--region", default=None, help="region id (regional-coordinator)")
@click.option("--client", default=None, help="API client id (integrator)")
@click.option("--sub", default=None, help="subject; defaults to a stable one per role and scope")
@click.option("--lifetime", default=3600, show_default=True, help="seconds")
@click.pass_obj
def token(
    settings: Settings,
    role: str,
    village: str | None,
    region: str | None,
    client: str | None,
    sub: str | None,
    lifetime: int,
) -> None:
    """Print an access token from the development issuer."""
    from villagelink.platform.identity.dev_issuer import DevIssuerRefused, mint_for_role
    from villagelink.tenants.demo.plans import demo_grid_worker_subject

    if role == "grid-worker" and village and sub is None:
        # The demo region links one micro-grid worker per village to this subject.
        sub = demo_grid_worker_subject(village)
    try:
        click.echo(
            mint_for_role(
                settings,
                role,
                village=village,
                region=region,
                client=client,
                sub=sub,
                lifetime=lifetime,
            )
        )
    except (ValueError, DevIssuerRefused) as exc:
        raise click.ClickException(str(exc)) from exc


@main.group()
def simulate() -> None:
    """Simulators that drive the platform through its public API, as integrators do."""


@simulate.command("devices")
@click.option("--village", required=True, help="village slug, e.g. liulin")
@click.option("--rate", default=50, show_default=True, help="readings and events a second")
@click.option("--duration", type=float, default=None, help="seconds; until Ctrl-C without it")
@click.option(
    "--incident-every", default=60.0, show_default=True, help="mean seconds between incidents"
)
@click.option("--client", "client_id", default="demo-integrator", show_default=True)
@click.option(
    "--client-secret", envvar="SIMULATOR_CLIENT_SECRET", default=None, help="with Keycloak only"
)
@click.option("--url", default=None, help="GraphQL endpoint; this platform's /graphql by default")
@click.option("--seed", type=int, default=None, help="random seed, for a repeatable stream")
@click.pass_obj
def simulate_devices(
    settings: Settings,
    village: str,
    rate: int,
    duration: float | None,
    incident_every: float,
    client_id: str,
    client_secret: str | None,
    url: str | None,
    seed: int | None,
) -> None:
    """Stream device events and health readings into a village as a device platform would:
    through ingestDeviceEvents and ingestHealthReadings, with occasional incidents."""
    from villagelink.platform.simulator import (
        GraphQLClient,
        SimulatorError,
        TokenSource,
        simulate,
    )

    if rate < 1 or rate > 20_000:
        raise click.BadParameter("between 1 and 20000 a second", param_hint="--rate")
    endpoint = url or f"{settings.public_url.rstrip('/')}/graphql"
    client = GraphQLClient(endpoint, TokenSource(settings, client_id, client_secret))
    try:
        simulate(
            client,
            village,
            rate,
            duration=duration,
            incident_every=incident_every,
            seed=seed,
            echo=click.echo,
        )
    except KeyboardInterrupt:
        click.echo("已停止")
    except (SimulatorError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option(
    "--queue",
    "queues",
    multiple=True,
    type=click.Choice(QUEUES),
    help="only these queues (repeatable); default: every queue, highest priority first",
)
@click.pass_obj
def worker(settings: Settings, queues: tuple[str, ...]) -> None:
    """Run an RQ worker (with RQ's scheduler for delayed jobs)."""
    from villagelink.jobs.worker import run_worker

    run_worker(settings, tuple(q for q in QUEUES if q in queues) or QUEUES)


@main.command()
@click.pass_obj
def gateway(settings: Settings) -> None:
    """Serve the API and the consoles with gunicorn on VILLAGELINK_HOST:VILLAGELINK_PORT,
    against the servers the environment names: one pod's process (the image's `gateway`
    role), where `run` supervises everything on one machine."""
    import os

    from villagelink.platform.identity.tokens import make_verifier
    from villagelink.platform.serving import (
        PortTaken,
        gunicorn_command,
        metrics_dir,
        refuse_a_taken_port,
        reset_metrics_dir,
    )

    # Refuse here, before gunicorn forks, when production has no issuer configured.
    make_verifier(settings)
    try:
        refuse_a_taken_port(settings)
    except PortTaken as exc:
        raise click.ClickException(str(exc)) from exc
    # A restarted container keeps its /tmp: the previous process's samples must not count.
    reset_metrics_dir(settings)
    command = gunicorn_command(settings)
    # gunicorn replaces this process, so that it receives the pod's SIGTERM itself.
    os.execve(
        command[0],
        command,
        {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir(settings))},
    )


@main.command()
@click.pass_obj
def live(settings: Settings) -> None:
    """Serve GraphQL subscriptions (graphql-sse) on LIVE_PORT: the consoles' live events."""
    from villagelink.platform.live.server import serve

    serve(settings)


@main.command()
@click.pass_obj
def scheduler(settings: Settings) -> None:
    """Run RQ's cron scheduler with the platform's periodic jobs."""
    from villagelink.jobs.scheduler import run_scheduler

    run_scheduler(settings)


@main.command()
@click.option(
    "--fetch-only",
    is_flag=True,
    help="fetch Keycloak, build MinIO and Helm, make Keycloak's first database, start nothing",
)
@click.pass_obj
def services(settings: Settings, fetch_only: bool) -> None:
    """Run a real Keycloak and MinIO on loopback (data under var/), until Ctrl-C."""
    import contextlib
    import os
    import signal

    from villagelink.platform import services as svc

    try:
        click.echo(f"Keycloak {svc.KEYCLOAK_VERSION}: {svc.keycloak_home()}")
        click.echo(f"MinIO {svc.MINIO_VERSION}: {svc.minio_binary()}")
        if fetch_only:
            # Not a service: the client tests/test_helm.py checks the chart with.
            click.echo(f"Helm {svc.HELM_VERSION}: {svc.helm_binary()}")
            # Made ahead like the binaries: the tests' Keycloak starts from a copy of it.
            click.echo(f"Keycloak's initial database: {svc.keycloak_database()}")
            return
        port = int(os.environ.get("KEYCLOAK_PORT", "8080"))
        keycloak = svc.KeycloakServer(
            settings.var_dir / "keycloak",
            port,
            int(os.environ.get("KEYCLOAK_MANAGEMENT_PORT", "8089")),
            public_url=settings.public_url,
        )
        minio = svc.MinioServer(
            settings.var_dir / "minio",
            int(os.environ.get("MINIO_PORT", "9000")),
            int(os.environ.get("MINIO_CONSOLE_PORT", "9001")),
        )
        started = []
        try:
            for server in (minio, keycloak):
                click.echo(f"starting {server.name} ...")
                started.append(server)
                server.start()
            click.echo(
                "\n服务已启动 / services are running. Use them with:\n"
                f"  export KEYCLOAK_URL={keycloak.url}\n"
                "  export KEYCLOAK_ADMIN_CLIENT_SECRET=<the provisioner's development secret, "
                "docs/identity.md>\n"
                f"  export S3_ENDPOINT={minio.endpoint}\n"
                f"  export S3_ACCESS_KEY={minio.access_key}\n"
                f"  export S3_SECRET_KEY={minio.secret_key}\n"
                f"Keycloak admin console: {keycloak.url}/admin "
                f"({keycloak.admin_username} / {keycloak.admin_password}, development only)\n"
                "Ctrl-C 停止 / stops them."
            )
            # SIGTERM ends the wait as Ctrl-C does.
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
        finally:
            for server in reversed(started):
                click.echo(f"stopping {server.name}")
                server.stop()
    except svc.ServiceUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
