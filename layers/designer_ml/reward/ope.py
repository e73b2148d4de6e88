"""Off-policy evaluation of the serving policy against the base prompt, from logged decisions.

Each optimize answer says how its prompt was chosen (``metadata``: ``served`` "base" or
"model", ``chosen_probability`` the probability the policy had of choosing it). A client that
sends that metadata back with the feedback (``decision``) logs the decision with the event.
From those logged events, self-normalised inverse propensity scoring (SNIPS) estimates the
like rate of two policies on the designer's own traffic:

- ``base``: always serve the base prompt (``served == "base"`` events, weight 1/p);
- ``model``: serve the model's choice (``served == "model"`` events, weight 1/p).

Both are estimated on the contexts the designer actually asked for, each with a standard
error (delta method for a ratio estimator). Apprentice mode ends only when the model's
estimate is not below the base's by more than ``OPE_Z`` standard errors of the difference;
with fewer than ``MIN_ARM_EVENTS`` logged events on either side there is no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

MIN_ARM_EVENTS = 8
OPE_Z = 2.0


def _snips(r: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    w = 1.0 / p
    value = float(np.sum(w * r) / np.sum(w))
    # Delta-method variance of the ratio sum(w r) / sum(w).
    var = float(np.sum((w * (r - value)) ** 2) / np.sum(w) ** 2)
    return {"n": int(len(r)), "value": round(value, 4), "se": round(math.sqrt(var), 4)}


def evaluate(rewards: Sequence[float], propensities: Sequence[float | None], served: Sequence[str | None]) -> dict:
    """SNIPS like rates of the base and the model policies, and the verdict.

    Returns ``{"logged": n, "base": {...} | None, "model": {...} | None, "verdict": v}`` with
    ``v`` "model_worse", "model_not_worse" or None (not enough logged events).
    """
    r = np.asarray(rewards, dtype=float)
    p = np.array([np.nan if q is None else float(q) for q in propensities], dtype=float)
    s = np.asarray([x or "" for x in served])
    logged = np.isfinite(p) & (p > 0) & np.isin(s, ["base", "model"])
    out: dict[str, Any] = {"logged": int(logged.sum()), "base": None, "model": None, "verdict": None}
    for arm in ("base", "model"):
        mask = logged & (s == arm)
        if mask.sum() >= MIN_ARM_EVENTS:
            out[arm] = _snips(r[mask], p[mask])
    if out["base"] and out["model"]:
        gap = out["model"]["value"] - out["base"]["value"]
        se = math.hypot(out["model"]["se"], out["base"]["se"])
        out["difference"] = {"value": round(gap, 4), "se": round(se, 4)}
        out["verdict"] = "model_worse" if gap < -OPE_Z * se else "model_not_worse"
    return out
