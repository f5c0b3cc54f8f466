"""Fees: yuan parsing to integer fen, material totals, the 500-yuan threshold."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.domain.fees import (
    FeeSheet,
    MaterialLine,
    line_json,
    needs_agreement,
    parse_materials,
    parse_quantity,
    parse_yuan,
)
from server.domain.messages import DomainError


@pytest.mark.parametrize(
    ("text", "fen"), [("12.5", 1250), ("0", 0), ("500", 50000), ("1,200.05", 120005), ("¥3", 300)]
)
def test_yuan_parse_to_fen(text, fen):
    assert parse_yuan(text) == fen


@pytest.mark.parametrize("text", ["-1", "abc", "1.234", "", "99999999999"])
def test_bad_amounts_are_refused_naming_the_field(text):
    with pytest.raises(DomainError) as e:
        parse_yuan(text, field="labour_yuan")
    assert e.value.kind == "invalid" and e.value.field == "labour_yuan"


def test_customer_materials_are_not_charged():
    sheet = FeeSheet(
        catalog_price_fen=1500,
        labour_fen=2000,
        materials=(
            MaterialLine("水龙头", Decimal("1"), "个", 4500, "center"),
            MaterialLine("软管", Decimal("2"), "根", 1000, "customer", verified=True),
        ),
    )
    assert sheet.material_fen == 4500
    assert sheet.total_fen == 8000


def test_the_threshold_is_strictly_over_500_yuan():
    assert not needs_agreement(50000)
    assert needs_agreement(50001)


def test_material_lines_parse_to_fen_with_their_check():
    lines = parse_materials(
        [
            {"name": "水龙头", "quantity": "2", "unit": "个", "unit_price_yuan": "35.5"},
            {"name": "软管", "quantity": 1, "provided_by": "customer", "verified": "bad"},
        ]
    )
    assert [(m.name, m.quantity, m.unit_price_fen, m.charged_fen, m.verified) for m in lines] == [
        ("水龙头", Decimal("2"), 3550, 7100, None),
        ("软管", Decimal("1"), 0, 0, False),
    ]
    assert FeeSheet(labour_fen=100, materials=lines).total_fen == 7200
    assert line_json(lines[0])["quantity"] == "2" and isinstance(line_json(lines[0])["charged_fen"], int)


@pytest.mark.parametrize("raw", ["x", 3, [1], [{}] * 21])
def test_materials_that_are_no_list_of_lines_are_refused(raw):
    with pytest.raises(DomainError) as e:
        parse_materials(raw)
    assert e.value.kind == "invalid" and e.value.field.startswith("materials")


@pytest.mark.parametrize("text", ["0", "-1", "1.234", "abc", "100001", "1e3", ""])
def test_bad_quantities_are_refused(text):
    with pytest.raises(DomainError) as e:
        parse_quantity(text, field="q")
    assert e.value.field == "q"
