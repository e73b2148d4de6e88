"""Portfolios for the profile benchmark: planted style modes, as messy as real analyser output.

A planted mode is a prototype (one or two typical values per slot); a record of the mode takes
each slot from its prototype most of the time and from the whole pool otherwise. On top of that:
slots and whole groups missing or null (at rates like the H&M analyser output, where most
attributes are missing), case/hyphen/spacing variants, list values, extra keys that carry no
style signal (``confidence`` numbers, ``source``), and modes of unequal size that may share
values (two modes of dresses, say). Nothing here is read by the service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

POOLS: dict[str, list[str]] = {
    "garment_type": ["dress", "top", "blouse", "shirt", "pants", "jeans", "skirt", "jacket", "coat",
                     "blazer", "knitwear", "jumpsuit", "shorts", "t-shirt"],
    "attributes.silhouette": ["A-line", "fitted", "oversized", "straight", "wrap", "bodycon", "relaxed",
                              "boxy", "flared", "slim", "wide leg", "tapered", "empire", "shift"],
    "attributes.neckline": ["V-neck", "crew neck", "scoop", "square", "halter", "boat neck", "turtleneck",
                            "off-shoulder", "collared", "sweetheart", "cowl"],
    "attributes.sleeveLength": ["sleeveless", "short", "long", "three-quarter", "cap", "puff"],
    "attributes.length": ["mini", "midi", "maxi", "knee", "cropped", "ankle", "hip"],
    "colors.primary": ["black", "white", "Navy Blue", "red", "burgundy", "beige", "camel", "olive", "pink",
                       "emerald", "grey", "cream", "mustard", "lavender", "cobalt"],
    "colors.finish": ["matte", "satin", "glossy", "metallic", "sheer", "textured", "velvet"],
    "style.overall": ["elegant", "minimalist", "romantic", "edgy", "bohemian", "streetwear", "classic",
                      "sporty", "avant-garde", "preppy", "casual"],
    "style.mood": ["sophisticated", "playful", "bold", "serene", "dramatic", "relaxed", "confident",
                   "whimsical"],
    "fabric": ["silk", "cotton", "linen", "denim", "wool", "leather", "chiffon", "jersey", "tweed"],
    "pattern": ["solid", "floral", "striped", "plaid", "polka dot", "animal print"],
}
DETAILS = ["pleats", "belt", "buttons", "ruffles", "embroidery", "pockets", "lace", "zipper", "sequins", "bow"]
# Share of records where the analyser left a slot out (real output is sparse: see data/README.md).
MISSING = {
    "garment_type": 0.05, "attributes.silhouette": 0.45, "attributes.neckline": 0.45,
    "attributes.sleeveLength": 0.4, "attributes.length": 0.6, "colors.primary": 0.1,
    "colors.finish": 0.6, "style.overall": 0.25, "style.mood": 0.45, "fabric": 0.6, "pattern": 0.6,
}
# Share of a mode's records whose slot value comes from the mode's prototype (else: any value).
FIDELITY = 0.8
HM_PATH = Path("/work/shared/data/hm_garments.jsonl")


def _variant(value: str, rng: np.random.Generator) -> str:
    """A spelling the analyser might emit for ``value`` (case, hyphens, spaces)."""
    roll = rng.random()
    if roll < 0.15:
        return value.upper()
    if roll < 0.3:
        return value.title()
    if roll < 0.4:
        return value.replace("-", " ").replace(" ", "-") if " " in value or "-" in value else f" {value} "
    return value


def _prototype(rng: np.random.Generator) -> dict[str, list[str]]:
    proto: dict[str, list[str]] = {}
    for slot, pool in POOLS.items():
        n_typical = 1 if rng.random() < 0.6 else 2
        proto[slot] = list(rng.choice(pool, size=n_typical, replace=False))
    proto["details"] = list(rng.choice(DETAILS, size=2, replace=False))
    return proto


def _set(record: dict[str, Any], slot: str, value: Any) -> None:
    if "." in slot:
        group, key = slot.split(".", 1)
        if not isinstance(record.get(group), dict):
            record[group] = {}
        record[group][key] = value
    else:
        record[slot] = value


def _record(rid: str, proto: dict[str, list[str]], rng: np.random.Generator) -> dict[str, Any]:
    record: dict[str, Any] = {"id": rid, "garment_type": None, "attributes": {}, "colors": {}, "style": {}}
    for slot, pool in POOLS.items():
        if rng.random() < MISSING[slot]:
            if rng.random() < 0.5:
                _set(record, slot, rng.choice([None, "", "unknown"]))
            continue
        if rng.random() < FIDELITY:
            value = str(rng.choice(proto[slot]))
        else:
            value = str(rng.choice(pool))
        _set(record, slot, _variant(value, rng))
    if rng.random() < 0.4:
        pool = proto["details"] if rng.random() < FIDELITY else DETAILS
        record["details"] = [str(v) for v in rng.choice(pool, size=int(rng.integers(1, 3)), replace=False)]
    if rng.random() < 0.7:
        record["confidence"] = round(float(rng.uniform(0.4, 1.0)), 2)
    if rng.random() < 0.2:
        record["source"] = str(rng.choice(["upload", "instagram", "lookbook"]))
    for group in ("attributes", "colors", "style"):
        if rng.random() < 0.05:
            record[group] = None
        elif rng.random() < 0.05:
            record.pop(group, None)
    return record


def planted_portfolio(
    n_modes: int, seed: int, n_records: int | None = None
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Records of ``n_modes`` planted modes and the planted mode of each (shape (n,))."""
    rng = np.random.default_rng(seed)
    n = int(n_records if n_records is not None else rng.integers(40, 70) * n_modes)
    shares = rng.dirichlet(np.full(n_modes, 4.0))
    shares = np.maximum(shares, 0.5 / n_modes)
    shares /= shares.sum()
    protos = [_prototype(rng) for _ in range(n_modes)]
    modes = rng.choice(n_modes, size=n, p=shares)
    records = [_record(f"r{seed}-{i}", protos[m], rng) for i, m in enumerate(modes)]
    return records, modes


def more_records(
    n_modes: int, seed: int, n_new: int, start: int
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``n_new`` further records from the same planted modes as ``planted_portfolio(n_modes, seed)``."""
    rng = np.random.default_rng(seed)
    rng.integers(40, 70)
    shares = rng.dirichlet(np.full(n_modes, 4.0))
    shares = np.maximum(shares, 0.5 / n_modes)
    shares /= shares.sum()
    protos = [_prototype(rng) for _ in range(n_modes)]
    extra = np.random.default_rng(seed + 10_000)
    modes = extra.choice(n_modes, size=n_new, p=shares)
    records = [_record(f"r{seed}-{start + i}", protos[m], extra) for i, m in enumerate(modes)]
    return records, modes


def hm_records() -> list[dict[str, Any]]:
    """The H&M analyser output (read from the shared data folder, never copied)."""
    with HM_PATH.open() as handle:
        return [json.loads(line) for line in handle]


def hm_portfolios(n_portfolios: int, seed: int = 0, size: int = 300) -> Iterator[tuple[list[dict[str, Any]], np.ndarray]]:
    """Designer-like portfolios from the H&M records: ``size`` records of 3 to 5 sections.

    Yields the records (``ground_truth`` and ``text`` stripped, as the service would see them)
    and each record's section index.
    """
    records = hm_records()
    by_section: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_section.setdefault(r["ground_truth"]["section_name"], []).append(r)
    big = sorted(s for s, rs in by_section.items() if len(rs) >= 60)
    rng = np.random.default_rng(seed)
    for _ in range(n_portfolios):
        n_sections = int(rng.integers(3, 6))
        chosen = list(rng.choice(big, size=n_sections, replace=False))
        per = size // n_sections
        picked: list[dict[str, Any]] = []
        truth: list[int] = []
        for j, section in enumerate(chosen):
            rows = by_section[section]
            for i in rng.choice(len(rows), size=min(per, len(rows)), replace=False):
                raw = {k: v for k, v in rows[int(i)].items() if k not in ("ground_truth", "text", "source")}
                picked.append(raw)
                truth.append(j)
        yield picked, np.asarray(truth)
