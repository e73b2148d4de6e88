"""Portfolios with planted style modes, written the way a VLT analyser emits them (messy)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

MODES: list[dict[str, str]] = [
    {"garment_type": "dress", "silhouette": "A-line", "neckline": "V-neck", "primary": "black", "overall": "elegant"},
    {
        "garment_type": "jeans",
        "silhouette": "wide leg",
        "neckline": "crew",
        "primary": "Navy Blue",
        "overall": "casual",
    },
    {
        "garment_type": "blazer",
        "silhouette": "oversized",
        "neckline": "collared",
        "primary": "camel",
        "overall": "minimalist",
    },
    {"garment_type": "skirt", "silhouette": "flared", "neckline": "square", "primary": "pink", "overall": "romantic"},
]
NOISE = {
    "garment_type": ["top", "coat", "shorts"],
    "silhouette": ["fitted", "straight", "boxy"],
    "neckline": ["scoop", "halter", "boat"],
    "primary": ["white", "red", "olive"],
    "overall": ["edgy", "sporty", "bohemian"],
}


def _spell(value: str, rng: np.random.Generator) -> str:
    return [value, value.upper(), value.title(), value.replace("-", " "), f" {value} "][int(rng.integers(0, 5))]


def planted(n_records: int, n_modes: int = 3, seed: int = 0, start: int = 0) -> tuple[list[dict[str, Any]], list[int]]:
    """Records of ``n_modes`` planted modes (ids ``r{start}``...) and each record's mode."""
    rng = np.random.default_rng(seed)
    records, modes = [], []
    for i in range(n_records):
        m = i % n_modes
        proto = MODES[m]

        def value(slot: str, proto: dict[str, str] = proto) -> str:
            return _spell(proto[slot] if rng.random() < 0.85 else str(rng.choice(NOISE[slot])), rng)

        record: dict[str, Any] = {
            "id": f"r{start + i}",
            "garment_type": value("garment_type"),
            "attributes": {
                "silhouette": value("silhouette") if rng.random() < 0.7 else None,
                "neckline": value("neckline"),
            },
            "colors": {"primary": value("primary"), "finish": None},
            "style": {"overall": value("overall")} if rng.random() < 0.8 else None,
            "confidence": round(float(rng.uniform(0.5, 1.0)), 2),
        }
        if rng.random() < 0.3:
            record["details"] = ["pleats", "belt"] if m % 2 else ["buttons"]
        if rng.random() < 0.2:
            record["fabric"] = "silk" if m == 0 else "denim"
        records.append(record)
        modes.append(m)
    return records, modes


def atomic_moto_updates(monkeypatch: Any) -> None:
    """Make moto's DynamoDB writes atomic, as DynamoDB's are: moto checks a condition and
    applies the update in two steps, so two threads can both pass the same condition."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("update_item", "put_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)
