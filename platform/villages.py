"""Villages as platform admins keep them: provision, disable, enable; and as their own
admins keep them: name, address and contact phone (设置 → 村庄信息).

One code path for the command line (`villagelink tenants create|disable|enable`) and the
GraphQL mutations (`createVillage`, `disableVillage`, `enableVillage`): the village's
schema, role, migrations and bucket (tenants/provisioning.py), its Keycloak group when a
realm is configured, its place in the region's open region-wide agreements, and an
audit entry. Input is checked first, with reasons in Chinese, so that the console and the
operator are refused alike and nothing is provisioned half-way for a typo.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from keycloak import KeycloakError
from marshmallow import Schema, ValidationError, fields, validate, validates
from sqlalchemy import func, select, update

from villagelink.platform import models as pm
from villagelink.platform.audit import Actor, record
from villagelink.platform.db import SLUG_PATTERN, Database
from villagelink.platform.identity import keycloak_admin
from villagelink.platform.linkage.agreements import join_region_agreements
from villagelink.platform.settings import Settings
from villagelink.storage.exports import REGION_SPACE_PREFIX
from villagelink.storage.store import ObjectStore
from villagelink.tenants import provisioning
from villagelink.tenants.fields import FreeText, messages, mobile_or_landline_field, optional_text
from villagelink.tenants.user_errors import (
    DUPLICATE,
    INVALID,
    NOT_FOUND,
    Coded,
    refused,
    validated,
)

VILLAGE = "Village"
# The identity provider refused or failed; what was provisioned stands, and asking
# again (the steps are idempotent) completes the rest.
IDENTITY_UNAVAILABLE = "IDENTITY_UNAVAILABLE"


class NewVillageSchema(Schema):
    slug = fields.String(
        required=True,
        validate=validate.Regexp(
            SLUG_PATTERN,
            error=Coded("村庄标识须为2-39位小写字母、数字或下划线，以字母开头", INVALID),
        ),
        error_messages=messages(),
    )
    name = FreeText("村庄名称", 50, required=True)
    region = fields.String(required=True, error_messages=messages())

    @validates("slug")
    def _not_a_region_space(self, value: str, **_kwargs) -> None:
        if value.startswith(REGION_SPACE_PREFIX):
            raise ValidationError(
                Coded(f"村庄标识不能以 {REGION_SPACE_PREFIX} 开头（留给片区使用）", INVALID)
            )


class VillageInfoSchema(Schema):
    """What a village's admin may change; what is left out stays, null clears."""

    name = FreeText("村庄名称", 50)
    address = optional_text("村委会地址", 200)
    contact_phone = mobile_or_landline_field()


@contextmanager
def _realm(slug: str) -> Iterator[None]:
    """Keycloak's refusals and failures as a userError: the database side is done."""
    try:
        yield
    except (KeycloakError, keycloak_admin.KeycloakProvisioningError) as exc:
        raise refused(
            None,
            f"村庄 {slug} 的数据已就绪，但身份认证服务未能完成设置（{exc}），请稍后重试",
            IDENTITY_UNAVAILABLE,
        ) from exc


def provision_village(
    settings: Settings,
    db: Database,
    store: ObjectStore | None,
    actor: Actor,
    data: dict,
) -> dict:
    """Create the village `data` names (slug, name, region) or bring it up to date: the
    same slug again with the same name and region converges (a rerun after a failure
    half-way); with another name or region it is refused as taken. Returns the
    village's platform row."""
    values = validated(NewVillageSchema(), data)
    slug, name, region = values["slug"], values["name"], values["region"]
    with db.platform() as conn:
        if not conn.execute(select(pm.regions.c.id).where(pm.regions.c.id == region)).first():
            raise refused("region", f"片区 {region} 不存在", NOT_FOUND)
        taken = conn.execute(
            select(pm.tenants.c.name, pm.tenants.c.region_id).where(pm.tenants.c.slug == slug)
        ).first()
    if taken is not None and tuple(taken) != (name, region):
        raise refused("slug", f"村庄标识 {slug} 已被{taken.name}使用", DUPLICATE)
    provisioning.create_village(db, slug, name, region, store)
    with db.platform() as conn:
        joined = join_region_agreements(conn, actor, slug)
        record(
            conn,
            actor,
            village=slug,
            action="village.create",
            subject_type=VILLAGE,
            subject_id=slug,
            details={"name": name, "region": region, "agreements_joined": joined},
        )
    if settings.keycloak_url:
        with _realm(slug):
            keycloak_admin.sync_village(settings, slug, name, region)
    return village_row(db, slug)


def village_row(db: Database, slug: str) -> dict:
    """The village's platform row with its region's name (what the API shows), whatever
    its status: disabled villages are out of every caller's reach but their admins'."""
    with db.platform() as conn:
        row = (
            conn.execute(
                select(pm.tenants, pm.regions.c.name.label("region_name"))
                .join(pm.regions, pm.regions.c.id == pm.tenants.c.region_id)
                .where(pm.tenants.c.slug == slug)
            )
            .mappings()
            .first()
        )
    if row is None:
        raise refused("slug", f"村庄 {slug} 不存在", NOT_FOUND)
    return dict(row)


def _set_status(
    settings: Settings, db: Database, actor: Actor, slug: str, status: str
) -> tuple[dict, list[str]]:
    """Disable or enable the village, then its accounts in the realm (when configured);
    the village's row and the accounts turned off or on. Idempotent, so that asking
    again completes what a realm failure left undone; audited when something changed."""
    before = village_row(db, slug)["status"]
    change = (
        keycloak_admin.disable_village if status == "disabled" else keycloak_admin.enable_village
    )
    with _realm(slug):
        accounts = change(settings, db, slug)
    if before == status and not accounts:
        return village_row(db, slug), accounts
    with db.platform() as conn:
        record(
            conn,
            actor,
            village=slug,
            action="village.disable" if status == "disabled" else "village.enable",
            subject_type=VILLAGE,
            subject_id=slug,
            details={"accounts": accounts},
        )
    return village_row(db, slug), accounts


def disable_village(
    settings: Settings, db: Database, actor: Actor, slug: str
) -> tuple[dict, list[str]]:
    """Stop serving the village and disable the accounts only it gave access to."""
    return _set_status(settings, db, actor, slug, "disabled")


def enable_village(
    settings: Settings, db: Database, actor: Actor, slug: str
) -> tuple[dict, list[str]]:
    """Serve the village again and give back the accounts its disabling turned off."""
    return _set_status(settings, db, actor, slug, "active")


def update_village(settings: Settings, db: Database, actor: Actor, slug: str, data: dict) -> dict:
    """Change the village's name, address or contact phone (the API checks that the caller
    manages the village). A new name goes to the realm's group too, when one is configured,
    so that tokens and the console name the village alike. Audited with what changed."""
    values = validated(VillageInfoSchema(), data)
    values = {k: v or None for k, v in values.items() if k in data}
    before = village_row(db, slug)
    changed = {k: v for k, v in values.items() if before[k] != v}
    if not changed:
        return before
    with db.platform() as conn:
        conn.execute(
            update(pm.tenants)
            .where(pm.tenants.c.slug == slug)
            .values(**changed, updated_at=func.now())
        )
        record(
            conn,
            actor,
            village=slug,
            action="village.update",
            subject_type=VILLAGE,
            subject_id=slug,
            fields=sorted(changed),
            details=changed,
        )
    if "name" in changed and settings.keycloak_url:
        with _realm(slug):
            keycloak_admin.sync_village(settings, slug, changed["name"], before["region_id"])
    return village_row(db, slug)
