"""What a designer reads in a profile: per-mode dominant attributes, summaries, statistics.

Pure Python + numpy over parsed records and cluster labels; no model needed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from designer_ml.vlt import ParsedRecord

# A value is "dominant" in a mode when at least this share of the mode's records carry it.
DOMINANT_SHARE = 0.25
MAX_DOMINANT = 8
# The summary names a value when this share of the mode carries it.
SUMMARY_SHARE = 0.35
_SUMMARY_SLOTS: tuple[tuple[str, str], ...] = (
    ("style.overall", "{}"),
    ("style.mood", "{} mood"),
    ("garment_type", "{}"),
    ("attributes.silhouette", "{} silhouette"),
    ("attributes.neckline", "{} neckline"),
    ("attributes.length", "{} length"),
    ("colors.primary", "{} tones"),
    ("colors.finish", "{} finish"),
)


def dominant_attributes(members: Sequence[ParsedRecord]) -> dict[str, list[Any]]:
    """slot -> [value, count]: the most common value of each slot carried by enough members."""
    counts: dict[str, Counter[str]] = {}
    for rec in members:
        for slot, values in rec.categorical.items():
            counts.setdefault(slot, Counter()).update(values)
    floor = max(1, math.ceil(DOMINANT_SHARE * len(members)))
    ranked: list[tuple[int, str, str]] = []
    for slot, counter in counts.items():
        value, count = min(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        if count >= floor:
            ranked.append((count, slot, value))
    ranked.sort(key=lambda t: (-t[0], t[1]))
    return {slot: [value, count] for count, slot, value in ranked[:MAX_DOMINANT]}


def style_summary(dominant: dict[str, list[Any]], size: int) -> str:
    """A readable line such as "elegant, dress, a line silhouette, black tones"."""
    parts = []
    for slot, template in _SUMMARY_SLOTS:
        if slot in dominant and dominant[slot][1] >= SUMMARY_SHARE * size:
            parts.append(template.format(dominant[slot][0]))
    if not parts:
        parts = [
            f"{value} ({slot.split('.')[-1].replace('_', ' ')})" for slot, (value, _) in list(dominant.items())[:3]
        ]
    return ", ".join(parts) if parts else "mixed"


def clusters_of(parsed: Sequence[ParsedRecord], labels: np.ndarray, cluster_ids: Sequence[int]) -> list[dict[str, Any]]:
    """One entry per stable cluster id: size, percentage, dominant attributes, summary.

    ``labels`` (shape (n_records,)) holds stable ids; clusters with no record are kept (size 0)
    so a mode that a model still knows stays visible.
    """
    n = max(len(parsed), 1)
    out = []
    for cid in sorted(cluster_ids):
        idx = np.flatnonzero(labels == cid)
        members = [parsed[i] for i in idx]
        dominant = dominant_attributes(members) if members else {}
        out.append(
            {
                "id": int(cid),
                "size": int(len(idx)),
                "percentage": round(100.0 * len(idx) / n, 2),
                "dominant_attributes": dominant,
                "style_summary": style_summary(dominant, len(idx)) if members else "empty",
            }
        )
    return out


def statistics_of(parsed: Sequence[ParsedRecord]) -> dict[str, Any]:
    """Portfolio-wide distributions (value -> count) and how often each slot is filled."""

    def dist(slot: str) -> dict[str, int]:
        c: Counter[str] = Counter()
        for rec in parsed:
            c.update(rec.values(slot))
        return dict(c.most_common())

    filled: Counter[str] = Counter()
    for rec in parsed:
        filled.update(set(rec.categorical) | set(rec.numeric))
    n = max(len(parsed), 1)
    return {
        "garment_distribution": dist("garment_type"),
        "color_distribution": dist("colors.primary"),
        "style_distribution": dist("style.overall"),
        "slot_coverage": {slot: round(count / n, 4) for slot, count in sorted(filled.items())},
    }


def feature_importance(parsed: Sequence[ParsedRecord], labels: np.ndarray) -> list[dict[str, Any]]:
    """How much each slot tells the modes apart: mutual information between the slot's value
    (missing counts as a value) and the mode, normalised to sum to 1, largest first."""
    n = len(parsed)
    if n == 0 or len(set(labels.tolist())) < 2:
        return []
    slots = sorted({s for rec in parsed for s in rec.categorical})
    _, label_idx = np.unique(labels, return_inverse=True)
    k = int(label_idx.max()) + 1
    scores: dict[str, float] = {}
    for slot in slots:
        values = [rec.values(slot)[0] if rec.values(slot) else "" for rec in parsed]
        _, value_idx = np.unique(values, return_inverse=True)
        joint = np.zeros((int(value_idx.max()) + 1, k))
        np.add.at(joint, (value_idx, label_idx), 1.0)
        joint /= n
        outer = joint.sum(1, keepdims=True) @ joint.sum(0, keepdims=True)
        nz = joint > 0
        scores[slot] = float(np.sum(joint[nz] * np.log(joint[nz] / outer[nz])))
    total = sum(scores.values())
    if total <= 0:
        return []
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"attribute": slot, "importance": round(score / total, 4)} for slot, score in ranked if score > 0]
