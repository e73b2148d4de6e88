"""DPP inference on a low-rank kernel ``L = diag(q) B Bᵀ diag(q)`` (see :mod:`.kernel`).

Greedy MAP: the incremental-Cholesky algorithm of Chen, Zhang & Zhou, "Fast Greedy MAP
Inference for Determinantal Point Process" (NeurIPS 2018, Algorithm 1): O(N k (D + k)) time,
O(N k) memory besides B, never an N × N matrix. It is run on S = B Bᵀ with the quality in the
log domain (``log d_i² = 2 log q_i + log s_i``, where ``s_i`` is the Schur complement of S), which
is the same greedy choice as on L, but cannot overflow for large quality exponents, and lets the
stopping rule speak of attributes alone: the greedy stops when every remaining candidate's
``s_i`` is below ``NOVELTY_EPS``, i.e. its attribute vector lies in the span of the chosen ones
(a duplicate, or a singular kernel), so that adding it would make ``det L_Y`` zero.

Exact k-DPP sampling: our own numpy sampler rather than dppy, because the select function is a
serving function, and dppy (which imports scipy and matplotlib and takes seconds to import) may
not be on its request path, not even lazily for one method. It is Kulesza & Taskar's
algorithm ("Determinantal Point Processes for Machine Learning", 2012, Algorithms 1 and 8) on
the dual kernel ``C = Φᵀ Φ`` (D × D, ``Φ = diag(q) B``): eigenvectors chosen with elementary
symmetric polynomials (in the log domain), then the projection DPP sampled by the chain rule with
the same incremental Cholesky as the greedy. Tests check it against exact marginals by
enumeration; the benchmark also against dppy.

Both methods, when they stop short of k (the kernel has rank below k, e.g. identical images),
continue with a new round over the images not chosen yet, so the selection covers every
distinct mode once before it repeats one (see :func:`greedy_rounds`, :func:`sample_rounds`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

# Share of an image's attribute vector (squared) that must lie outside the span of the images
# chosen so far for it to count as adding something.
NOVELTY_EPS = 1e-6
# Eigenvalues of the dual kernel below this share of the largest are numerical zeros.
RANK_TOL = 1e-10


@dataclass
class Selection:
    """Result of greedy MAP or sampling.

    Attributes
    ----------
    order : ndarray of shape (m,), int64
        Chosen indices into the pool, in selection order.
    novelty : ndarray of shape (m,), float64
        ``s_i``: squared share of each chosen image's attribute vector outside the span of the
        images chosen before it (1 = shares nothing, 0 = repeats them).
    first_round : int
        How many were chosen before the first stop (the number of distinct modes reached).
    """

    order: np.ndarray
    novelty: np.ndarray
    first_round: int


def _available_mask(n: int, available: np.ndarray | None) -> np.ndarray:
    return np.ones(n, dtype=bool) if available is None else np.asarray(available, dtype=bool).copy()


def greedy_map(
    features: np.ndarray,
    log_quality: np.ndarray,
    k: int,
    available: np.ndarray | None = None,
    eps: float = NOVELTY_EPS,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy MAP of ``det L_Y`` over at most ``k`` items (Chen et al. 2018, Algorithm 1).

    Parameters
    ----------
    features : ndarray of shape (N, D)
        B, unit rows.
    log_quality : ndarray of shape (N,)
        ``log q_i``.
    k : int
        Most items to choose.
    available : ndarray of shape (N,), bool, optional
        Candidates (default: all).

    Returns
    -------
    order : ndarray of shape (m,), int64, m <= k
        Chosen indices in selection order; m < k when no remaining candidate adds anything.
    novelty : ndarray of shape (m,)
        ``s_i`` of each when chosen (non-increasing up to quality).
    """
    n = features.shape[0]
    mask = _available_mask(n, available)
    residual = np.einsum("ij,ij->i", features, features)
    residual[~mask] = 0.0
    k = max(0, min(int(k), int(mask.sum())))
    factors = np.empty((k, n), dtype=np.float64)
    base = 2.0 * np.asarray(log_quality, dtype=np.float64)
    order: list[int] = []
    novelty: list[float] = []
    for t in range(k):
        gains = np.full(n, -np.inf)
        live = residual > eps
        gains[live] = base[live] + np.log(residual[live])
        j = int(np.argmax(gains))
        if not np.isfinite(gains[j]):
            break
        order.append(j)
        novelty.append(float(residual[j]))
        e = (features @ features[j] - factors[:t, j] @ factors[:t]) / math.sqrt(residual[j])
        factors[t] = e
        residual -= e * e
        residual[j] = 0.0
    return np.asarray(order, dtype=np.int64), np.asarray(novelty, dtype=np.float64)


def greedy_rounds(features: np.ndarray, log_quality: np.ndarray, k: int) -> Selection:
    """Greedy MAP of ``k`` items; when it stops short, a new greedy round over the rest."""
    n = features.shape[0]
    k = min(int(k), n)
    available = np.ones(n, dtype=bool)
    orders: list[np.ndarray] = []
    novelties: list[np.ndarray] = []
    first_round = -1
    chosen = 0
    while chosen < k:
        order, novelty = greedy_map(features, log_quality, k - chosen, available)
        if first_round < 0:
            first_round = len(order)
        else:
            # Later rounds repeat modes already chosen: nothing new relative to the selection.
            novelty = np.zeros_like(novelty)
        if len(order) == 0:
            break
        available[order] = False
        orders.append(order)
        novelties.append(novelty)
        chosen += len(order)
    return _joined(orders, novelties, max(first_round, 0))


def _joined(orders: list[np.ndarray], novelties: list[np.ndarray], first_round: int) -> Selection:
    if not orders:
        return Selection(np.zeros(0, dtype=np.int64), np.zeros(0), first_round)
    return Selection(np.concatenate(orders), np.concatenate(novelties), first_round)


def _log_esp(log_lambda: np.ndarray, k: int) -> np.ndarray:
    """``log e_l(λ_1..λ_n)`` for l = 0..k, n = 0..M: shape (k + 1, M + 1)."""
    m = len(log_lambda)
    table = np.full((k + 1, m + 1), -np.inf)
    table[0, :] = 0.0
    for n in range(1, m + 1):
        table[1:, n] = np.logaddexp(table[1:, n - 1], log_lambda[n - 1] + table[:-1, n - 1])
    return table


def _sample_eigen_indices(log_lambda: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    # Kulesza & Taskar, Algorithm 8: include eigenvalue n with probability λ_n e_{l-1}^{n-1} / e_l^n.
    table = _log_esp(log_lambda, k)
    chosen: list[int] = []
    remaining = k
    for n in range(len(log_lambda), 0, -1):
        if remaining == 0:
            break
        if n == remaining:
            chosen.extend(range(n - 1, -1, -1))
            break
        p = math.exp(log_lambda[n - 1] + table[remaining - 1, n - 1] - table[remaining, n])
        if rng.random() < p:
            chosen.append(n - 1)
            remaining -= 1
    return chosen


def _sample_projection(vectors: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sample the projection DPP ``K = V Vᵀ`` (V: (N, m), orthonormal columns) by the chain rule."""
    n, m = vectors.shape
    residual = np.einsum("ij,ij->i", vectors, vectors)
    factors = np.empty((m, n), dtype=np.float64)
    order: list[int] = []
    novelty: list[float] = []
    for t in range(m):
        weights = np.clip(residual, 0.0, None)
        total = weights.sum()
        if total <= 0.0:
            break
        j = int(rng.choice(n, p=weights / total))
        order.append(j)
        novelty.append(float(residual[j]))
        e = (vectors @ vectors[j] - factors[:t, j] @ factors[:t]) / math.sqrt(residual[j])
        factors[t] = e
        residual -= e * e
        residual[j] = 0.0
    return np.asarray(order, dtype=np.int64), np.asarray(novelty)


def sample_k_dpp(
    features: np.ndarray,
    log_quality: np.ndarray,
    k: int,
    rng: np.random.Generator,
    available: np.ndarray | None = None,
) -> np.ndarray:
    """One exact sample of the k-DPP with ``L = diag(q) B Bᵀ diag(q)`` restricted to ``available``.

    Returns the chosen indices (shape (m,), in sampling order) with ``m = min(k, rank L)``:
    a k-DPP gives probability zero to every set larger than the kernel's rank.
    """
    n = features.shape[0]
    mask = _available_mask(n, available)
    idx = np.flatnonzero(mask)
    if len(idx) == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    lq = np.asarray(log_quality, dtype=np.float64)[idx]
    # Scaling q by a constant scales every det L_Y of size k alike: the k-DPP is unchanged.
    phi = features[idx] * np.exp(lq - lq.max())[:, None]
    lam, w = np.linalg.eigh(phi.T @ phi)
    positive = lam > RANK_TOL * max(float(lam.max()), 0.0)
    lam, w = lam[positive], w[:, positive]
    m = min(int(k), len(lam))
    if m == 0:
        return np.zeros(0, dtype=np.int64)
    picked = _sample_eigen_indices(np.log(lam), m, rng)
    vectors = (phi @ w[:, picked]) / np.sqrt(lam[picked])
    order, _ = _sample_projection(vectors, rng)
    return idx[order]


def sample_rounds(features: np.ndarray, log_quality: np.ndarray, k: int, rng: np.random.Generator) -> Selection:
    """An exact k-DPP sample; when the kernel's rank is below k, new samples over the rest."""
    n = features.shape[0]
    k = min(int(k), n)
    available = np.ones(n, dtype=bool)
    orders: list[np.ndarray] = []
    novelties: list[np.ndarray] = []
    first_round = -1
    chosen = 0
    while chosen < k:
        order = sample_k_dpp(features, log_quality, k - chosen, rng, available)
        if len(order) == 0:
            break
        novelty = novelty_along(features, np.concatenate([*orders, order]))[chosen:]
        if first_round < 0:
            first_round = len(order)
        available[order] = False
        orders.append(order)
        novelties.append(novelty)
        chosen += len(order)
    return _joined(orders, novelties, max(first_round, 0))


def novelty_along(features: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``s_i`` of each item of ``order`` given those before it, shape (k,): O(k² D + k³), no N."""
    rows = features[np.asarray(order, dtype=np.int64)]
    gram = rows @ rows.T
    out = np.zeros(len(rows))
    factors = np.zeros((len(rows), len(rows)))
    for t in range(len(rows)):
        r = gram[t, t] - factors[t, :t] @ factors[t, :t]
        out[t] = max(r, 0.0)
        if r <= NOVELTY_EPS:
            continue  # keep the column zero: a repeated mode explains nothing new
        d = math.sqrt(r)
        factors[t + 1 :, t] = (gram[t + 1 :, t] - factors[t + 1 :, :t] @ factors[t, :t]) / d
        factors[t, t] = d
    return out


def exact_k_dpp_marginals(kernel: np.ndarray, k: int) -> tuple[np.ndarray, dict[tuple[int, ...], float]]:
    """Inclusion probabilities (N,) and set probabilities of the k-DPP with dense ``kernel``.

    By enumeration of every k-subset: the reference for tests and benchmarks (small N only).
    """
    n = kernel.shape[0]
    probs: dict[tuple[int, ...], float] = {}
    for subset in itertools.combinations(range(n), k):
        probs[subset] = max(float(np.linalg.det(kernel[np.ix_(subset, subset)])), 0.0)
    total = sum(probs.values())
    marginals = np.zeros(n)
    for subset, p in probs.items():
        probs[subset] = p / total
        marginals[list(subset)] += p / total
    return marginals, probs
