"""The DPP kernel of a pool of images, kept in low-rank form.

    L = diag(q) · S · diag(q),    S = B Bᵀ,    q_i = exp(alpha · u_i)

``B`` (N × D) holds the unit-normalised VLT feature vectors of the pool (the shared encoder,
:class:`designer_ml.vlt.Vocabulary`, fitted on the pool itself), so S is the cosine similarity
of the images' attributes: positive semidefinite by construction, ``S_ii = 1``. ``u_i`` in [0, 1]
is the image's quality (``quality_score``, 0.5 when absent, averaged with the designer's learned
reward when there is one). L is never formed: only B (N × D, D ≤ ``MAX_FEATURES + 1``) is.

Trade-off between diversity and quality (Chen, Zhang & Zhou, NeurIPS 2018, section 4.2)
---------------------------------------------------------------------------------------
    log det L_Y = 2·alpha·Σ_{i∈Y} u_i + log det S_Y
                ∝ quality_weight · Σ u_i  +  diversity_weight · log det S_Y

with ``alpha = quality_weight / (2 · max(diversity_weight, 0.01))``. Every alpha gives a PSD
kernel (a diagonal rescaling of S), so greedy MAP and exact sampling stay valid for every pair
of weights; the seed's ``similarity ** diversity_weight`` is not PSD and is not used. Only the
ratio of the two weights matters. At the Node client's 0.7 / 0.3 (alpha ≈ 0.21), raising an
image's quality from 0 to 1 is worth as much as a drop of the determinant by a factor
e^0.43 ≈ 1.5. ``diversity_weight = 0`` makes quality decide (alpha = 50 · quality_weight) with
diversity only breaking near-ties; ``quality_weight = 0`` ignores quality. Raw quality is
used, not a per-pool standardised one, so that a pool whose qualities are all within 0.02 of
each other is not treated as if those differences mattered.

Why the feature budget: a pool can hold values that no other image shares (or, sent on purpose,
thousands of distinct values). Up to ``MAX_FEATURES`` columns every (slot, value) is its own
column and S is exact; beyond, the most frequent ``MAX_FEATURES - HASHED_FEATURES`` values keep
their columns and the rest are signed-hashed into ``HASHED_FEATURES`` columns (feature hashing:
inner products unbiased, images sharing a rare value still similar), so memory stays N × D.

Image embeddings (optional, ``designer_ml.embedding``): when images carry them, each row of B
gets the image's embedding, centred on the pool and unit-normalised, beside its attribute row,
both scaled by √½, so S = ½·S_attributes + ½·S_embedding: the mean of two cosine similarities,
still PSD with S_ii = 1, and neither source outweighs the other by its units or dimension (the
same equal-share rule as the style model). An image without one keeps its unit attribute row.
B is then N × (D + dim): memory stays linear in N.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from designer_ml.embedding import unit_rows
from designer_ml.vlt import ParsedRecord, Vocabulary

MAX_FEATURES = 256
HASHED_FEATURES = 64
# Diversity weights below this count as this: alpha stays finite (at most 50 for quality 1).
MIN_DIVERSITY_WEIGHT = 0.01
DEFAULT_QUALITY = 0.5
_CHUNK = 2048


def quality_alpha(diversity_weight: float, quality_weight: float) -> float:
    """The exponent ``alpha`` of ``q_i = exp(alpha · u_i)`` (see the module docstring)."""
    return float(quality_weight) / (2.0 * max(float(diversity_weight), MIN_DIVERSITY_WEIGHT))


@dataclass
class DiversityKernel:
    """A pool's DPP kernel ``L = diag(q) B Bᵀ diag(q)`` in factored form.

    Attributes
    ----------
    features : ndarray of shape (N, D), float64
        Unit rows ``b_i`` (``S = B Bᵀ``, ``S_ii = 1``).
    quality : ndarray of shape (N,), float64
        ``u_i`` in [0, 1].
    alpha : float
        ``q_i = exp(alpha · u_i)``.
    columns : list of str
        Name of each feature column (``"slot=value"``, ``"#hashed:j"``, ``"#nothing_distinctive"``).
    vocabulary : Vocabulary
        Fitted on the whole pool (its ``categories`` count every value, hashed ones too).
    """

    features: np.ndarray
    quality: np.ndarray
    alpha: float
    columns: list[str]
    vocabulary: Vocabulary

    @property
    def size(self) -> int:
        return int(self.features.shape[0])

    @property
    def log_quality(self) -> np.ndarray:
        """``log q_i = alpha · u_i``, shape (N,)."""
        return self.alpha * self.quality

    def log_det_similarity(self, indices: Sequence[int]) -> float:
        """``log det S_Y`` of a subset (``-inf`` when singular); 0 for the empty set."""
        if len(indices) == 0:
            return 0.0
        rows = self.features[np.asarray(indices, dtype=np.int64)]
        sign, value = np.linalg.slogdet(rows @ rows.T)
        return float(value) if sign > 0 else -math.inf

    def log_det(self, indices: Sequence[int]) -> float:
        """``log det L_Y = 2 Σ log q_i + log det S_Y`` of a subset."""
        idx = np.asarray(indices, dtype=np.int64)
        return float(2.0 * self.log_quality[idx].sum()) + self.log_det_similarity(idx)

    def dense(self) -> np.ndarray:
        """The N × N kernel L (small pools only: tests and benchmarks)."""
        q = np.exp(self.log_quality - self.log_quality.max())
        return (q[:, None] * self.features) @ (q[:, None] * self.features).T


def _hash_column(name: str, n_buckets: int) -> tuple[int, float]:
    # crc32, not hash(): Python salts str hashes per process, and selections must be reproducible.
    h = zlib.crc32(name.encode())
    return h % n_buckets, (1.0 if (h // n_buckets) & 1 else -1.0)


def encode_features(
    parsed: Sequence[ParsedRecord], group_weights: dict[str, float] | None = None
) -> tuple[np.ndarray, list[str], Vocabulary]:
    """Unit-normalised feature rows of a pool, shape (N, D) float64, column names, pool vocabulary.

    The vocabulary is fitted on the pool. Rows with no non-zero feature (only numbers every
    image shares) get one shared column, so they are alike and unlike the rest.
    """
    n = len(parsed)
    full = Vocabulary.fit(parsed, group_weights=group_weights)
    numeric_counts: Counter[str] = Counter(slot for rec in parsed for slot in rec.numeric)
    candidates = [((slot, value), count) for slot, values in full.categories.items() for value, count in values.items()]
    candidates += [((slot, None), numeric_counts[slot]) for slot in full.numeric]
    hashed = len(candidates) > MAX_FEATURES
    if hashed:
        kept = sorted(candidates, key=lambda c: (-c[1], c[0][0], str(c[0][1])))[: MAX_FEATURES - HASHED_FEATURES]
        keep = {key for key, _ in kept}
        categories: dict[str, dict[str, int]] = {}
        for (slot, value), count in kept:
            if value is not None:
                categories.setdefault(slot, {})[value] = count
        vocab = Vocabulary(
            categories={s: dict(sorted(v.items())) for s, v in sorted(categories.items())},
            numeric={s: stats for s, stats in full.numeric.items() if (s, None) in keep},
            n_records=full.n_records,
            group_weights=full.group_weights,
        )
    else:
        vocab = full
    columns = vocab.columns + ([f"#hashed:{j}" for j in range(HASHED_FEATURES)] if hashed else [])
    columns.append("#nothing_distinctive")
    d = vocab.n_features
    B = np.zeros((n, len(columns)), dtype=np.float64)
    for start in range(0, n, _CHUNK):
        chunk = parsed[start : start + _CHUNK]
        batch = vocab.transform(chunk)
        B[start : start + len(chunk), :d] = batch.X
        if hashed:
            for offset, (rec, missed) in enumerate(zip(chunk, batch.unseen_values, strict=True)):
                row = B[start + offset]
                for slot, value in missed:
                    if slot in rec.numeric and slot in full.numeric:
                        mean, std = full.numeric[slot]
                        x = full.weight(slot) * float(np.clip((rec.numeric[slot] - mean) / std, -3.0, 3.0))
                        name = slot
                    else:
                        x = full.weight(slot) / math.sqrt(max(len(rec.values(slot)), 1))
                        name = f"{slot}={value}"
                    bucket, sign = _hash_column(name, HASHED_FEATURES)
                    row[d + bucket] += sign * x
    norms = np.sqrt(np.einsum("ij,ij->i", B, B))
    empty = norms == 0.0
    B[empty, -1] = 1.0
    norms[empty] = 1.0
    B /= norms[:, None]
    return B, columns, full


def with_embeddings(features: np.ndarray, columns: list[str], embeddings: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Unit attribute rows (N, D) and embeddings (N, dim; NaN rows for none) -> unit rows (N, D + dim)."""
    U = unit_rows(embeddings)
    have = np.einsum("ij,ij->i", U, U) > 0.5
    share = math.sqrt(0.5)
    fused = np.hstack([features * np.where(have, share, 1.0)[:, None], U * share])
    return fused, columns + [f"#embedding:{j}" for j in range(U.shape[1])]


def build_kernel(
    parsed: Sequence[ParsedRecord],
    quality: np.ndarray,
    diversity_weight: float,
    quality_weight: float,
    embeddings: np.ndarray | None = None,
) -> DiversityKernel:
    """The pool's kernel from its parsed VLT records (N) and qualities ``u`` (N,) in [0, 1].

    ``embeddings`` (N, dim), NaN rows for images without one, or None: see the module docstring.
    """
    features, columns, vocabulary = encode_features(parsed)
    if embeddings is not None:
        features, columns = with_embeddings(features, columns, embeddings)
    u = np.clip(np.asarray(quality, dtype=np.float64), 0.0, 1.0)
    return DiversityKernel(features, u, quality_alpha(diversity_weight, quality_weight), columns, vocabulary)
