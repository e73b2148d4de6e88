"""Training of the style model: encoder -> PCA -> GaussianMixture, exported to ONNX.

Imports scikit-learn, scipy and skl2onnx: only the profile function's fit path imports this
module (lazily), never serving code. Everything is seeded, so the same records give the same
model.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from designer_ml.embedding import EmbeddingBlock, total_variance
from designer_ml.observability import logger
from designer_ml.onnx_models import PARITY_TOLERANCE, TARGET_OPSET, check_parity
from designer_ml.style.features import style_matrix
from designer_ml.vlt import ParsedRecord, Vocabulary

RANDOM_STATE = 0
K_MIN, K_MAX = 3, 7
# A mode needs a few records before a Gaussian can describe it.
MIN_RECORDS_PER_MODE = 4
MAX_PCA_COMPONENTS = 12
MAX_PCA_VARIANCE = 0.95
N_INIT = 4
COVARIANCE_TYPE = "diag"
# Floor on every variance, relative to the mean PCA variance: one-hot rows repeat exactly, and
# without a floor a mode collapses onto a few duplicates (BIC then rewards spurious modes and
# float32 inference drifts from float64 training).
REG_COVAR_SHARE = 0.1
# An update keeps the warm-started model unless a fresh fit has a BIC lower by this much per record.
WARM_BIC_TOLERANCE = 0.05
N_HOLDOUT = 64
# Every group weighs the same in the style model: on planted modes vlt.DEFAULT_GROUP_WEIGHTS
# (garment type x2, style x1.5) let one slot drive the modes (mean ARI 0.52 against 0.93
# uniform), on H&M portfolios it changes ARI by +0.01 (noise); bench/bench_profile.py.
STYLE_GROUP_WEIGHTS: dict[str, float] = {}


@dataclass
class WarmStart:
    """The current model's view of the merged portfolio.

    Attributes
    ----------
    labels : ndarray of shape (n_records,), int
        The stable cluster id each record had (or was placed in) under the current model; -1
        when unknown.
    """

    labels: np.ndarray


@dataclass
class StyleFit:
    """A fitted style model and what it says about the portfolio.

    Attributes
    ----------
    X : ndarray of shape (n_records, n_features), float32
        The model's input rows (:func:`designer_ml.style.features.style_matrix`, then the
        embedding block's columns when the portfolio has embeddings).
    components : ndarray of shape (n_records,), int
        The mixture component (ONNX output column) of each record.
    probabilities : ndarray of shape (n_records, n_clusters)
    bic : dict of k -> BIC of the best model with k components
    """

    vocab: Vocabulary
    parsed: list[ParsedRecord]
    X: np.ndarray
    pca: PCA
    gmm: GaussianMixture
    components: np.ndarray
    probabilities: np.ndarray
    bic: dict[int, float]
    selection: str
    warnings: list[str] = field(default_factory=list)
    warm_started: bool = False
    embedding: EmbeddingBlock | None = None

    @property
    def n_clusters(self) -> int:
        return int(self.gmm.n_components)

    def describe(self) -> dict[str, Any]:
        """The ``model`` section of the profile document."""
        return {
            "selection": self.selection,
            "bic": {str(k): round(v, 3) for k, v in sorted(self.bic.items())},
            "covariance_type": COVARIANCE_TYPE,
            "pca_components": int(self.pca.n_components_),
            "pca_explained_variance": round(float(np.nansum(self.pca.explained_variance_ratio_)), 4),
            "n_features": int(self.X.shape[1]),
            "reg_covar": float(self.gmm.reg_covar),
            "n_init": N_INIT,
            "random_state": RANDOM_STATE,
            "warm_started": self.warm_started,
            "group_weights": dict(self.vocab.group_weights),
            "schema_hash": self.vocab.schema_hash,
        } | (
            {"embedding_dim": self.embedding.dim, "embedding_weight": round(self.embedding.weight, 6)}
            if self.embedding is not None
            else {}
        )


def capacity(X: np.ndarray) -> int:
    """How many modes the rows can carry: a few records per mode, no more modes than distinct rows."""
    n = X.shape[0]
    distinct = len(np.unique(X, axis=0)) if n else 0
    return max(1, min(n // MIN_RECORDS_PER_MODE, distinct))


def choose_pca(X: np.ndarray, random_state: int = RANDOM_STATE) -> PCA:
    """PCA keeping the components that explain more variance than chance.

    Horn's parallel analysis: a component is kept while its variance beats the same-rank
    variance of the rows with every column shuffled independently (which keeps each feature's
    spread, destroys the co-occurrences that make modes). Capped at ``MAX_PCA_COMPONENTS``
    and at ``MAX_PCA_VARIANCE`` of the total. A fixed share of explained variance instead
    keeps dozens of noise components on sparse one-hot data (bench/bench_profile.py).
    """
    n, d = X.shape
    limit = max(1, min(MAX_PCA_COMPONENTS, n - 1, d))
    if n < 3 or d < 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return PCA(n_components=1, svd_solver="full", random_state=random_state).fit(X)
    rng = np.random.default_rng(random_state)
    centred = X - X.mean(axis=0)
    real = np.linalg.eigvalsh(centred.T @ centred)[::-1]
    shuffled = np.column_stack([rng.permutation(col) for col in centred.T])
    chance = np.linalg.eigvalsh(shuffled.T @ shuffled)[::-1]
    above = real > chance
    m = int(np.argmin(above)) if not above.all() else d
    total = float(real.clip(min=0).sum()) or 1.0
    by_variance = int(np.searchsorted(np.cumsum(real.clip(min=0)) / total, MAX_PCA_VARIANCE) + 1)
    m = max(min(2, limit), min(m, by_variance, limit))
    return PCA(n_components=m, svd_solver="full", random_state=random_state).fit(X)


def gaussian_mixture(Z: np.ndarray, k: int, reg: float, random_state: int, **init: Any) -> GaussianMixture:
    gmm = GaussianMixture(
        n_components=k,
        covariance_type=COVARIANCE_TYPE,
        reg_covar=reg,
        n_init=1 if init else N_INIT,
        max_iter=300,
        random_state=random_state,
        **init,
    )
    # One thread: k-means initialisation on small portfolios is dominated by OpenMP start-up and
    # spinning (50 ms per init on a busy 2-vCPU host, against 1 ms single-threaded).
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gmm.fit(Z)


def _warm_init(Z: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray] | None:
    known = sorted({int(v) for v in labels.tolist() if v >= 0})
    if not known:
        return None
    means = np.stack([Z[labels == cid].mean(axis=0) for cid in known])
    weights = np.array([(labels == cid).sum() for cid in known], dtype=np.float64)
    return {"means_init": means, "weights_init": weights / weights.sum()}


def fit_style(
    parsed: Sequence[ParsedRecord],
    n_clusters: int | None = None,
    warm: WarmStart | None = None,
    group_weights: dict[str, float] | None = None,
    random_state: int = RANDOM_STATE,
    embeddings: np.ndarray | None = None,
) -> StyleFit:
    """Fit the style model on parsed records (every one usable).

    ``n_clusters`` given: that many modes, capped by :func:`capacity` (with a warning); else
    the k of lowest BIC over 3..7, capped likewise. ``warm`` (an update) adds a candidate
    started from the current modes, kept unless a fresh fit is clearly better. ``embeddings``
    (n, dim), NaN rows where a record has none (:func:`designer_ml.embedding.embedding_matrix`):
    their :class:`~designer_ml.embedding.EmbeddingBlock` is appended to the attribute rows.
    """
    parsed = list(parsed)
    vocab = Vocabulary.fit(parsed, STYLE_GROUP_WEIGHTS if group_weights is None else group_weights)
    X = style_matrix(vocab, vocab.transform(parsed).X)
    n = len(parsed)
    notes: list[str] = []
    block = None
    if embeddings is not None and not np.isnan(embeddings).all():
        block = EmbeddingBlock.fit(embeddings, total_variance(X))
        X = np.hstack([X, block.rows(embeddings, n)])
        missing = int(np.isnan(embeddings).any(axis=1).sum())
        if missing:
            notes.append(
                f"{missing} of {n} records have no embedding: their modes rest on their attributes alone "
                "(their embedding counts as the portfolio's average)"
            )
    cap = capacity(X)
    if n <= 2:
        notes.append(f"only {n} record(s): the profile has a single style mode until the portfolio grows")
        ks, selection = [1], "tiny"
    elif n_clusters is not None:
        selection = "requested"
        ks = [min(n_clusters, cap)]
        if n_clusters > cap:
            notes.append(
                f"n_clusters={n_clusters} capped to {cap}: {n} records with {len(np.unique(X, axis=0))} "
                f"distinct ones carry at most {cap} modes (at least {MIN_RECORDS_PER_MODE} records per mode)"
            )
    else:
        selection = "bic"
        top = min(K_MAX, cap)
        ks = list(range(K_MIN, top + 1)) if top >= K_MIN else list(range(1, top + 1))
        if top < K_MAX:
            notes.append(
                f"modes searched over {ks[0]}..{ks[-1]} instead of {K_MIN}..{K_MAX}: {n} records carry at most "
                f"{cap} modes (at least {MIN_RECORDS_PER_MODE} records per mode)"
            )

    X64 = X.astype(np.float64)
    pca = choose_pca(X64, random_state)
    Z = pca.transform(X64)
    reg = REG_COVAR_SHARE * max(float(np.mean(np.var(Z, axis=0))), 1e-6)

    # scikit-learn fits a mixture on 2 rows at least; one record is its own (single) mode.
    Zfit = np.repeat(Z, 2, axis=0) if n == 1 else Z
    best: tuple[float, GaussianMixture] | None = None
    bic: dict[int, float] = {}
    for k in ks:
        gmm = gaussian_mixture(Zfit, k, reg, random_state)
        bic[k] = float(gmm.bic(Zfit))
        if best is None or bic[k] < best[0]:
            best = (bic[k], gmm)
    assert best is not None
    warm_started = False
    init = _warm_init(Z, warm.labels) if warm is not None else None
    if init is not None and len(init["means_init"]) in ks:
        k = len(init["means_init"])
        candidate = gaussian_mixture(Zfit, k, reg, random_state, **init)
        score = float(candidate.bic(Zfit))
        if score <= best[0] + WARM_BIC_TOLERANCE * n:
            best, warm_started = (score, candidate), True
            bic[k] = min(bic[k], score)
    gmm = best[1]
    probabilities = gmm.predict_proba(Z)
    return StyleFit(
        vocab=vocab,
        parsed=parsed,
        X=X,
        pca=pca,
        gmm=gmm,
        components=probabilities.argmax(axis=1),
        probabilities=probabilities,
        bic=bic,
        selection=selection,
        warnings=notes,
        warm_started=warm_started,
        embedding=block,
    )


def holdout_rows(fit: StyleFit, n_rows: int = N_HOLDOUT, random_state: int = RANDOM_STATE) -> np.ndarray:
    """Rows the model never saw: each takes every slot from one of two random portfolio records.

    Returns ndarray of shape (n_rows, n_features), float32.
    """
    rng = np.random.default_rng(random_state)
    parsed = fit.parsed
    rows: list[ParsedRecord] = []
    first: list[int] = []
    for _ in range(n_rows):
        i, j = (int(v) for v in rng.integers(0, len(parsed), size=2))
        a, b = parsed[i], parsed[j]
        slots = sorted(set(a.categorical) | set(b.categorical))
        cat: dict[str, tuple[str, ...]] = {}
        for s in slots:
            donor, other = (a, b) if rng.random() < 0.5 else (b, a)
            cat[s] = donor.values(s) or other.values(s)
        rows.append(ParsedRecord(categorical=cat, numeric=dict(a.numeric)))
        first.append(i)
    X = style_matrix(fit.vocab, fit.vocab.transform(rows).X)
    if fit.embedding is None:
        return X
    # The embedding of the record that gave the numbers, half of them shuffled off their attributes.
    E = fit.X[first, X.shape[1] :].copy()
    E[::2] = E[rng.permutation(len(E))[::2]]
    return np.hstack([X, E])


def pca_mixture_onnx(pca: PCA, gmm: GaussianMixture, width: int, metadata: dict[str, str]) -> bytes:
    """PCA then a Gaussian mixture as one ONNX graph: float32 ``X`` (n, width) -> ``label``,
    ``probabilities`` (n, k) and ``score_samples`` (n, 1), metadata stamped. No parity check:
    the caller checks against its own reference rows."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onx = convert_sklearn(
        Pipeline([("pca", pca), ("gmm", gmm)]),
        initial_types=[("X", FloatTensorType([None, width]))],
        target_opset=TARGET_OPSET,
        options={id(gmm): {"score_samples": True}},
    )
    for key, value in sorted(metadata.items()):
        prop = onx.metadata_props.add()
        prop.key, prop.value = key, str(value)
    return onx.SerializeToString()


def export_onnx(fit: StyleFit, metadata: dict[str, str]) -> tuple[bytes, float]:
    """The PCA + mixture as one ONNX graph, checked against scikit-learn before anyone stores it.

    The graph maps float32 rows ``X`` (n, n_features) to ``label`` (n,), ``probabilities``
    (n, n_clusters) and ``score_samples`` (n, 1: log-likelihood, for drift and novelty).
    Returns the serialised model and the max abs ``predict_proba`` difference on held-out
    rows; raises :class:`~designer_ml.errors.ModelIntegrityError` when over 1e-4.
    """
    model_bytes = pca_mixture_onnx(fit.pca, fit.gmm, fit.X.shape[1], metadata)
    rows = np.vstack([holdout_rows(fit), fit.X[:: max(1, len(fit.X) // N_HOLDOUT)]])
    expected = fit.gmm.predict_proba(fit.pca.transform(rows.astype(np.float64)))
    diff = check_parity(model_bytes, rows, expected, output="probabilities", tolerance=PARITY_TOLERANCE)
    return model_bytes, diff


def stable_ids(old_labels: np.ndarray, new_components: np.ndarray, n_components: int, next_id: int) -> list[int]:
    """The stable id of each new mixture component.

    Hungarian matching on the records both models assigned (``old_labels`` (n_shared,) stable
    ids, ``new_components`` (n_shared,) component indices): a component that takes over most of
    an old cluster's records keeps its id; the others get fresh ids from ``next_id`` on.
    """
    ids = [-1] * n_components
    old_ids = sorted({int(v) for v in old_labels.tolist() if v >= 0})
    if old_ids:
        overlap = np.zeros((len(old_ids), n_components))
        row = {cid: i for i, cid in enumerate(old_ids)}
        for old, new in zip(old_labels.tolist(), new_components.tolist(), strict=True):
            if old >= 0:
                overlap[row[int(old)], int(new)] += 1
        for r, c in zip(*linear_sum_assignment(-overlap), strict=True):
            if overlap[r, c] > 0:
                ids[c] = old_ids[r]
    for c in range(n_components):
        if ids[c] < 0:
            ids[c] = next_id
            next_id += 1
    return ids


@dataclass
class Novelty:
    """The off-style model's artifacts (``designer_ml.validation.novelty``)."""

    onnx_bytes: bytes
    calibration: dict[str, Any]
    embedding_onnx_bytes: bytes | None = None


def fit_novelty_model(
    vocab: Vocabulary,
    parsed: Sequence[ParsedRecord],
    random_state: int = RANDOM_STATE,
    embeddings: np.ndarray | None = None,
) -> Novelty | None:
    """The off-style (novelty) model validate uses, or None while that module does not exist."""
    # The novelty model belongs to the validation stage; until designer_ml.validation.novelty
    # exists the style bundle ships without it (validate then scores attribute consistency only).
    if importlib.util.find_spec("designer_ml.validation.novelty") is None:
        logger.warning("designer_ml.validation.novelty not available: style bundle stored without novelty model")
        return None
    if len(parsed) < 2:
        logger.warning("one record: style bundle stored without novelty model")
        return None
    from designer_ml.validation.novelty import fit_novelty

    artifacts = fit_novelty(vocab, list(parsed), random_state=random_state, embeddings=embeddings)
    return Novelty(
        onnx_bytes=artifacts.onnx_bytes,
        calibration=dict(artifacts.calibration),
        embedding_onnx_bytes=artifacts.embedding_onnx_bytes,
    )
