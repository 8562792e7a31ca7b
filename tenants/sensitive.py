"""ID numbers and phones: how they look when the caller may not see them whole, and the
reason a caller must give to see them whole (API reads and exports alike)."""

from __future__ import annotations

# Two Chinese words, or a short English phrase: enough to say why, not a placeholder.
MIN_REASON_LENGTH = 4
MAX_REASON_LENGTH = 500
REASON_REQUIRED = f"查看或导出完整的身份证号码和电话须说明理由（至少 {MIN_REASON_LENGTH} 个字）"


def _mask(value: str | None, keep_head: int, keep_tail: int) -> str | None:
    if not value:
        return value
    if len(value) <= keep_head + keep_tail + 3:
        return "*" * len(value)
    return value[:keep_head] + "*" * (len(value) - keep_head - keep_tail) + value[-keep_tail:]


def mask_id_number(value: str | None) -> str | None:
    """110101199003071234 -> 110101********1234 (area code and last four stay)."""
    return _mask(value, 6, 4)


def mask_phone(value: str | None) -> str | None:
    """13812345678 -> 138****5678."""
    return _mask(value, 3, 4)


def is_reason(reason: str | None) -> bool:
    """Whether `reason` says why: at least MIN_REASON_LENGTH characters once trimmed."""
    return reason is not None and MIN_REASON_LENGTH <= len(reason.strip()) <= MAX_REASON_LENGTH
