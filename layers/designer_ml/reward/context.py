"""The context of one optimize request: the style mode the spec falls in, coverage gaps.

Style mode: the designer's style bundle (``designer_ml.style.bundle``, ONNX) places the spec
in a cluster; without a bundle, the request's ``style_profile`` (or the stored profile
document) is matched by the attribute values its clusters are dominated by.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from designer_ml.observability import logger
from designer_ml.reward import vocabulary as vocab
from designer_ml.vlt import ParsedRecord, normalize_value

# Spec slots a coverage gap may fill in the garment description when the spec leaves them empty.
DESCRIPTION_SLOTS = frozenset(
    {
        "colors.primary",
        "colors.finish",
        "attributes.silhouette",
        "attributes.length",
        "attributes.neckline",
        "attributes.sleeve_length",
        "attributes.pattern",
        "attributes.fabric",
        "style.overall",
    }
)
MAX_COVERAGE_PHRASES = 4


@dataclass
class StyleMode:
    """Where the spec falls among the designer's style modes."""

    cluster_id: int | None = None
    probs: dict[int, float] = field(default_factory=dict)
    summary: str | None = None
    dominant: dict[str, str] = field(default_factory=dict)
    source: str | None = None  # "bundle", "request", "profile" or None

    @property
    def style_values(self) -> list[str]:
        values = [v for k, v in self.dominant.items() if k.startswith("style") or k in ("style_overall", "mood")]
        return values + ([self.summary] if self.summary else [])


def _clusters(document: Any) -> list[Mapping[str, Any]]:
    if not isinstance(document, Mapping):
        return []
    clusters = document.get("clusters")
    if not isinstance(clusters, list):
        return []
    return [
        c
        for c in clusters
        if isinstance(c, Mapping) and isinstance(c.get("id"), int | float) and not isinstance(c.get("id"), bool)
    ]


def _dominant(cluster: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    dominant = cluster.get("dominant_attributes")
    if isinstance(dominant, Mapping):
        for slot, value in dominant.items():
            v = value[0] if isinstance(value, list | tuple) and value else value
            if isinstance(v, str) and v.strip():
                out[str(slot)] = normalize_value(v)
    return out


def match_profile(document: Any, parsed: ParsedRecord, source: str) -> StyleMode:
    """The cluster of a Profile-like document whose dominant values the spec shares most.

    Ties go to the larger cluster (its ``percentage``); probabilities are a softmax of
    two nats per shared value plus the log share.
    """
    clusters = _clusters(document)
    if not clusters:
        return StyleMode()
    spec_values = {v for values in parsed.categorical.values() for v in values}
    logits = []
    for cluster in clusters:
        shared = sum(1 for v in _dominant(cluster).values() if v in spec_values)
        share = cluster.get("percentage")
        share = float(share) if isinstance(share, int | float) and not isinstance(share, bool) and share > 0 else 1.0
        logits.append(2.0 * shared + math.log(share))
    logits_arr = np.array(logits)
    probs = np.exp(logits_arr - logits_arr.max())
    probs /= probs.sum()
    best = int(np.argmax(probs))
    cluster = clusters[best]
    summary = cluster.get("style_summary")
    return StyleMode(
        cluster_id=int(cluster["id"]),
        probs={int(c["id"]): float(p) for c, p in zip(clusters, probs, strict=True)},
        summary=summary if isinstance(summary, str) else None,
        dominant=_dominant(cluster),
        source=source,
    )


def _from_bundle(bundle: Any, raw: Mapping[str, Any], parsed: ParsedRecord) -> StyleMode:
    cluster_ids, probs = bundle.place([dict(raw)])
    cluster_id = int(np.asarray(cluster_ids).reshape(-1)[0])
    row = np.asarray(probs, dtype=float).reshape(1, -1)[0]
    manifest = getattr(bundle, "manifest", None) or {}
    clusters = _clusters(manifest)
    by_id = {int(c["id"]): c for c in clusters}
    ids = getattr(bundle, "cluster_ids", None)
    ids = [int(i) for i in np.asarray(ids).reshape(-1)] if ids is not None else None
    if ids is not None and len(ids) == len(row):
        prob_map = {int(i): float(p) for i, p in zip(ids, row, strict=True)}
    elif len(clusters) == len(row):
        prob_map = {int(c["id"]): float(p) for c, p in zip(clusters, row, strict=True)}
    else:
        prob_map = {cluster_id: float(row.max()) if row.size else 1.0}
    cluster = by_id.get(cluster_id, {})
    summary = cluster.get("style_summary")
    return StyleMode(
        cluster_id=cluster_id,
        probs=prob_map,
        summary=summary if isinstance(summary, str) else None,
        dominant=_dominant(cluster),
        source="bundle",
    )


def style_mode(
    storage: Any,
    user_id: str,
    raw: Mapping[str, Any],
    parsed: ParsedRecord,
    request_profile: Mapping[str, Any] | None,
    item: Mapping[str, Any] | None,
) -> StyleMode:
    """The spec's style mode; never raises (a broken style model means no style conditioning)."""
    if request_profile:
        return match_profile(request_profile, parsed, "request")
    try:
        from designer_ml.style.bundle import load_style_bundle
    except ImportError:
        load_style_bundle = None
    if load_style_bundle is not None and storage is not None:
        try:
            bundle = load_style_bundle(storage, user_id, item=item if item is not None else {})
            if bundle is not None:
                return _from_bundle(bundle, raw, parsed)
        except Exception as exc:  # a style model problem must not fail the prompt
            logger.warning("style bundle unusable for optimize", extra={"user_id": user_id, "error": str(exc)})
    document = (item or {}).get("document")
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            document = None
    return match_profile(document, parsed, "profile") if document else StyleMode()


@dataclass
class CoveragePlan:
    """How this request fills the selection stage's coverage gaps."""

    bonus: np.ndarray
    fill: dict[str, str]
    notes: list[dict[str, Any]]


def coverage_plan(gaps: Any, parsed: ParsedRecord, bonus_per_phrase: float) -> CoveragePlan:
    """Phrases that name a gap's value (or its style's template) get a bonus; empty spec slots
    of the description take a gap's value. Malformed gaps are skipped."""
    bonus = np.zeros(vocab.N_PHRASES)
    fill: dict[str, str] = {}
    notes: list[dict[str, Any]] = []
    boosted: set[int] = set()
    for gap in gaps if isinstance(gaps, Sequence) and not isinstance(gaps, str) else []:
        if not isinstance(gap, Mapping):
            continue
        slot, value = gap.get("attribute"), gap.get("value")
        if not isinstance(slot, str) or not isinstance(value, str) or not value.strip():
            continue
        value = normalize_value(value)
        phrases = [p for p in vocab.PHRASES if normalize_value(p.text) == value]
        style = vocab.style_of([value]) if slot.startswith("style") else None
        if not phrases and style:
            template = vocab.STYLE_TEMPLATES[style]
            phrases = [vocab.BY_TEXT[t] for t in template.get("mood", ())[:1] + template.get("lighting", ())[:1]]
        for phrase in phrases:
            if phrase.index not in boosted and len(boosted) < MAX_COVERAGE_PHRASES:
                boosted.add(phrase.index)
                bonus[phrase.index] = bonus_per_phrase
                notes.append({"attribute": slot, "value": value, "phrase": phrase.text, "action": "boosted"})
        if slot in DESCRIPTION_SLOTS and not parsed.values(slot) and slot not in fill:
            fill[slot] = value
            notes.append({"attribute": slot, "value": value, "action": "filled"})
    return CoveragePlan(bonus=bonus, fill=fill, notes=notes)
