"""Serving-side beliefs: a stored scorer plus the evidence it has not seen yet, in numpy.

A scorer maps rows X (n, D) to ``mean`` (n,) and ``projection`` Z (n, r) with
``score = mean + Z @ u``, ``u ~ N(0, I)`` under the stored posterior (see
``model.export_onnx``). Evidence newer than the stored model (feedback since the last
retrain, or the request's ``feedback_history``) updates the belief about ``u`` exactly (the
model is linear-Gaussian): with ``A = sqrt(w / noise_var) Z_e`` and its thin SVD
``A = U S V'``, the posterior of ``u`` has precision ``H = I + A'A``, mean
``H^-1 Z_e' W (y - m_e) / noise_var``, and ``H^-1/2 = I + V diag((1 + s^2)^-1/2 - 1) V'``.
Cost is O(n_e^2 r) for n_e fresh events: no d x d inverse per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from designer_ml.reward.model import NOISE_VAR


class Scorer(Protocol):
    """Rows (n, D) -> (mean (n,), projection (n, r)), float64."""

    def project(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class NumpyScorer:
    """A scorer from a weight mean (D,) and covariance square root (D, r), in numpy.

    Used for the built-in template prior (no artifact exists) and by training code.
    """

    def __init__(self, mean: np.ndarray, sqrt_cov: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.sqrt_cov = np.asarray(sqrt_cov, dtype=np.float64)

    def project(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return X @ self.mean, X @ self.sqrt_cov


class OnnxScorer:
    """A scorer served by onnxruntime from a stored reward model (``model.export_onnx``)."""

    def __init__(self, session: object):
        self.session = session
        self._input = session.get_inputs()[0].name  # type: ignore[attr-defined]

    def project(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, proj = self.session.run(None, {self._input: np.ascontiguousarray(X, dtype=np.float32)})  # type: ignore[attr-defined]
        return np.asarray(mean, dtype=np.float64)[:, 0], np.asarray(proj, dtype=np.float64)


@dataclass
class Belief:
    """Posterior over the standardised weights ``u`` after fresh evidence.

    Attributes
    ----------
    u_mean : ndarray of shape (r,)
    V : ndarray of shape (r, k)
        Right singular vectors of the scaled evidence projection (k <= n_evidence).
    s2 : ndarray of shape (k,)
        Their squared singular values.
    n_evidence : int
    """

    u_mean: np.ndarray
    V: np.ndarray
    s2: np.ndarray
    n_evidence: int = 0

    @classmethod
    def prior(cls, r: int) -> Belief:
        return cls(np.zeros(r), np.zeros((r, 0)), np.zeros(0), 0)

    @classmethod
    def from_evidence(
        cls, mean_e: np.ndarray, Z_e: np.ndarray, y: np.ndarray, weights: np.ndarray, noise_var: float = NOISE_VAR
    ) -> Belief:
        """Belief after events with stored-model outputs ``mean_e`` (n,), ``Z_e`` (n, r)."""
        r = Z_e.shape[1]
        if len(y) == 0:
            return cls.prior(r)
        scale = np.sqrt(np.asarray(weights, dtype=float) / noise_var)
        A = Z_e * scale[:, None]
        _, s, Vt = np.linalg.svd(A, full_matrices=False)
        V, s2 = Vt.T, s**2
        g = Z_e.T @ (weights * (y - mean_e)) / noise_var
        # H^-1 g = g - V diag(s2 / (1 + s2)) V' g
        u_mean = g - V @ ((s2 / (1.0 + s2)) * (V.T @ g))
        return cls(u_mean, V, s2, int(len(y)))

    def mean(self, m: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Posterior mean score of rows with outputs m (n,), Z (n, r)."""
        return m + Z @ self.u_mean

    def sample_u(self, eps: np.ndarray) -> np.ndarray:
        """Posterior draws of u from standard normal ``eps`` of shape (r,) or (r, S)."""
        shrink = 1.0 / np.sqrt(1.0 + self.s2) - 1.0
        if eps.ndim == 1:
            return self.u_mean + eps + self.V @ (shrink * (self.V.T @ eps))
        return self.u_mean[:, None] + eps + self.V @ (shrink[:, None] * (self.V.T @ eps))

    def sd(self, Z: np.ndarray) -> np.ndarray:
        """Posterior standard deviation of the scores of rows with projection Z (n, r)."""
        ZV = Z @ self.V
        var = np.sum(Z * Z, axis=1) - np.sum(ZV * ZV * (self.s2 / (1.0 + self.s2)), axis=1)
        return np.sqrt(np.clip(var, 0.0, None))
