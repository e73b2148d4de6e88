"""What a selection covers: attribute values of the pool, and of the designer's style modes.

``per_attribute``: for every categorical slot of the pool, how many of its distinct values the
selection holds. ``gaps``: the dominant attribute values of the designer's style modes (profile
clusters) that no selected image has; stored on the profile, they tell the next ``optimize``
what this round lacked (``in_pool`` false: the generation never produced it; true: the pool had
it but the selection left it out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from designer_ml.vlt import ParsedRecord, normalize_key, normalize_value

# Missing values listed per slot (most frequent in the pool first).
MAX_MISSING_LISTED = 10


def value_counts(records: Iterable[ParsedRecord]) -> dict[str, dict[str, int]]:
    """slot -> value -> how many records hold it (what ``Vocabulary.fit`` counts as categories)."""
    counts: dict[str, dict[str, int]] = {}
    for rec in records:
        for slot, values in rec.categorical.items():
            per_slot = counts.setdefault(slot, {})
            for v in values:
                per_slot[v] = per_slot.get(v, 0) + 1
    return counts


def _held(records: Iterable[ParsedRecord]) -> set[tuple[str, str]]:
    return {(slot, v) for rec in records for slot, values in rec.categorical.items() for v in values}


def per_attribute(
    pool_counts: Mapping[str, Mapping[str, int]], selected: Sequence[ParsedRecord]
) -> tuple[dict[str, Any], float]:
    """Per slot ``{"covered", "total", "ratio", "missing"}`` and the share of all pool values covered.

    ``pool_counts`` is slot -> value -> count over the pool (the pool vocabulary's categories),
    so the cost is O(k) in the selection besides the pool's distinct values.
    """
    held = _held(selected)
    report: dict[str, Any] = {}
    n_values = n_covered = 0
    for slot in sorted(pool_counts):
        values = sorted(pool_counts[slot].items(), key=lambda vc: (-vc[1], vc[0]))
        missing = [v for v, _ in values if (slot, v) not in held]
        covered = len(values) - len(missing)
        n_values += len(values)
        n_covered += covered
        report[slot] = {
            "covered": covered,
            "total": len(values),
            "ratio": round(covered / len(values), 4) if values else 1.0,
            "missing": missing[:MAX_MISSING_LISTED],
        }
    return report, (n_covered / n_values if n_values else 1.0)


def attribute_coverage(pool: Sequence[ParsedRecord], selected: Sequence[int]) -> float:
    """Share of the pool's distinct (slot, value) pairs that the selected indices hold."""
    return per_attribute(value_counts(pool), [pool[i] for i in selected])[1]


def _slot_name(slot: str) -> str:
    return ".".join(normalize_key(part) for part in str(slot).split("."))


def _dominant_value(entry: Any) -> str | None:
    # The profile writes slot -> [value, count]; a bare value or {"value": ...} is taken too.
    if isinstance(entry, (list, tuple)) and entry:
        entry = entry[0]
    elif isinstance(entry, Mapping):
        entry = entry.get("value")
    if isinstance(entry, (str, int, float)) and not isinstance(entry, bool):
        text = normalize_value(str(entry))
        return text or None
    return None


def style_modes(document: Mapping[str, Any] | None) -> list[tuple[Any, str, str]]:
    """(cluster id, slot, value) of every dominant attribute of every style mode.

    ``document`` is a style manifest or a profile: ``{"clusters": [{"id", "dominant_attributes":
    {slot: [value, count]}}]}`` (``cluster_id`` is read as ``id`` too).
    """
    if not isinstance(document, Mapping):
        return []
    clusters = document.get("clusters")
    if isinstance(clusters, Mapping):
        clusters = [{"id": key, **value} for key, value in clusters.items() if isinstance(value, Mapping)]
    modes: list[tuple[Any, str, str]] = []
    for position, cluster in enumerate(clusters if isinstance(clusters, list) else []):
        if not isinstance(cluster, Mapping):
            continue
        cluster_id = cluster.get("id", cluster.get("cluster_id", position))
        dominant = cluster.get("dominant_attributes")
        if not isinstance(dominant, Mapping):
            continue
        for slot, entry in dominant.items():
            value = _dominant_value(entry)
            if value is not None:
                modes.append((cluster_id, _slot_name(slot), value))
    return modes


def gaps(
    modes: Sequence[tuple[Any, str, str]],
    pool_counts: Mapping[str, Mapping[str, int]],
    selected: Sequence[ParsedRecord],
) -> list[dict[str, Any]]:
    """Style-mode values no selected image holds: ``[{"attribute", "value", "cluster", "in_pool"}]``."""
    held = _held(selected)
    return [
        {"attribute": slot, "value": value, "cluster": cluster, "in_pool": value in pool_counts.get(slot, {})}
        for cluster, slot, value in modes
        if (slot, value) not in held
    ]
