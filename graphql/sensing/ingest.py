"""Ingest in the API: batches of device events and health readings from device platforms.

Only an integrator whose client has `devices:write` sends them, for the devices it
registered. Each item names its device by global ID, which carries the village: the
items are sorted by village here, and each village's share is stored in that village's
transaction in one round of statements. An item whose device is unknown, of another
client or of a village the client is not granted is refused on its own (NOT_FOUND,
the cases not told apart); the others go on. New alerts are handed to the notify
queue once the request has committed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ariadne import MutationType

from villagelink.graphql.core.context import RequestContext, runs_again_safely
from villagelink.graphql.core.errors import Forbidden, NotFound
from villagelink.graphql.core.ids import decode_id, encode_id, input_key, key_number
from villagelink.jobs.alerts import enqueue_alert_notifications
from villagelink.platform.identity.principal import INTEGRATOR
from villagelink.tenants import clock
from villagelink.tenants.sensing.alerting import ALERT
from villagelink.tenants.sensing.devices import DEVICE, NOT_YOURS
from villagelink.tenants.sensing.ingest import (
    IngestOutcome,
    Item,
    ItemError,
    check_batch_size,
    do_ingest_device_events,
    do_ingest_health_readings,
)
from villagelink.tenants.user_errors import NOT_FOUND, ActionFailed

mutation = MutationType()

Ingest = Callable[..., IngestOutcome]
# Ariadne gives digits an underscore of their own (spo2 arrives as spo_2): the column's name.
INPUT_NAMES = {"spo_2": "spo2"}


def _device_platform(ctx: RequestContext) -> str:
    """The client id of a device platform; FORBIDDEN for anyone else (devices report
    through their platform, not through the console)."""
    if not ctx.principal.has(INTEGRATOR) or not ctx.access.device_writers:
        raise Forbidden("only a device platform (an API client with devices:write) sends this")
    return ctx.principal.client_id


def _device(ctx: RequestContext, raw: str) -> tuple[str, int] | None:
    """The village and key of a device ID the caller may report for, or None."""
    try:
        gid = decode_id(raw, DEVICE)
    except NotFound:
        return None
    device_id = key_number(gid.key) if gid.village in ctx.access.device_writers else None
    return None if device_id is None else (gid.village, device_id)


def _item(
    devices: dict[str, tuple[str, int] | None], index: int, raw: dict, names_resident: bool
) -> tuple[str, Item] | ItemError:
    """The item with its device (and, for readings, its resident) as village keys, or
    why it is refused."""
    device = devices[raw["device"]]
    if device is None:
        return ItemError(index, "device", NOT_YOURS, NOT_FOUND)
    village, device_id = device
    data = dict(raw)
    del data["device"]
    resident = data.pop("resident", None)
    for given, name in INPUT_NAMES.items():
        if given in data:
            data[name] = data.pop(given)
    if names_resident:
        try:
            data["resident_id"] = input_key(village, resident, "Resident", "resident", "居民不存在")
        except ActionFailed as failed:
            error = failed.errors[0]
            return ItemError(index, error.field, error.message, error.code)
    return village, Item(index, device_id, data)


def _by_village(
    ctx: RequestContext, raw_items: list[dict], names_resident: bool
) -> tuple[dict[str, list[Item]], list[ItemError]]:
    found: dict[str, list[Item]] = {}
    errors: list[ItemError] = []
    # A batch names a few devices many times over: each ID is read once.
    devices = {raw: _device(ctx, raw) for raw in {item["device"] for item in raw_items}}
    for index, raw in enumerate(raw_items):
        resolved = _item(devices, index, raw, names_resident)
        if isinstance(resolved, ItemError):
            errors.append(resolved)
        else:
            village, item = resolved
            found.setdefault(village, []).append(item)
    return found, errors


def _ingest(info, raw_items: list[dict], field: str, ingest: Ingest, names_resident: bool):
    ctx: RequestContext = info.context
    owner = _device_platform(ctx)
    payload = {"accepted": 0, "duplicates": 0, "alerts": [], "item_errors": [], "user_errors": []}
    try:
        check_batch_size(raw_items, field)
    except ActionFailed as failed:
        return {**payload, "user_errors": failed.errors}
    now = clock.now()
    by_village, errors = _by_village(ctx, raw_items, names_resident)
    for village, items in by_village.items():
        outcome = ingest(ctx.tenant(village), ctx.actor, village, items, owner=owner, now=now)
        payload["accepted"] += outcome.accepted
        payload["duplicates"] += outcome.duplicates
        payload["alerts"] += [encode_id(ALERT, village, a.id) for a in outcome.alerts]
        errors += outcome.errors
        # The grid worker is told of a new alert at once, once it is committed.
        new = [a.id for a in outcome.alerts if a.new]
        if new:
            ctx.after_commit(
                partial(enqueue_alert_notifications, ctx.settings, village, new, "alert.raised")
            )
    payload["item_errors"] = sorted(errors, key=lambda e: e.index)
    return payload


# Both refuse or store on the reach kept with the client's token: each opens its villages'
# transactions before it writes anything, and stores a batch sent twice once.
@mutation.field("ingestDeviceEvents")
@runs_again_safely
def resolve_ingest_device_events(_obj, info, input: dict) -> dict:
    return _ingest(info, input["events"], "events", do_ingest_device_events, False)


@mutation.field("ingestHealthReadings")
@runs_again_safely
def resolve_ingest_health_readings(_obj, info, input: dict) -> dict:
    return _ingest(info, input["readings"], "readings", do_ingest_health_readings, True)


bindables = [mutation]
