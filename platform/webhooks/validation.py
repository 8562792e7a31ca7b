"""What a subscription may say: an http(s) URL, and event types from EVENT_TYPES."""

from __future__ import annotations

from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, pre_load

from villagelink.platform.webhooks import EVENT_TYPES
from villagelink.tenants.fields import messages
from villagelink.tenants.user_errors import INVALID, Coded

MAX_URL_LENGTH = 2000


def check_url(url: str) -> None:
    """A URL we can POST to. Credentials in it would show in every listing and log,
    so they are refused: the secret is what proves the sender."""
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(Coded(f"网址不能超过{MAX_URL_LENGTH}个字符", INVALID))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValidationError(Coded("网址格式不正确", INVALID)) from exc
    if parts.scheme not in ("http", "https"):
        raise ValidationError(Coded("网址须以 http:// 或 https:// 开头", INVALID))
    if not parts.hostname:
        raise ValidationError(Coded("网址缺少主机名", INVALID))
    if parts.username is not None or parts.password is not None:
        raise ValidationError(Coded("网址不能包含用户名或密码", INVALID))
    if any(c.isspace() for c in url):
        raise ValidationError(Coded("网址不能包含空白字符", INVALID))


def check_event_types(event_types: list[str]) -> None:
    """At least one, each from EVENT_TYPES; the error names the field, not an index."""
    if not event_types:
        raise ValidationError(Coded("请至少选择一种事件类型", INVALID))
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise ValidationError(Coded(f"事件类型取值无效：{'、'.join(unknown)}", INVALID))


class SubscriptionSchema(Schema):
    url = fields.String(required=True, validate=check_url, error_messages=messages())
    event_types = fields.List(
        fields.String(error_messages=messages()),
        required=True,
        validate=check_event_types,
        error_messages=messages(),
    )

    @pre_load
    def _trim_url(self, data: dict, **_kwargs) -> dict:
        url = data.get("url")
        return {**data, "url": url.strip()} if isinstance(url, str) else data
