"""The off-style model: how far a garment's VLT analysis lies from a designer's portfolio.

Two parts, both fitted on the portfolio when the profile is created or updated:

- a per-attribute frequency score (numpy over the vocabulary counts): for every slot the
  record names, the *excess surprisal* of its value, ``-log p(value)`` above the slot's usual
  surprisal, with add-alpha smoothing so a value the portfolio never holds is the most
  surprising of all. This is what the seed's one-hot Isolation Forest misses: an unseen value
  encodes as an all-zero one-hot row and looks typical. A slot the record leaves out adds
  nothing: a missing value is no evidence.
- a mixture model of the portfolio (a latent class model: a mixture of independent per-slot
  categoricals, each slot's categories being the portfolio's values, "missing" and "unseen"),
  fitted by EM. A portfolio is a few style modes; a garment is in style when one mode explains
  *all* its attributes together, so it catches off-style records made of values that are each
  common but never together (black trousers and white tops in the portfolio, a black top in
  the image). "Missing" is a category of its own: within a mode it is usually the commonest
  value (real analysers leave most attributes out), so it does not look rare, and *which*
  attributes are present says what a garment is (sleeves on tops, not on trousers). Making a
  missing slot cost nothing under its likeliest component instead lowered ROC AUC on both the
  planted and the real benchmark splits (0.953 -> 0.940, 0.825 -> 0.820), so it stays a value.
  It is exported to ONNX (one MatMul and a ReduceLogSumExp) with a parity check.

When the portfolio has image embeddings (``designer_ml.embedding``) a third part joins them: the
negative log-density of the image's embedding under a Gaussian mixture of the portfolio's
embeddings (PCA by parallel analysis, then a diagonal mixture, as the style model does; exported
with skl2onnx, parity-checked). It sees what attributes cannot (cut, print, styling); an image
without an embedding gets 0 from it (no evidence), as a slot the analyser left out does.

All parts are standardised on cross-validated scores of the portfolio's own records (each
record scored by models that never saw it: vocabulary, counts and mixture refitted without
its fold), summed with equal weights, and thresholded at a high quantile of those held-out
sums, so an in-style image is flagged about as often as a held-out portfolio record.
``outlier_score`` maps the sum through a logistic centred on that threshold: 0.5 is the
decision boundary, the portfolio's median record sits at 0.1.

bench/bench_validate.py measures it on planted style modes and on real catalogue splits by
several ground-truth fields, next to the seed's way. The mixture replaced an Isolation Forest
on per-slot rarity, which scored a lower ROC AUC on every one of those splits (mean planted
0.942 -> 0.953, real 0.815 -> 0.825).

Training side: :func:`fit_novelty` (numpy, onnx). Serving side: :class:`NoveltyScorer`
(numpy and onnxruntime only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from designer_ml.onnx_models import PARITY_TOLERANCE, make_session, run
from designer_ml.vlt import EncodedBatch, ParsedRecord, Vocabulary

FORMAT_VERSION = 2
# Add-alpha smoothing of per-slot value frequencies (Jeffreys prior), in both parts: an unseen
# value gets alpha pseudo-counts, so its surprisal grows with how much of the slot the
# portfolio covers.
ALPHA = 0.5
# Held-out portfolio records above the threshold: the in-style rejection rate we aim for.
DEFAULT_QUANTILE = 0.95
MAX_FOLDS = 5
# Held-out calibration scores come from at most this many portfolio records (a random subset of
# a larger portfolio): a 95% quantile of 4,000 scores has a standard error of about a third of a
# percentage point, and the fold models' EM is most of a large profile's fitting time (20,000
# records: 4.0 s with all of them).
CALIBRATION_RECORDS = 4000
# Mixture size: one component per RECORDS_PER_COMPONENT portfolio records, so that every
# component's per-slot tables rest on a couple of dozen records, at most MAX_COMPONENTS.
# Extra components only split a mode in two; too few merge modes and lose their combinations
# (one component, the independent per-slot model, scored worst on every benchmark split).
RECORDS_PER_COMPONENT = 25
MAX_COMPONENTS = 10
EM_RESTARTS = 3
EM_MAX_ITER = 100
EM_TOL = 1e-6
# Floors of the standardisation scales, so a perfectly uniform portfolio (all held-out scores
# equal) does not divide by zero; in nats.
FREQUENCY_SCALE_FLOOR = 0.25
MIXTURE_SCALE_FLOOR = 0.25
# Excess surprisal (nats, before slot weights) above which a seen value is named as rare.
RARE_EXCESS = 1.5
MIXTURE_OUTPUT = "scores"
# Equal weights of the standardised parts: no constant fitted to a benchmark.
MIXTURE_WEIGHT = 1.0
EMBEDDING_WEIGHT = 1.0
EMBEDDING_OUTPUT = "score_samples"
EMBEDDING_SCALE_FLOOR = 0.25
# Fewer portfolio embeddings than this: no embedding part (a density needs a few per component).
MIN_EMBEDDINGS = 10
NOT_PALETTE = frozenset({"finish", "pattern", "texture", "fabric"})


@dataclass
class NoveltyArtifacts:
    """What the profile function stores in the style bundle.

    Attributes
    ----------
    onnx_bytes : bytes
        The mixture as ONNX: float32 [n, width] (:class:`MixtureLayout` indicators) ->
        ``scores`` [n, 1], ``-log p(x)`` under the portfolio's mixture (higher is more off-style).
    calibration : dict
        JSON-serialisable: schema hash, standardisation constants, threshold, fit diagnostics.
    """

    onnx_bytes: bytes
    calibration: dict[str, Any]
    embedding_onnx_bytes: bytes | None = None


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


class MixtureLayout:
    """Column layout of the mixture model's input, from a vocabulary (numpy only).

    For every categorical slot of the vocabulary, in order: one column per seen value, then
    ``missing`` and ``unseen``; then one constant column (always 1, weight 0) so that a
    vocabulary without categorical slots still gives a valid, non-empty matrix.
    """

    def __init__(self, vocab: Vocabulary):
        self.slots = list(vocab.categories)
        self.columns: dict[tuple[str, str], int] = {}
        self.spans: list[tuple[int, int]] = []
        self.missing: dict[str, int] = {}
        self.unseen: dict[str, int] = {}
        j = 0
        for slot in self.slots:
            start = j
            for value in vocab.categories[slot]:
                self.columns[(slot, value)] = j
                j += 1
            self.missing[slot], self.unseen[slot] = j, j + 1
            j += 2
            self.spans.append((start, j))
        self.bias = j
        self.width = j + 1
        self.slot_weights = np.array([vocab.weight(s) for s in self.slots], dtype=np.float64)

    def features(self, parsed: Sequence[ParsedRecord]) -> np.ndarray:
        """Indicators, float32 [n, width]: each slot sums to 1 (a multi-valued slot spreads it)."""
        X = np.zeros((len(parsed), self.width), dtype=np.float32)
        X[:, self.bias] = 1.0
        for i, rec in enumerate(parsed):
            for slot in self.slots:
                values = rec.categorical.get(slot)
                if not values:
                    X[i, self.missing[slot]] = 1.0
                    continue
                share = 1.0 / len(values)
                for value in values:
                    X[i, self.columns.get((slot, value), self.unseen[slot])] += share
        return X


@dataclass
class Mixture:
    """A fitted latent class model as the ONNX graph computes it.

    Attributes
    ----------
    log_weights : ndarray of shape (k,), log mixing proportions
    W : ndarray of shape (width, k)
        Slot weight times ``log p(column | component)``; 0 on the constant column.
    log_likelihood : float, the training log-likelihood (weighted), for diagnostics
    """

    log_weights: np.ndarray
    W: np.ndarray
    log_likelihood: float

    def neg_log_likelihood(self, X: np.ndarray) -> np.ndarray:
        """``-log p(x)`` (slot-weighted), shape (n,), float64: the reference for the parity check."""
        return -_logsumexp(X.astype(np.float64) @ self.W + self.log_weights)


def _logsumexp(L: np.ndarray) -> np.ndarray:
    top = L.max(axis=1, keepdims=True)
    return np.log(np.exp(L - top).sum(axis=1)) + top[:, 0]


def n_components(n_records: int) -> int:
    return max(1, min(MAX_COMPONENTS, n_records // RECORDS_PER_COMPONENT))


def fit_mixture(layout: MixtureLayout, X: np.ndarray, k: int, seed: int, alpha: float = ALPHA) -> Mixture:
    """EM for a mixture of independent per-slot categoricals on indicator rows ``X`` [n, width].

    Own code because scikit-learn has no mixture of categoricals (``GaussianMixture`` on
    one-hot columns has no notion of "one value per slot" and gives unseen values no mass).
    Each slot's log-likelihood is multiplied by the vocabulary's slot weight, in EM as in
    scoring, so that garment type and style count for more than finish, as everywhere else.
    Tables are smoothed with ``alpha`` pseudo-counts per category (``unseen`` gets only those);
    the best of ``EM_RESTARTS`` random starts (highest likelihood) is kept.
    """
    n = X.shape[0]
    X64 = X.astype(np.float64)
    column_weight = np.zeros(layout.width)
    for w, (a, b) in zip(layout.slot_weights, layout.spans, strict=True):
        column_weight[a:b] = w
    rng = np.random.default_rng(seed)
    best: Mixture | None = None
    for _ in range(EM_RESTARTS):
        resp = rng.dirichlet(np.ones(k), size=n)
        previous = -np.inf
        for _ in range(EM_MAX_ITER):
            counts = X64.T @ resp + alpha
            log_theta = np.zeros_like(counts)
            for a, b in layout.spans:
                log_theta[a:b] = np.log(counts[a:b]) - np.log(counts[a:b].sum(axis=0, keepdims=True))
            W = log_theta * column_weight[:, None]
            log_weights = np.log((resp.sum(axis=0) + 1.0) / (n + k))
            L = X64 @ W + log_weights
            total = _logsumexp(L)
            resp = np.exp(L - total[:, None])
            ll = float(total.sum())
            if ll - previous < EM_TOL * max(1.0, abs(ll)):
                break
            previous = ll
        if best is None or ll > best.log_likelihood:
            best = Mixture(log_weights=log_weights, W=W, log_likelihood=ll)
    assert best is not None
    return best


def mixture_to_onnx(mixture: Mixture, metadata: Mapping[str, str] | None = None) -> bytes:
    """The mixture as ONNX: float32 [n, width] -> ``scores`` float32 [n, 1], ``-log p(x)``.

    Written with onnx.helper (three nodes: MatMul, Add, ReduceLogSumExp, then Neg): there is no
    scikit-learn estimator to convert. :func:`fit_novelty` checks parity before anything is stored.
    """
    from onnx import TensorProto, helper, numpy_helper

    from designer_ml.onnx_models import TARGET_OPSET

    width, k = mixture.W.shape
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["per_component"]),
        helper.make_node("Add", ["per_component", "log_weights"], ["joint"]),
        helper.make_node("ReduceLogSumExp", ["joint"], ["log_likelihood"], axes=[1], keepdims=1),
        helper.make_node("Neg", ["log_likelihood"], [MIXTURE_OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "latent_class_mixture",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info(MIXTURE_OUTPUT, TensorProto.FLOAT, [None, 1])],
        initializer=[
            numpy_helper.from_array(mixture.W.astype(np.float32), "W"),
            numpy_helper.from_array(mixture.log_weights.astype(np.float32).reshape(1, k), "log_weights"),
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


def _standardise(values: np.ndarray, floor: float) -> tuple[float, float]:
    center = float(np.median(values))
    scale = float(np.std(values)) + floor
    return center, scale


def _folds(n: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [f for f in np.array_split(rng.permutation(n), k) if len(f)]


@dataclass
class EmbeddingDensity:
    """A Gaussian mixture of portfolio embeddings after PCA (scikit-learn; training side only)."""

    pca: Any
    gmm: Any

    @classmethod
    def fit(cls, E: np.ndarray, k: int, random_state: int) -> EmbeddingDensity:
        """Fit on embeddings ``E`` (m, dim), every row present; ``k`` components at most.

        The PCA keeps every component it can (min(dim, m - 1)): it only decorrelates the columns
        for the diagonal mixture. Truncating it as the style model does (parallel analysis) keeps
        the subspace the portfolio's modes span and drops the rest, which is where an off-style
        image differs: a density must see every direction (on the H&M splits with the stand-in
        embedding, truncated: AUC of this part 0.44-0.94; full: 0.94-0.99; bench_embedding).
        """
        from sklearn.decomposition import PCA

        from designer_ml.style.fit import REG_COVAR_SHARE, gaussian_mixture

        n_components = max(1, min(E.shape[1], len(E) - 1))
        pca = PCA(n_components=n_components, svd_solver="full", random_state=random_state).fit(E)
        Z = pca.transform(E)
        reg = REG_COVAR_SHARE * max(float(np.mean(np.var(Z, axis=0))), 1e-6)
        return cls(pca, gaussian_mixture(Z, max(1, min(k, len(E) // 2)), reg, random_state))

    def neg_log_likelihood(self, E: np.ndarray) -> np.ndarray:
        """``-log p(e)``, shape (m,), float64."""
        return -self.gmm.score_samples(self.pca.transform(np.asarray(E, dtype=np.float64)))


def fit_novelty(
    vocab: Vocabulary,
    parsed_records: Sequence[ParsedRecord | Mapping[str, Any]],
    random_state: int = 0,
    quantile: float = DEFAULT_QUANTILE,
    embeddings: np.ndarray | None = None,
) -> NoveltyArtifacts:
    """Fit the off-style model on a portfolio and export it.

    Parameters
    ----------
    vocab : Vocabulary
        The style bundle's vocabulary, fitted on ``parsed_records``.
    parsed_records : sequence of ParsedRecord (or raw VLT dicts), length n >= 2
    random_state : int
        Seeds the folds and the EM starts.
    quantile : float
        Share of held-out portfolio records that should score below the outlier threshold.
    embeddings : ndarray of shape (n, dim), optional
        The records' embeddings, NaN rows where one has none; with at least ``MIN_EMBEDDINGS``
        of them the model gets its embedding part.

    Returns
    -------
    NoveltyArtifacts
        ONNX bytes of the mixture (parity-checked against numpy, < 1e-4) and the calibration dict.
    """
    from designer_ml.onnx_models import check_parity
    from designer_ml.vlt import parse_record

    parsed = [r if isinstance(r, ParsedRecord) else parse_record(r) for r in parsed_records]
    n = len(parsed)
    if n < 2:
        raise ValueError(f"need at least 2 portfolio records to fit the off-style model, got {n}")
    rng = np.random.default_rng(random_state)
    # One mixture size for the fold models and the final one, so that the held-out scores
    # calibrate a model of the same capacity.
    k = n_components(n)
    chosen = np.sort(rng.choice(n, CALIBRATION_RECORDS, replace=False)) if n > CALIBRATION_RECORDS else None
    sample = [parsed[i] for i in chosen] if chosen is not None else parsed
    m = len(sample)
    have = None
    if embeddings is not None and int((~np.isnan(embeddings).any(axis=1)).sum()) >= MIN_EMBEDDINGS:
        have = ~np.isnan(embeddings).any(axis=1)
        E_sample, have_sample = (embeddings[chosen], have[chosen]) if chosen is not None else (embeddings, have)
    embedding_cv = np.zeros(m)
    scored = np.zeros(m, dtype=bool)
    folds = _folds(m, min(MAX_FOLDS, m), rng)

    # Held-out scores: vocabulary, frequency table and mixture refitted without the fold, so a
    # portfolio record's novelty is judged the way a new in-style image's will be.
    freq_cv = np.zeros(m)
    mixture_cv = np.zeros(m)
    for j, test in enumerate(folds):
        train = np.setdiff1d(np.arange(m), test)
        vocab_k = Vocabulary.fit([sample[i] for i in train], group_weights=vocab.group_weights)
        layout_k = MixtureLayout(vocab_k)
        test_records = [sample[i] for i in test]
        mixture_k = fit_mixture(
            layout_k, layout_k.features([sample[i] for i in train]), min(k, len(train)), random_state + 1 + j
        )
        freq_cv[test] = SlotSurprisal(vocab_k).score(test_records).sum(axis=1)
        mixture_cv[test] = mixture_k.neg_log_likelihood(layout_k.features(test_records))
        if have is not None:
            fit_rows, test_rows = train[have_sample[train]], test[have_sample[test]]
            if len(fit_rows) >= MIN_EMBEDDINGS and len(test_rows):
                density_k = EmbeddingDensity.fit(E_sample[fit_rows], k, random_state + 1 + j)
                embedding_cv[test_rows] = density_k.neg_log_likelihood(E_sample[test_rows])
                scored[test_rows] = True

    layout = MixtureLayout(vocab)
    features = layout.features(parsed)
    mixture = fit_mixture(layout, features, k, random_state)
    onnx_bytes = mixture_to_onnx(
        mixture,
        {
            "designer_ml.schema_hash": vocab.schema_hash,
            "designer_ml.n_records": str(n),
            "designer_ml.format": str(FORMAT_VERSION),
        },
    )
    parity = check_parity(onnx_bytes, features, mixture.neg_log_likelihood(features), output=MIXTURE_OUTPUT)

    freq_center, freq_scale = _standardise(freq_cv, FREQUENCY_SCALE_FLOOR)
    mixture_center, mixture_scale = _standardise(mixture_cv, MIXTURE_SCALE_FLOOR)
    combined = (freq_cv - freq_center) / freq_scale + MIXTURE_WEIGHT * (mixture_cv - mixture_center) / mixture_scale
    embedding_bytes = None
    embedding_calibration = None
    if have is not None and scored.any():
        emb_center, emb_scale = _standardise(embedding_cv[scored], EMBEDDING_SCALE_FLOOR)
        # A record without an embedding (or never held out with one) adds 0: no evidence.
        combined = combined + EMBEDDING_WEIGHT * np.where(scored, (embedding_cv - emb_center) / emb_scale, 0.0)
        density = EmbeddingDensity.fit(embeddings[have], k, random_state)
        from designer_ml.style.fit import pca_mixture_onnx

        embedding_bytes = pca_mixture_onnx(
            density.pca,
            density.gmm,
            embeddings.shape[1],
            {"designer_ml.schema_hash": vocab.schema_hash, "designer_ml.format": str(FORMAT_VERSION)},
        )
        E_have = embeddings[have]
        # Parity in the units served: the standardised score (-log p - center) / scale. The raw
        # log-density sums tens of float32 terms of a few nats each and cannot agree to 1e-4
        # absolute; its standardised value does.
        embedding_parity = (
            check_parity(
                embedding_bytes,
                E_have,
                -density.neg_log_likelihood(E_have),
                output=EMBEDDING_OUTPUT,
                tolerance=PARITY_TOLERANCE * emb_scale,
            )
            / emb_scale
        )
        embedding_calibration = {
            "dim": int(embeddings.shape[1]),
            "center": emb_center,
            "scale": emb_scale,
            "weight": EMBEDDING_WEIGHT,
            "output": EMBEDDING_OUTPUT,
            "n_components": int(density.gmm.n_components),
            "pca_components": int(density.pca.n_components_),
            "parity_max_abs_diff": embedding_parity,
        }
    threshold = float(np.quantile(combined, quantile))
    # Logistic width: the median held-out record maps to 0.1, the threshold to 0.5.
    spread = threshold - float(np.median(combined))
    tau = max(spread, 0.5) / math.log(9.0)
    calibration = {
        "format": FORMAT_VERSION,
        "schema_hash": vocab.schema_hash,
        "n_features": int(layout.width),
        "n_records": n,
        "calibration_records": m,
        "alpha": ALPHA,
        "frequency": {"center": freq_center, "scale": freq_scale},
        "mixture": {
            "center": mixture_center,
            "scale": mixture_scale,
            "weight": MIXTURE_WEIGHT,
            "output": MIXTURE_OUTPUT,
            "n_components": k,
            "train_log_likelihood": mixture.log_likelihood,
        },
        "quantile": quantile,
        "threshold": threshold,
        "tau": tau,
        "rare_excess": RARE_EXCESS,
        "cv_flag_rate": float(np.mean(combined > threshold)),
        "parity_max_abs_diff": parity,
        "random_state": random_state,
    }
    if embedding_calibration is not None:
        calibration["embedding"] = embedding_calibration
    return NoveltyArtifacts(onnx_bytes=onnx_bytes, calibration=calibration, embedding_onnx_bytes=embedding_bytes)


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
    embedding_session : onnxruntime.InferenceSession, optional
        The ``novelty_embedding.onnx`` session; required when ``calibration`` has an embedding part.
    """

    def __init__(self, vocab: Vocabulary, session: Any, calibration: Mapping[str, Any], embedding_session: Any = None):
        if calibration.get("format") != FORMAT_VERSION:
            raise NoveltyMismatch(f"off-style model format {calibration.get('format')!r} is not {FORMAT_VERSION}")
        if calibration.get("schema_hash") != vocab.schema_hash:
            raise NoveltyMismatch("off-style model was fitted on another vocabulary")
        self.layout = MixtureLayout(vocab)
        width = session.get_inputs()[0].shape[-1]
        expected = self.layout.width
        if calibration.get("n_features") != expected or (isinstance(width, int) and width != expected):
            raise NoveltyMismatch("off-style model input width does not match the vocabulary")
        self.vocab = vocab
        self.session = session
        self.cal = dict(calibration)
        self.surprisal = SlotSurprisal(vocab, float(calibration.get("alpha", ALPHA)))
        # A model stored before embeddings existed has no "embedding" part: attributes only.
        self.embedding = calibration.get("embedding")
        if self.embedding is not None:
            if embedding_session is None:
                raise NoveltyMismatch("off-style model has an embedding part but no embedding model")
            width = embedding_session.get_inputs()[0].shape[-1]
            if isinstance(width, int) and width != int(self.embedding["dim"]):
                raise NoveltyMismatch("off-style embedding model input width does not match its calibration")
        self.embedding_session = embedding_session

    @property
    def embedding_dim(self) -> int | None:
        """The embedding dimension the model scores, or None without an embedding part."""
        return None if self.embedding is None else int(self.embedding["dim"])

    @classmethod
    def from_artifacts(cls, vocab: Vocabulary, artifacts: NoveltyArtifacts) -> NoveltyScorer:
        embedding = make_session(artifacts.embedding_onnx_bytes) if artifacts.embedding_onnx_bytes else None
        return cls(vocab, make_session(artifacts.onnx_bytes), artifacts.calibration, embedding)

    def features(self, batch: EncodedBatch) -> np.ndarray:
        """The ONNX model's input, float32 [n, width]."""
        return self.layout.features(batch.parsed)

    def mixture_scores(self, batch: EncodedBatch) -> np.ndarray:
        """The ONNX mixture's ``-log p(x)``, shape (n,)."""
        return run(self.session, self.features(batch), self.cal["mixture"]["output"]).reshape(-1)

    def embedding_z(self, embeddings: np.ndarray | None, n: int) -> np.ndarray:
        """The embedding part, standardised and weighted, shape (n,); 0 where there is none.

        ``embeddings`` (n, dim), NaN rows for images without one (``embedding.embedding_matrix``).
        """
        z = np.zeros(n)
        if self.embedding is None or embeddings is None:
            return z
        have = ~np.isnan(embeddings).any(axis=1)
        if have.any():
            e = self.embedding
            ll = run(self.embedding_session, embeddings[have], e["output"]).reshape(-1).astype(np.float64)
            z[have] = float(e["weight"]) * (-ll - e["center"]) / e["scale"]
        return z

    def score(self, batch: EncodedBatch, embeddings: np.ndarray | None = None) -> NoveltyResult:
        """Outlier scores and reasons of a batch encoded with this scorer's vocabulary.

        ``embeddings`` (n, dim) or None: the images' embeddings, used when the model has an
        embedding part.
        """
        n = len(batch.parsed)
        if n == 0:
            return NoveltyResult(np.zeros(0), np.zeros(0, dtype=bool), [], np.zeros(0))
        freq = self.surprisal.score(batch.parsed).sum(axis=1)
        mixture = self.mixture_scores(batch).astype(np.float64)
        f, m = self.cal["frequency"], self.cal["mixture"]
        z_freq = (freq - f["center"]) / f["scale"]
        z_mixture = float(m["weight"]) * (mixture - m["center"]) / m["scale"]
        raw = z_freq + z_mixture
        z_embedding = self.embedding_z(embeddings, n)
        if self.embedding is not None:
            raw = raw + z_embedding
        threshold = float(self.cal["threshold"])
        outlier_score = 1.0 / (1.0 + np.exp(-np.clip((raw - threshold) / float(self.cal["tau"]), -50, 50)))
        is_outlier = raw > threshold
        reasons = [
            self._reasons(batch.parsed[i], bool(is_outlier[i]), z_freq[i], z_mixture[i], z_embedding[i])
            if is_outlier[i]
            else []
            for i in range(n)
        ]
        return NoveltyResult(outlier_score=outlier_score, is_outlier=is_outlier, reasons=reasons, raw=raw)

    def _reasons(
        self, rec: ParsedRecord, flagged: bool, z_freq: float, z_mixture: float, z_embedding: float = 0.0
    ) -> list[str]:
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
        if flagged and z_embedding > max(z_freq, z_mixture):
            texts.insert(0, "the image looks unlike your portfolio's images (its embedding is far from theirs)")
        elif flagged and (not texts or z_mixture > z_freq):
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
