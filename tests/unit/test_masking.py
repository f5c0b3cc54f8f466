"""The wall display never shows a customer's full name or phone (DOMAIN.md §1)."""

from __future__ import annotations

import pytest

from server.board.masking import mask_customer, mask_name, mask_phone


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张**"),
        ("张伟明", "张**"),
        ("欧阳娜娜", "欧**"),
        ("王", "王**"),
        (" 李四 ", "李**"),
        ("John Smith", "J**"),
        ("", ""),
        (None, ""),
    ],
)
def test_a_name_keeps_only_its_first_character(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812341234", "138****1234"),
        ("02112345678", "021****5678"),
        ("8613812341234", "861******1234"),
        ("12345678", "123*5678"),
        ("1234567", "*****67"),
        ("12345", "***45"),
        ("12", "**"),
        ("", ""),
        (None, ""),
    ],
)
def test_a_phone_hides_its_middle(phone, masked):
    assert mask_phone(phone) == masked


def test_a_mobile_number_never_shows_more_than_seven_digits():
    masked = mask_phone("13912345678")
    assert sum(ch.isdigit() for ch in masked) == 7 and "2345" not in masked[3:7]


def test_customer_joins_name_and_phone():
    assert mask_customer("张三", "13812341234") == "张** · 138****1234"
    assert mask_customer(None, "13812341234") == "138****1234"
