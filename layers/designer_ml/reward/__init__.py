"""Reward models: what each designer likes, learned from their likes and dislikes (stages 5, 10).

Serving code imports this package with numpy and onnxruntime only; ``onnx`` is imported by
the retrain function alone (``model.export_onnx``). Importing the package itself loads no numpy:
the feedback submit path (``feedback`` -> ``events``, ``features``, ``vocabulary``) needs none.

- ``vocabulary``: every phrase a prompt can hold, templates, parser.
- ``features``: the fixed feature layout (phrases, hashed spec attributes, style mode).
- ``model``: the Bayesian reward model (numpy) and its ONNX export.
- ``belief`` / ``policy``: serving-side posterior with fresh evidence; candidates and choice.
- ``optimize``, ``feedback``, ``retrain``: the endpoints' and the queue's logic.
- ``events``: event keys, the designer's feedback state item (pending evidence, retrain
  markers), compact pending entries; numpy-free.
- ``store``: model pointers and artifacts in storage, pending entries as feature rows.

For the selection stage: :func:`load_reward_scorer`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from designer_ml.vlt import ParsedRecord

__all__ = ["POINTER_ATTRIBUTES", "RewardScorer", "load_reward_scorer", "report_of", "report_text"]

# What serving reads of a profile item for the reward model (DynamoDB projection paths): the
# pointer, a flat map; the model's metrics and favourite phrases (``reward_summary``) and the
# last retrain's report are for GET .../rlhf/model only. Nested maps are what makes a read slow
# (moto here: ~7 ms a get_item of the whole item, ~2.5 ms of a flat attribute).
POINTER_ATTRIBUTES = ("reward_model", "reward_version")


def report_text(report: Mapping[str, Any]) -> str:
    """A report of the profile item (``reward_summary``, ``reward_last_retrain``) as stored: JSON
    text, as the profile ``document`` is. Written and read whole, only by retrain and GET
    .../rlhf/model; as nested maps they made every serving read of the item slower (moto
    converts the whole item for each projected path: select's read 4.3 -> 2.9 ms here)."""
    import json

    return json.dumps(report, sort_keys=True)


def report_of(value: Any) -> dict[str, Any] | None:
    """:func:`report_text`'s report back as a dict (items written before it hold a map); None
    when absent or unreadable."""
    import json

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return dict(value) if isinstance(value, Mapping) else None


class RewardScorer:
    """P(like) of garment specs under a designer's reward model (spec part; typical phrases)."""

    def __init__(self, scorer: Any, typical_phrases: np.ndarray, version: int | None):
        self._scorer = scorer
        self._typical = typical_phrases
        self.version = version

    def score_vlts(self, vlts: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """P(like) of each raw VLT record, shape (n,), in [0, 1].

        Each record is scored as the designer's typical prompt (the average phrase mix of
        their feedback) for that spec, so that only the spec attributes tell records apart.
        """
        from designer_ml.vlt import parse_record

        return self.score_records([parse_record(v) for v in vlts])

    def score_records(self, records: Sequence[ParsedRecord]) -> np.ndarray:
        """:meth:`score_vlts` of records already parsed (``designer_ml.vlt.parse_record``).

        The selection parses its images once for the kernel and scores those same records:
        parsing 200 VLT records a second time was a quarter of a select's CPU.
        """
        import numpy as np

        from designer_ml.reward import features as F

        if not records:
            return np.zeros(0)
        # The rows of F.context_row (intercept, spec block, no style mode), built in one array.
        X = np.zeros((len(records), F.D))
        X[:, F.INTERCEPT] = 1.0
        X[:, F.SPEC_START : F.STYLE_START] = F.spec_matrix(F.spec_tokens(r) for r in records)
        X[:, F.PHRASE_START : F.SPEC_START] = self._typical
        mean, _ = self._scorer.project(X)
        return np.clip(mean, 0.0, 1.0)


def load_reward_scorer(storage: Any, user_id: str, item: Mapping[str, Any] | None = None) -> RewardScorer | None:
    """The designer's own reward model as a spec scorer, or None when they have none (or it is broken).

    ``item`` is the designer's profile item when the caller has read it already.
    """
    import numpy as np

    from designer_ml.reward import features as F
    from designer_ml.reward import model as M
    from designer_ml.reward import store

    if item is None:
        item = storage.get_item(storage.profiles, {"user_id": user_id}, consistent=False, attributes=POINTER_ATTRIBUTES)
        item = item or {}
    loaded = store.load_pointed_model(storage, item.get("reward_model"))
    if loaded is None:
        return None
    scorer, meta = loaded
    typical = meta.get("typical_phrases")
    phrases = M.decode_array(typical) if isinstance(typical, Mapping) else np.zeros(F.SPEC_START - F.PHRASE_START)
    return RewardScorer(scorer, phrases, item.get("reward_version"))
