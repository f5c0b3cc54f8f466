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
