"""Unit tests of the rules behind resident records: ID numbers, validation, masking."""

from __future__ import annotations

from datetime import date

import pytest

from villagelink.tenants import id_numbers
from villagelink.tenants.residents.validation import NewResidentSchema, TagSchema
from villagelink.tenants.sensitive import mask_id_number, mask_phone
from villagelink.tenants.user_errors import ActionFailed, validated


def test_known_id_number_checksums():
    # Published examples of the GB 11643 check character, X included.
    assert id_numbers.has_valid_checksum("11010519491231002X")
    assert id_numbers.has_valid_checksum("440524188001010014")
    assert not id_numbers.has_valid_checksum("440524188001010015")
    assert not id_numbers.has_valid_checksum("44052418800101001")


def test_compose_round_trips():
    number = id_numbers.compose("120111", date(1990, 2, 28), 17)
    assert id_numbers.has_valid_checksum(number)
    assert id_numbers.birth_date(number) == date(1990, 2, 28)
    assert id_numbers.gender(number) == "male"
    assert id_numbers.gender(id_numbers.compose("120111", date(1990, 2, 28), 18)) == "female"


def test_impossible_birth_date_is_none():
    first17 = "12011119900230017"
    assert id_numbers.birth_date(first17 + id_numbers.check_character(first17)) is None


def test_masks():
    assert mask_id_number("110101199003071234") == "110101********1234"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number(None) is None and mask_phone("") == ""
    assert mask_phone("12345") == "*****"


def errors_of(schema, data) -> dict:
    with pytest.raises(ActionFailed) as failed:
        validated(schema(), data)
    return {(e.field, e.code): e.message for e in failed.value.errors}


def test_required_fields_in_chinese():
    assert errors_of(NewResidentSchema, {}) == {
        ("name", "REQUIRED"): "此项为必填项",
        ("idNumber", "REQUIRED"): "此项为必填项",
    }


def test_lower_case_x_is_accepted():
    loaded = validated(NewResidentSchema(), {"name": "张三", "id_number": "11010519491231002x"})
    assert loaded["id_number"] == "11010519491231002x"
    assert id_numbers.normalise(loaded["id_number"]) == "11010519491231002X"


def test_future_birth_date_in_id_number_is_refused():
    number = id_numbers.compose("120111", date(2099, 1, 1), 11)
    assert errors_of(NewResidentSchema, {"name": "未来", "id_number": number}) == {
        ("idNumber", "INVALID"): "身份证号码中的出生日期无效"
    }


def test_unknown_tag_is_refused():
    assert errors_of(TagSchema, {"tag": "vip"}) == {("tag", "INVALID"): "标签取值无效"}
