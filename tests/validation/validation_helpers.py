"""Portfolios with planted style modes, and a stand-in style bundle, for the validation tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from designer_ml.onnx_models import make_session
from designer_ml.validation.novelty import NoveltyArtifacts, fit_novelty
from designer_ml.vlt import Vocabulary, parse_record

SLOTS: dict[str, list[str]] = {
    "garment_type": ["dress", "skirt", "top", "pants", "jacket", "coat"],
    "attributes.silhouette": ["A-line", "fitted", "oversized", "straight", "wrap", "flared"],
    "attributes.neckline": ["V-neck", "round", "boat", "square", "turtleneck", "collar"],
    "attributes.sleeveLength": ["sleeveless", "short", "long", "three-quarter"],
    "colors.primary": ["black", "white", "Navy Blue", "red", "beige", "grey", "pink", "olive"],
    "style.overall": ["elegant", "minimalist", "romantic", "casual", "edgy", "sporty"],
}
# Two in-style modes (the portfolio) and one off-style mode: value index per slot.
IN_MODES = [
    {
        "garment_type": 0,
        "attributes.silhouette": 0,
        "attributes.neckline": 0,
        "attributes.sleeveLength": 0,
        "colors.primary": 0,
        "style.overall": 0,
    },
    {
        "garment_type": 1,
        "attributes.silhouette": 1,
        "attributes.neckline": 1,
        "attributes.sleeveLength": 1,
        "colors.primary": 1,
        "style.overall": 1,
    },
]
OFF_MODE = {
    "garment_type": 3,
    "attributes.silhouette": 4,
    "attributes.neckline": 4,
    "attributes.sleeveLength": 2,
    "colors.primary": 5,
    "style.overall": 4,
}


def make_record(rid: str, mode: dict[str, int], rng: np.random.Generator, fidelity: float = 0.85) -> dict[str, Any]:
    record: dict[str, Any] = {"id": rid}
    for slot, pool in SLOTS.items():
        if slot != "garment_type" and rng.random() < 0.1:
            continue
        # Off-prototype values come from the mode's neighbours, so the portfolio does not hold
        # every value of every slot.
        value = pool[mode[slot]] if rng.random() < fidelity else pool[(mode[slot] + 2) % len(pool)]
        group, _, key = slot.partition(".")
        if key:
            record.setdefault(group, {})[key] = value
        else:
            record[group] = value
    return record


def records(modes: list[dict[str, int]], n: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [make_record(f"{prefix}{i}", modes[i % len(modes)], rng) for i in range(n)]


@dataclass
class FittedStyle:
    vocab: Vocabulary
    artifacts: NoveltyArtifacts
    portfolio: list[dict[str, Any]]


def fit_style(portfolio: list[dict[str, Any]], random_state: int = 0) -> FittedStyle:
    parsed = [parse_record(r) for r in portfolio]
    vocab = Vocabulary.fit(parsed)
    return FittedStyle(vocab, fit_novelty(vocab, parsed, random_state=random_state), portfolio)


@dataclass
class StandInBundle:
    """The interface of ``designer_ml.style.bundle.StyleBundle`` that validation uses."""

    vocab: Vocabulary
    files: dict[str, Any] = field(default_factory=dict)
    version: int = 1

    def session(self, name: str) -> Any:
        data = self.files.get(name)
        if data is None:
            return None
        cached = self.files.setdefault(f"{name}#session", make_session(data))
        return cached

    def json(self, name: str) -> Any:
        return self.files.get(name)


def stand_in_bundle(style: FittedStyle, with_model: bool = True) -> StandInBundle:
    files: dict[str, Any] = {}
    if with_model:
        files = {"novelty.onnx": style.artifacts.onnx_bytes, "novelty.json": style.artifacts.calibration}
    return StandInBundle(style.vocab, files)
