"""Synthetic generated images for the selection tests: planted style modes, variants, duplicates."""

from __future__ import annotations

from typing import Any

MODES: list[dict[str, Any]] = [
    {
        "garment_type": "dress",
        "attributes": {"silhouette": "A-line", "neckline": "V-neck"},
        "colors": {"primary": "black"},
        "style": {"overall": "elegant"},
    },
    {
        "garment_type": "jacket",
        "attributes": {"silhouette": "boxy", "neckline": "lapel"},
        "colors": {"primary": "camel"},
        "style": {"overall": "minimal"},
    },
    {
        "garment_type": "skirt",
        "attributes": {"silhouette": "pencil", "length": "midi"},
        "colors": {"primary": "red"},
        "style": {"overall": "bold"},
    },
    {
        "garment_type": "pants",
        "attributes": {"silhouette": "wide", "length": "ankle"},
        "colors": {"primary": "navy"},
        "style": {"overall": "casual"},
    },
]
FINISHES = ["matte", "satin", "glossy", "textured", "sheer"]


def mode_image(mode: int, variant: int, quality: float | None = 0.5, **extra: Any) -> dict[str, Any]:
    """One generated image of a planted mode; variants differ only in finish (a low-weight slot),
    and no two modes share a finish, so that modes share no attribute value."""
    vlt = {k: (dict(v) if isinstance(v, dict) else v) for k, v in MODES[mode].items()}
    vlt["colors"] = {**vlt["colors"], "finish": f"{FINISHES[variant % len(FINISHES)]} {mode}"}
    image: dict[str, Any] = {"id": f"m{mode}-v{variant}", "vlt": vlt, **extra}
    if quality is not None:
        image["quality_score"] = quality
    return image


def mode_pool_images() -> list[dict[str, Any]]:
    """4 modes × 5 variants, interleaved so that pool order says nothing about modes."""
    return [mode_image(m, v, quality=0.4 + 0.1 * ((m + v) % 3)) for v in range(5) for m in range(4)]
