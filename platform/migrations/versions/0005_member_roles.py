"""member roles: what village and region roles may do outside their schemas, granted once

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Village roles had their USAGE on the platform and exchange schemas, INSERT on the audit
log and SELECT on the exchange granted one by one, and region roles theirs on the
exchange. PostgreSQL keeps an object's grants in its catalog row, which may not exceed
8 KB: at about 2,100 villages the next GRANT failed ("row is too big") and no village
could be created. Now `vl_villages` and `vl_regions` hold those grants, and every
village or region role is a member of its one; the grants to each role are revoked.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _members() -> list[tuple[str, str]]:
    """(member role, village or region role) for every village and region role."""
    from villagelink.platform.db import REGION_PREFIX, REGIONS_ROLE, TENANT_PREFIX, VILLAGES_ROLE

    found = []
    for prefix, member_role in ((TENANT_PREFIX, VILLAGES_ROLE), (REGION_PREFIX, REGIONS_ROLE)):
        pattern = prefix.replace("_", "\\_") + "%"
        roles = op.get_bind().exec_driver_sql(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %(p)s", {"p": pattern}
        )
        found += [(member_role, role) for role in roles.scalars()]
    return found


def upgrade() -> None:
    from villagelink.tenants.provisioning import MEMBER_GRANTS, ensure_member_roles

    members = _members()
    # Revoked first: where the rows are full, no grant fits until they shrink.
    for member_role, role in members:
        for privilege, target in MEMBER_GRANTS[member_role]:
            op.execute(f'REVOKE {privilege} ON {target} FROM "{role}"')
    ensure_member_roles(op.get_bind())
    for member_role, role in members:
        op.execute(f'GRANT "{member_role}" TO "{role}"')


def downgrade() -> None:
    # Back to grants role by role: only where they still fit (see above).
    from villagelink.tenants.provisioning import MEMBER_GRANTS

    for member_role, role in _members():
        for privilege, target in MEMBER_GRANTS[member_role]:
            op.execute(f'GRANT {privilege} ON {target} TO "{role}"')
        op.execute(f'REVOKE "{member_role}" FROM "{role}"')
    for member_role, grants in MEMBER_GRANTS.items():
        for privilege, target in grants:
            op.execute(f'REVOKE {privilege} ON {target} FROM "{member_role}"')
