"""The account directory as mutations use it: a directory that cannot act refuses as a
userError, before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from villagelink.platform.identity.accounts import (
    AccountDirectory,
    DirectoryUnavailable,
    account_directory,
)
from villagelink.platform.identity.keycloak_admin import KeycloakProvisioningError
from villagelink.tenants.user_errors import ActionFailed, UserError

# The identity provider could not make or change the login or client: nothing was written.
UNAVAILABLE = "UNAVAILABLE"


def with_directory(ctx: Any, act: Callable[[AccountDirectory], dict]) -> dict:
    """`act` with the directory the settings choose (Keycloak or the development issuer's);
    one that cannot do it (no such directory, the realm refusing) gives the userError
    UNAVAILABLE, in Chinese."""
    try:
        return act(account_directory(ctx.settings, ctx.runtime.db))
    except (DirectoryUnavailable, KeycloakProvisioningError) as exc:
        raise ActionFailed(
            [UserError(None, f"身份服务无法完成此操作：{exc}", UNAVAILABLE)]
        ) from exc
