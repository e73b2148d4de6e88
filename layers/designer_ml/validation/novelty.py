"""The off-style model: how far a garment's VLT analysis lies from a designer's portfolio.

Two parts, both fitted on the portfolio when the profile is created or updated:

- a per-attribute frequency score (numpy over the vocabulary counts): for every slot the
  record names, the *excess surprisal* of its value, ``-log p(value)`` above the slot's usual
  surprisal, with add-alpha smoothing so a value the portfolio never holds is the most
  surprising of all. This is what the seed's one-hot Isolation Forest misses: an unseen value
  encodes as an all-zero one-hot row and looks typical (bench/bench_validate.py: seed way ROC
  AUC 0.54-0.68, this model 0.72-0.96 on the same splits).
- an Isolation Forest on ``EncodedBatch.rarity`` (per-slot ``-log`` frequency, unseen values
  highest), for unusual patterns of rarity across slots.
  It is the only scikit-learn model, exported to ONNX with a parity check.

Both are standardised on cross-validated scores of the portfolio's own records (each record
scored by models that never saw it), summed, and thresholded at a high quantile of those
held-out sums, so an in-style image is flagged about as often as a held-out portfolio record.
``outlier_score`` maps the sum through a logistic centred on that threshold: 0.5 is the
decision boundary, the portfolio's median record sits at 0.1.

Training side: :func:`fit_novelty` (imports scikit-learn and skl2onnx inside the function).
Serving side: :class:`NoveltyScorer` (numpy and onnxruntime only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from designer_ml.onnx_models import make_session, run
from designer_ml.vlt import EncodedBatch, ParsedRecord, Vocabulary

FORMAT_VERSION = 1
# Add-alpha smoothing of per-slot value frequencies (Jeffreys prior): an unseen value gets
# alpha pseudo-counts, so its surprisal grows with how much of the slot the portfolio covers.
ALPHA = 0.5
# Held-out portfolio records above the threshold: the in-style rejection rate we aim for.
DEFAULT_QUANTILE = 0.95
N_ESTIMATORS = 100
MAX_SAMPLES = 256
MAX_FOLDS = 5
# Floors of the standardisation scales, so a perfectly uniform portfolio (all held-out scores
# equal) does not divide by zero; in the units of each score (nats, IF decision units).
FREQUENCY_SCALE_FLOOR = 0.25
FOREST_SCALE_FLOOR = 0.01
# Excess surprisal (nats, before slot weights) above which a seen value is named as rare.
RARE_EXCESS = 1.5
FOREST_OUTPUT = "scores"
# Equal weight of the two standardised parts: on the planted-mode portfolios, weights from
# 0.5 to 1 moved ROC AUC by less than 0.01, so the plain sum it is.
FOREST_WEIGHT = 1.0
NOT_PALETTE = frozenset({"finish", "pattern", "texture", "fabric"})


@dataclass
class NoveltyArtifacts:
    """What the profile function stores in the style bundle.

    Attributes
    ----------
    onnx_bytes : bytes
        The Isolation Forest as ONNX: float32 [n, n_slots] (per-slot rarity) -> ``scores``
        [n, 1] (scikit-learn's ``decision_function``: lower is more anomalous).
    calibration : dict
        JSON-serialisable: schema hash, standardisation constants, threshold, fit diagnostics.
    """

    onnx_bytes: bytes
    calibration: dict[str, Any]


@dataclass
class NoveltyResult:
    """Scores of a batch of records.

    Attributes
    ----------
    outlier_score : ndarray of shape (n,), float64 in [0, 1]
    is_outlier : ndarray of shape (n,), bool
    reasons : list of list of str, one list per record
    raw : ndarray of shape (n,), the combined standardised score before the logistic
    """

    outlier_score: np.ndarray
    is_outlier: np.ndarray
    reasons: list[list[str]]
    raw: np.ndarray = field(repr=False)


class SlotSurprisal:
    """Per-slot excess surprisal tables built from a vocabulary's counts (numpy only).

    ``excess(slot, value)`` is ``max(0, -log p(value) - E[-log p])`` under the slot's smoothed
    value distribution in the portfolio; unseen values use the alpha pseudo-count. Slots the
    portfolio never names score 0: a VLT analyser that starts emitting a new key (the
    portfolio had no ``style`` at all, the generated image has one) says nothing about style.
    """

    def __init__(self, vocab: Vocabulary, alpha: float = ALPHA):
        self.vocab = vocab
        self.slots = vocab.slots
        self.slot_index = {s: k for k, s in enumerate(self.slots)}
        self.weights = np.array([vocab.weight(s) for s in self.slots], dtype=np.float64)
        self.table: dict[str, dict[str, float]] = {}
        self.unseen: dict[str, float] = {}
        self.totals: dict[str, int] = {}
        for slot, counts in vocab.categories.items():
            c = np.array(list(counts.values()), dtype=np.float64)
            denom = c.sum() + alpha * (len(c) + 1)
            surprisal = -np.log((c + alpha) / denom)
            base = float(np.dot(c / c.sum(), surprisal))
            self.table[slot] = {v: max(0.0, float(s) - base) for v, s in zip(counts, surprisal, strict=True)}
            self.unseen[slot] = max(0.0, -math.log(alpha / denom) - base)
            self.totals[slot] = int(c.sum())

    def excess(self, slot: str, value: str) -> float:
        table = self.table.get(slot)
        if table is None:
            return 0.0
        found = table.get(value)
        return self.unseen[slot] if found is None else found

    def score(self, parsed: Sequence[ParsedRecord]) -> np.ndarray:
        """Per-slot weighted excess, shape (n_records, n_slots); a record's score is the row sum."""
        out = np.zeros((len(parsed), len(self.slots)), dtype=np.float64)
        for i, rec in enumerate(parsed):
            for slot, values in rec.categorical.items():
                k = self.slot_index.get(slot)
                if k is not None and slot in self.table:
                    out[i, k] = max(self.excess(slot, v) for v in values) * self.weights[k]
        return out


def novelty_features(batch: EncodedBatch) -> np.ndarray:
    """Isolation Forest input: per-slot rarity, float32 [n, n_slots].

    Rarity rather than one-hot: an unseen value is the rarest of all instead of an all-zero
    row, and the forest isolates unusual *patterns* of rarity (several slots off at once).
    On the planted-mode portfolios of bench/bench_validate.py, one-hot plus rarity scored
    ROC AUC 0.72-0.77 alone, rarity alone 0.87-0.92.
    """
    return np.ascontiguousarray(batch.rarity, dtype=np.float32)


def _standardise(values: np.ndarray, floor: float) -> tuple[float, float]:
    center = float(np.median(values))
    scale = float(np.std(values)) + floor
    return center, scale


def _folds(n: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [f for f in np.array_split(rng.permutation(n), k) if len(f)]


def fit_novelty(
    vocab: Vocabulary,
    parsed_records: Sequence[ParsedRecord | Mapping[str, Any]],
    random_state: int = 0,
    quantile: float = DEFAULT_QUANTILE,
) -> NoveltyArtifacts:
    """Fit the off-style model on a portfolio and export it.

    Parameters
    ----------
    vocab : Vocabulary
        The style bundle's vocabulary, fitted on ``parsed_records``.
    parsed_records : sequence of ParsedRecord (or raw VLT dicts), length n >= 2
    random_state : int
        Seeds the folds and the forests.
    quantile : float
        Share of held-out portfolio records that should score below the outlier threshold.

    Returns
    -------
    NoveltyArtifacts
        ONNX bytes of the Isolation Forest (parity-checked against scikit-learn, < 1e-4) and
        the calibration dict.
    """
    from sklearn.ensemble import IsolationForest

    from designer_ml.onnx_models import check_parity
    from designer_ml.vlt import parse_record

    parsed = [r if isinstance(r, ParsedRecord) else parse_record(r) for r in parsed_records]
    n = len(parsed)
    if n < 2:
        raise ValueError(f"need at least 2 portfolio records to fit the off-style model, got {n}")
    rng = np.random.default_rng(random_state)
    folds = _folds(n, min(MAX_FOLDS, n), rng)
    # One subsample size for the fold forests and the final one: an Isolation Forest's scores
    # are normalised by it, so the held-out scores calibrate the final forest only if it is shared.
    subsample = max(2, min(MAX_SAMPLES, n - max(len(f) for f in folds)))

    def forest(features: np.ndarray, seed: int) -> Any:
        return IsolationForest(
            n_estimators=N_ESTIMATORS, max_samples=min(subsample, len(features)), random_state=seed
        ).fit(features)

    # Held-out scores: vocabulary, frequency table and forest refitted without the fold, so a
    # portfolio record's novelty is judged the way a new in-style image's will be.
    freq_cv = np.zeros(n)
    forest_cv = np.zeros(n)
    for j, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n), test)
        vocab_k = Vocabulary.fit([parsed[i] for i in train], group_weights=vocab.group_weights)
        surprisal_k = SlotSurprisal(vocab_k)
        train_batch = vocab_k.transform([parsed[i] for i in train])
        test_batch = vocab_k.transform([parsed[i] for i in test])
        model_k = forest(novelty_features(train_batch), random_state + 1 + j)
        freq_cv[test] = surprisal_k.score(test_batch.parsed).sum(axis=1)
        forest_cv[test] = -model_k.decision_function(novelty_features(test_batch))

    batch = vocab.transform(parsed)
    features = novelty_features(batch)
    model = forest(features, random_state)
    onnx_bytes = forest_to_onnx(
        model,
        features.shape[1],
        {
            "designer_ml.schema_hash": vocab.schema_hash,
            "designer_ml.n_records": str(n),
            "designer_ml.format": str(FORMAT_VERSION),
        },
    )
    parity = check_parity(onnx_bytes, features, model.decision_function(features), output=FOREST_OUTPUT)

    freq_center, freq_scale = _standardise(freq_cv, FREQUENCY_SCALE_FLOOR)
    forest_center, forest_scale = _standardise(forest_cv, FOREST_SCALE_FLOOR)
    forest_weight = FOREST_WEIGHT
    combined = (freq_cv - freq_center) / freq_scale + forest_weight * (forest_cv - forest_center) / forest_scale
    threshold = float(np.quantile(combined, quantile))
    # Logistic width: the median held-out record maps to 0.1, the threshold to 0.5.
    spread = threshold - float(np.median(combined))
    tau = max(spread, 0.5) / math.log(9.0)
    calibration = {
        "format": FORMAT_VERSION,
        "schema_hash": vocab.schema_hash,
        "n_features": int(features.shape[1]),
        "n_records": n,
        "alpha": ALPHA,
        "frequency": {"center": freq_center, "scale": freq_scale},
        "forest": {"center": forest_center, "scale": forest_scale, "weight": forest_weight, "output": FOREST_OUTPUT},
        "quantile": quantile,
        "threshold": threshold,
        "tau": tau,
        "rare_excess": RARE_EXCESS,
        "cv_flag_rate": float(np.mean(combined > threshold)),
        "parity_max_abs_diff": parity,
        "random_state": random_state,
        "max_samples": subsample,
    }
    return NoveltyArtifacts(onnx_bytes=onnx_bytes, calibration=calibration)


def forest_to_onnx(model: Any, n_features: int, metadata: Mapping[str, str] | None = None) -> bytes:
    """A fitted IsolationForest as one ONNX TreeEnsembleRegressor plus five arithmetic nodes.

    float32 [n, n_features] -> ``scores`` float32 [n, 1], scikit-learn's ``decision_function``.

    Why not ``skl2onnx.to_onnx``: its IsolationForest converter emits about 40 nodes per tree
    and builds them in quadratic time (200 trees: over a minute of export, on every profile
    create/update). Each tree here is one ensemble member whose leaf value is that leaf's path
    length (depth plus the average path length of the samples left in it, as
    ``sklearn.ensemble.IsolationForest.score_samples`` computes it); the nodes and the float32
    threshold adjustment come from skl2onnx's own tree helpers. :func:`fit_novelty` checks
    parity against scikit-learn before anything is stored.
    """
    from types import SimpleNamespace

    from onnx import TensorProto, helper
    from skl2onnx.common.tree_ensemble import (
        add_tree_to_attribute_pairs,
        get_default_tree_regressor_attribute_pairs,
    )
    from sklearn.ensemble._iforest import _average_path_length

    from designer_ml.onnx_models import TARGET_OPSET

    attrs = get_default_tree_regressor_attribute_pairs()
    for t, (estimator, columns) in enumerate(zip(model.estimators_, model.estimators_features_, strict=True)):
        tree = estimator.tree_
        leaf_length = tree.compute_node_depths() + _average_path_length(tree.n_node_samples) - 1.0
        view = SimpleNamespace(
            node_count=tree.node_count,
            children_left=tree.children_left,
            children_right=tree.children_right,
            feature=np.where(tree.feature >= 0, np.asarray(columns)[np.maximum(tree.feature, 0)], 0),
            threshold=tree.threshold,
            value=leaf_length.reshape(-1, 1),
        )
        add_tree_to_attribute_pairs(attrs, False, view, t, 1.0, 0, False, True, dtype=np.float32)
    attrs["n_targets"] = 1
    attrs["aggregate_function"] = "SUM"
    attrs["post_transform"] = "NONE"
    denominator = len(model.estimators_) * float(_average_path_length([model._max_samples])[0])

    def const(name: str, value: float) -> Any:
        return helper.make_tensor(name, TensorProto.FLOAT, [1], [value])

    nodes = [
        helper.make_node("TreeEnsembleRegressor", ["X"], ["path_sum"], domain="ai.onnx.ml", **attrs),
        helper.make_node("Div", ["path_sum", "denominator"], ["mean_depth"]),
        helper.make_node("Neg", ["mean_depth"], ["neg_depth"]),
        helper.make_node("Pow", ["two", "neg_depth"], ["anomaly"]),
        helper.make_node("Neg", ["anomaly"], ["score_samples"]),
        helper.make_node("Sub", ["score_samples", "offset"], [FOREST_OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "isolation_forest",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info(FOREST_OUTPUT, TensorProto.FLOAT, [None, 1])],
        initializer=[
            const("denominator", denominator),
            const("two", 2.0),
            const("offset", float(model.offset_)),
        ],
    )
    onx = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, version) for domain, version in TARGET_OPSET.items()],
        producer_name="designer_ml",
    )
    onx.ir_version = 8
    helper.set_model_props(onx, dict(metadata or {}))
    return onx.SerializeToString()


class NoveltyMismatch(ValueError):
    """The stored off-style model does not fit the vocabulary it is served with."""


class NoveltyScorer:
    """Serving side of the off-style model: numpy and an onnxruntime session.

    Parameters
    ----------
    vocab : Vocabulary
        The style bundle's vocabulary (the same one the model was fitted with).
    session : onnxruntime.InferenceSession
        The ``novelty.onnx`` session.
    calibration : dict
        The ``novelty.json`` document from :func:`fit_novelty`.
    """

    def __init__(self, vocab: Vocabulary, session: Any, calibration: Mapping[str, Any]):
        if calibration.get("format") != FORMAT_VERSION:
            raise NoveltyMismatch(f"off-style model format {calibration.get('format')!r} is not {FORMAT_VERSION}")
        if calibration.get("schema_hash") != vocab.schema_hash:
            raise NoveltyMismatch("off-style model was fitted on another vocabulary")
        width = session.get_inputs()[0].shape[-1]
        expected = len(vocab.slots)
        if calibration.get("n_features") != expected or (isinstance(width, int) and width != expected):
            raise NoveltyMismatch("off-style model input width does not match the vocabulary")
        self.vocab = vocab
        self.session = session
        self.cal = dict(calibration)
        self.surprisal = SlotSurprisal(vocab, float(calibration.get("alpha", ALPHA)))

    @classmethod
    def from_artifacts(cls, vocab: Vocabulary, artifacts: NoveltyArtifacts) -> NoveltyScorer:
        return cls(vocab, make_session(artifacts.onnx_bytes), artifacts.calibration)

    def forest_scores(self, batch: EncodedBatch) -> np.ndarray:
        """The ONNX forest's ``decision_function``, shape (n,)."""
        return run(self.session, novelty_features(batch), self.cal["forest"]["output"]).reshape(-1)

    def score(self, batch: EncodedBatch) -> NoveltyResult:
        """Outlier scores and reasons of a batch encoded with this scorer's vocabulary."""
        n = len(batch.parsed)
        if n == 0:
            return NoveltyResult(np.zeros(0), np.zeros(0, dtype=bool), [], np.zeros(0))
        per_slot = self.surprisal.score(batch.parsed)
        freq = per_slot.sum(axis=1)
        forest = -self.forest_scores(batch).astype(np.float64)
        f, t = self.cal["frequency"], self.cal["forest"]
        z_freq = (freq - f["center"]) / f["scale"]
        z_forest = float(t["weight"]) * (forest - t["center"]) / t["scale"]
        raw = z_freq + z_forest
        threshold = float(self.cal["threshold"])
        outlier_score = 1.0 / (1.0 + np.exp(-np.clip((raw - threshold) / float(self.cal["tau"]), -50, 50)))
        is_outlier = raw > threshold
        reasons = [
            self._reasons(batch.parsed[i], bool(is_outlier[i]), z_freq[i], z_forest[i]) if is_outlier[i] else []
            for i in range(n)
        ]
        return NoveltyResult(outlier_score=outlier_score, is_outlier=is_outlier, reasons=reasons, raw=raw)

    def _reasons(self, rec: ParsedRecord, flagged: bool, z_freq: float, z_forest: float) -> list[str]:
        """Sentences naming the values that make a record off-style, most surprising first."""
        found: list[tuple[float, str]] = []
        rare = float(self.cal.get("rare_excess", RARE_EXCESS))
        for slot, values in rec.categorical.items():
            if slot not in self.surprisal.table:
                continue
            for value in values:
                excess = self.surprisal.excess(slot, value)
                count = self.vocab.categories[slot].get(value, 0)
                if count == 0:
                    found.append((excess + 100.0, self._unseen_text(slot, value)))
                elif excess >= rare:
                    found.append((excess, self._rare_text(slot, value, count)))
        found.sort(key=lambda item: -item[0])
        texts = [text for _, text in found]
        if flagged and (not texts or z_forest > z_freq):
            texts.append("unusual combination of attributes for your portfolio")
        return texts

    def _usual(self, slot: str, k: int = 3) -> str:
        counts = self.vocab.categories.get(slot, {})
        return ", ".join(v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k])

    def _unseen_text(self, slot: str, value: str) -> str:
        if _is_palette(slot):
            return f"colour '{value}' far from your usual palette (never in your portfolio; usual: {self._usual(slot)})"
        return f"{_slot_name(slot)} '{value}' never appears in your portfolio"

    def _rare_text(self, slot: str, value: str, count: int) -> str:
        n = self.vocab.n_records
        if _is_palette(slot):
            return f"colour '{value}' far from your usual palette ({count} of {n} records; usual: {self._usual(slot)})"
        return f"{_slot_name(slot)} '{value}' is rare in your portfolio ({count} of {n} records)"


def _is_palette(slot: str) -> bool:
    """Colour slots proper (``colors.primary``, ``colors.secondary``), not ``colors.finish``."""
    group, _, key = slot.partition(".")
    return group == "colors" and key not in NOT_PALETTE


def _slot_name(slot: str) -> str:
    """The words a designer uses for a slot: ``attributes.sleeve_length`` -> ``sleeve length``,
    ``style.overall`` -> ``style``, ``garment_type`` -> ``garment type``."""
    group, _, rest = slot.partition(".")
    if group == "style" and rest == "overall":
        return "style"
    name = rest if group in ("attributes", "style") and rest else slot
    return name.replace(".", " ").replace("_", " ")
