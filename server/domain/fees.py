"""Fees in integer fen (never float): parsing yuan, material lines, totals, the 500-yuan rule."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from server.domain.messages import N_, DomainError

AGREEMENT_THRESHOLD_FEN = 50_000  # over 500 yuan: signed agreement and prepayment first
MAX_FEN = 100_000_000  # one million yuan: anything above is a typing slip
_YUAN_RE = re.compile(r"^\d{1,9}(\.\d{1,2})?$")


def parse_yuan(text: str, *, field: str = "amount") -> int:
    """'12.5' → 1250 fen; refuses negatives, more than two decimals and absurd amounts."""
    raw = (text or "").strip().replace(",", "").replace("¥", "").replace("元", "")
    if not _YUAN_RE.match(raw):
        raise DomainError("invalid", N_("Give an amount in yuan, e.g. 12.50"), field=field)
    fen = int(Decimal(raw) * 100)
    if fen > MAX_FEN:
        raise DomainError("invalid", N_("The amount is too large"), field=field)
    return fen


def needs_agreement(total_fen: int) -> bool:
    return total_fen > AGREEMENT_THRESHOLD_FEN


@dataclass(frozen=True)
class MaterialLine:
    name: str
    quantity: Decimal
    unit: str
    unit_price_fen: int
    provided_by: str  # "center" (服务中心) | "customer" (业主)
    verified: bool | None = None  # customer materials: 合格 True / 不合格 False

    @property
    def charged_fen(self) -> int:
        """The customer pays for what the center provides; their own materials cost nothing here."""
        if self.provided_by != "center":
            return 0
        return int((self.quantity * self.unit_price_fen).to_integral_value())


@dataclass(frozen=True)
class FeeSheet:
    catalog_price_fen: int = 0
    labour_fen: int = 0
    materials: tuple[MaterialLine, ...] = ()

    @property
    def material_fen(self) -> int:
        return sum(m.charged_fen for m in self.materials)

    @property
    def total_fen(self) -> int:
        return self.catalog_price_fen + self.labour_fen + self.material_fen


MAX_LINES = 20
MAX_QUANTITY = Decimal(10000)
VERDICTS = {"ok": True, "bad": False}  # customer materials: 合格 / 不合格


def parse_quantity(raw: object, *, field: str) -> Decimal:
    """'2' / '1.5' → Decimal; refuses zero, negatives, more than two decimals and absurd amounts."""
    text = str(raw if raw is not None else "").strip()
    if not re.match(r"^\d{1,5}(\.\d{1,2})?$", text):
        raise DomainError("invalid", N_("Give a quantity, e.g. 1 or 2.5"), field=field)
    qty = Decimal(text)
    if qty <= 0 or qty > MAX_QUANTITY:
        raise DomainError("invalid", N_("Give a quantity, e.g. 1 or 2.5"), field=field)
    return qty


def parse_material(raw: object, *, field: str) -> MaterialLine:
    """One material line (name, quantity, unit, unit price in yuan, provided by, verdict).

    Customer-provided materials must carry the verdict of their check (合格 ok / 不合格 bad).
    """
    if not isinstance(raw, dict):
        raise DomainError("invalid", N_("Invalid value"), field=field)
    name = str(raw.get("name") or "").replace("\x00", "").strip()
    if not name:
        raise DomainError("invalid", N_("This field is required"), field=f"{field}.name")
    if len(name) > 100:
        raise DomainError("invalid", N_("At most %(max)s characters"), field=f"{field}.name", max=100)
    unit = str(raw.get("unit") or "").replace("\x00", "").strip()
    if len(unit) > 10:
        raise DomainError("invalid", N_("At most %(max)s characters"), field=f"{field}.unit", max=10)
    qty = parse_quantity(raw.get("quantity", "1"), field=f"{field}.quantity")
    provided_by = str(raw.get("provided_by") or "center").strip()
    if provided_by not in ("center", "customer"):
        raise DomainError(
            "invalid", N_("Unknown value %(value)s"), field=f"{field}.provided_by", value=provided_by[:20]
        )
    price_raw = raw.get("unit_price_yuan")
    price = parse_yuan(str(price_raw), field=f"{field}.unit_price_yuan") if price_raw not in (None, "") else 0
    if provided_by == "center" and price_raw in (None, ""):
        raise DomainError("invalid", N_("This field is required"), field=f"{field}.unit_price_yuan")
    verified: bool | None = None
    if provided_by == "customer":
        verdict = str(raw.get("verified") or "").strip()
        if verdict not in VERDICTS:
            raise DomainError(
                "invalid",
                N_("Record whether the customer's material passed the check"),
                field=f"{field}.verified",
            )
        verified = VERDICTS[verdict]
    line = MaterialLine(name, qty, unit, price, provided_by, verified)
    if line.charged_fen > MAX_FEN:
        raise DomainError("invalid", N_("The amount is too large"), field=f"{field}.quantity")
    return line


def parse_materials(raw: object, *, field: str = "materials") -> tuple[MaterialLine, ...]:
    """A list of material lines; at most MAX_LINES."""
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list):
        raise DomainError("invalid", N_("Invalid value"), field=field)
    if len(raw) > MAX_LINES:
        raise DomainError("invalid", N_("At most %(max)s lines"), field=field, max=MAX_LINES)
    return tuple(parse_material(item, field=f"{field}[{i}]") for i, item in enumerate(raw))


def line_json(m: MaterialLine) -> dict[str, object]:
    """A material line as the history event and the database keep it."""
    return {
        "name": m.name,
        "quantity": str(m.quantity),
        "unit": m.unit,
        "unit_price_fen": m.unit_price_fen,
        "provided_by": m.provided_by,
        "verified": m.verified,
        "charged_fen": m.charged_fen,
    }
