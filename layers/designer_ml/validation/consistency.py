"""Consistency of a generated image's VLT analysis with the target spec, slot by slot.

Both records go through :func:`designer_ml.vlt.parse_record` first, so "A-Line", "a line" and
"a-line" are one value and "sleeveLength" / "sleeve_length" one slot. Only the slots the
target names count: an image is not marked down for attributes the spec leaves open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from designer_ml.vlt import DEFAULT_GROUP_WEIGHTS, ParsedRecord, group_of

GARMENT_TYPE = "garment_type"
# Credit for a slot the image's analysis does not report at all: unverified, not wrong (real
# analyser output leaves most attributes out; see data/README.md).
MISSING_CREDIT = 0.5
# Credit for a close value: one value's words contain the other's ("blue" / "navy blue",
# "v neck" / "deep v neck"). Never for the garment type: "shirt" and "t shirt" are two garments.
CLOSE_CREDIT = 0.5
DEFAULT_THRESHOLD = 0.6


@dataclass
class Consistency:
    """How one image's analysis matches the target.

    Attributes
    ----------
    score : float in [0, 1]
        Weighted mean credit over the target's slots.
    matches : dict of slot -> bool
        Per target slot: every target value found in the image.
    wrong_garment : bool
        The image reports a garment type and it is not the target's.
    reasons : list of str
        One sentence per slot that did not match, in the target's slot order.
    """

    score: float
    matches: dict[str, bool]
    wrong_garment: bool
    reasons: list[str] = field(default_factory=list)


def slot_weight(slot: str) -> float:
    """The slot's weight in the score: the encoder's default group weights (vlt.py)."""
    if slot in DEFAULT_GROUP_WEIGHTS:
        return DEFAULT_GROUP_WEIGHTS[slot]
    return DEFAULT_GROUP_WEIGHTS.get(group_of(slot), 1.0)


def _close(a: str, b: str) -> bool:
    wa, wb = set(a.split()), set(b.split())
    return bool(wa) and bool(wb) and (wa <= wb or wb <= wa)


def _credit(expected: tuple[str, ...], got: tuple[str, ...], allow_close: bool) -> tuple[float, bool]:
    """Mean credit over the target's values and whether all were found exactly."""
    total = 0.0
    exact = True
    for value in expected:
        if value in got:
            total += 1.0
        else:
            exact = False
            if allow_close and any(_close(value, g) for g in got):
                total += CLOSE_CREDIT
    return total / len(expected), exact


def _display(values: tuple[str, ...]) -> str:
    return " or ".join(values) if len(values) > 1 else values[0]


def compare(target: ParsedRecord, image: ParsedRecord) -> Consistency:
    """Compare an image's parsed analysis with the parsed target (categorical slots only).

    Numbers (``confidence``) are analyser bookkeeping, not spec, and never count.
    """
    num = 0.0
    den = 0.0
    matches: dict[str, bool] = {}
    reasons: list[str] = []
    wrong_garment = False
    for slot, expected in target.categorical.items():
        w = slot_weight(slot)
        got = image.values(slot)
        if not got:
            credit, exact = MISSING_CREDIT, False
            reasons.append(f"{slot}: expected {_display(expected)}, not reported for this image")
        else:
            credit, exact = _credit(expected, got, allow_close=slot != GARMENT_TYPE)
            if not exact:
                close = credit > 0.0
                reasons.append(
                    f"{slot}: expected {_display(expected)}, got {_display(got)}" + (" (close)" if close else "")
                )
                if slot == GARMENT_TYPE and not close:
                    wrong_garment = True
        matches[slot] = exact
        num += w * credit
        den += w
    score = num / den if den else 1.0
    return Consistency(score=float(score), matches=matches, wrong_garment=wrong_garment, reasons=reasons)
