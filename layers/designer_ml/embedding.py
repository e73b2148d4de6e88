"""Optional image embeddings: reading them off records and turning them into a feature block.

The Node backend's image analysis may send an ``embedding`` (one float array per record or
image, one dimension per designer) beside the VLT attributes. It carries what attributes
cannot name (cut, drape, print, styling). Every stage uses it when the designer's data has one
and behaves exactly as without it otherwise:

- profile: the style model's rows are the attribute rows with an :class:`EmbeddingBlock`
  appended (the PCA + mixture then sees both);
- validate: the off-style model adds a density of the embeddings (``validation.novelty``);
- select: the DPP similarity averages the attribute and the embedding cosine similarities.

numpy only: serving code imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FIELD = "embedding"


def embedding_of(item: Any) -> Sequence[float] | None:
    """The embedding a raw record / image dict or a request model carries, or None."""
    value = item.get(FIELD) if isinstance(item, Mapping) else getattr(item, FIELD, None)
    return value if isinstance(value, list | tuple | np.ndarray) and len(value) else None


def embedding_matrix(items: Sequence[Any], dim: int | None = None) -> np.ndarray | None:
    """The embeddings of ``items`` as rows, shape (n, dim) float64, NaN rows where one has none.

    None when no item has one (and ``dim`` is None). Dimensions were checked by the request
    models; a stored record of another dimension (a profile refitted on other embeddings)
    counts as missing.
    """
    found = [embedding_of(item) for item in items]
    if dim is None:
        dims = [len(e) for e in found if e is not None]
        if not dims:
            return None
        dim = dims[0]
    E = np.full((len(items), dim), np.nan, dtype=np.float64)
    for i, e in enumerate(found):
        if e is not None and len(e) == dim:
            E[i] = np.asarray(e, dtype=np.float64)
    return E


def present(E: np.ndarray) -> np.ndarray:
    """Rows of an :func:`embedding_matrix` that hold an embedding, shape (n,) bool."""
    return ~np.isnan(E).any(axis=1)


def total_variance(X: np.ndarray) -> float:
    """Sum of the column variances of ``X`` (the inertia PCA distributes over its components)."""
    return float(np.var(np.asarray(X, dtype=np.float64), axis=0).sum()) if len(X) else 0.0


@dataclass
class EmbeddingBlock:
    """The embedding's columns of a fused feature matrix.

    ``rows(E) = weight * (E - mean)``, a missing embedding at the mean (zeros): like a slot the
    analyser left out, it says nothing. ``weight`` makes the block's total variance equal to
    the attribute block's (:meth:`fit`).

    Attributes
    ----------
    mean : ndarray of shape (dim,)
        Mean of the portfolio's embeddings.
    weight : float
    """

    mean: np.ndarray
    weight: float

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, E: np.ndarray, reference_variance: float) -> EmbeddingBlock:
        """The block of the portfolio's embeddings ``E`` (n, dim), NaN rows for missing ones.

        Why equal total variance: PCA (and so the mixture after it) gives each block a share of
        its components in proportion to the block's variance, which depends only on units (an
        embedding's scale is arbitrary, one-hot columns are weighted by the encoder). Scaling the
        embedding block to the attribute block's total variance (``reference_variance``) gives
        each source half of the inertia, the per-block normalisation of multiple factor
        analysis by total rather than first-axis inertia; no constant is fitted to a data set.
        """
        have = present(E)
        mean = E[have].mean(axis=0) if have.any() else np.zeros(E.shape[1])
        centred = np.where(have[:, None], E - mean, 0.0)
        own = total_variance(centred)
        weight = float(np.sqrt(reference_variance / own)) if own > 0 and reference_variance > 0 else 1.0
        return cls(mean=mean, weight=weight)

    def rows(self, E: np.ndarray | None, n: int) -> np.ndarray:
        """The block's rows for ``n`` items with embeddings ``E`` (n, dim) or None; float32."""
        if E is None:
            return np.zeros((n, self.dim), dtype=np.float32)
        have = present(E)
        return np.where(have[:, None], self.weight * (E - self.mean), 0.0).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"dim": self.dim, "weight": self.weight, "mean": [float(v) for v in self.mean]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmbeddingBlock:
        mean = np.asarray(data["mean"], dtype=np.float64)
        if mean.ndim != 1 or mean.shape[0] != int(data["dim"]) or not np.all(np.isfinite(mean)):
            raise ValueError("embedding block: mean does not match its dimension")
        return cls(mean=mean, weight=float(data["weight"]))


def unit_rows(E: np.ndarray) -> np.ndarray:
    """Embeddings centred on their pool's mean and scaled to unit length, shape (n, dim) float64.

    Rows without an embedding (or at the mean) are zeros. Centring first: raw image embeddings
    share a large common direction (all cosine similarities near 0.8 for CLIP-like models), which
    would make every pair look alike.
    """
    have = present(E)
    if not have.any():
        return np.zeros(E.shape, dtype=np.float64)
    centred = np.where(have[:, None], E - E[have].mean(axis=0), 0.0)
    norms = np.linalg.norm(centred, axis=1)
    ok = norms > 1e-12
    centred[ok] /= norms[ok, None]
    centred[~ok] = 0.0
    return centred
