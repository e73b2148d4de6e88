"""The Bayesian reward model: P(like | prompt phrases, spec, style mode), with a posterior.

Model (hierarchical Bayesian linear regression on graded rewards)::

    y_e    = x_e . w_u + noise,  noise ~ N(0, NOISE_VAR / weight_e)    (one designer u)
    w_u    = w_pop + delta_u,     delta_u ~ N(0, diag(BETWEEN_VAR))      (designers differ)
    w_pop  ~ N(prior_mean, diag(POPULATION_PRIOR_VAR))

``y`` is a like (1) / dislike (0), softened by ``quality_score`` when sent, and an "outlier"
(an exceptional success) counts as a like with twice the weight.

Written in numpy rather than with scikit-learn (``BayesianRidge``/``ARDRegression``) because
(1) the feedback image must not carry scikit-learn, and the serving path may not import it;
(2) we need things those estimators do not give: an informative prior mean and full prior
precision (the population posterior), the full posterior covariance for Thompson sampling,
and the sufficient statistics (X'WX, X'Wy) that let the population model be updated one
designer at a time and let serving add fresh evidence exactly. Linear rather than logistic
because the Gaussian model is conjugate: a fit is one linear solve (no iterations), adding a
designer to the population is exact, and an optimize request can fold in events newer than
the stored model in closed form. Predictions are clipped to [0, 1] as P(like).

The population's knowledge about ``w_pop`` is kept as a sum of per-designer Gaussian messages
(:func:`population_message`), so a designer's own evidence can be taken out again
(leave-one-out) when it becomes the prior for that same designer.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from designer_ml.reward import features as F

NOISE_VAR = 0.25  # variance of a like/dislike around its probability at p = 0.5 (the largest)
OUTLIER_WEIGHT = 2.0
# Prior beliefs, in P(like) units: the like rate of a designer sits around 0.5 +- 0.3; one
# phrase moves it by a few points (+- 0.15 at two standard deviations), a spec attribute or
# a style mode by less; designers differ from the population by about as much again.
INTERCEPT_PRIOR = (0.5, 0.3**2)
PHRASE_PRIOR_VAR = 0.075**2
SPEC_PRIOR_VAR = 0.05**2
STYLE_PRIOR_VAR = 0.05**2
BETWEEN_VAR_PHRASE = 0.075**2
BETWEEN_VAR_SPEC = 0.05**2
BETWEEN_VAR_INTERCEPT = 0.15**2


def reward_of(feedback_type: str, quality_score: float | None) -> tuple[float, float]:
    """(reward in [0, 1], weight) of one feedback event.

    A like is 1 and a dislike 0; a quality score moves the reward a quarter of the way
    towards it (a liked image of quality 0.2 is a weaker like). "outlier" is an exceptional
    like: reward 1, weight 2.
    """
    base = 0.0 if feedback_type == "dislike" else 1.0
    weight = OUTLIER_WEIGHT if feedback_type == "outlier" else 1.0
    if quality_score is not None and math.isfinite(quality_score):
        base = 0.75 * base + 0.25 * min(1.0, max(0.0, float(quality_score)))
    return base, weight


def population_prior() -> tuple[np.ndarray, np.ndarray]:
    """Prior mean and variance of the population weights, shape (SHARED_D,) each."""
    mean = np.zeros(F.SHARED_D)
    var = np.empty(F.SHARED_D)
    mean[F.INTERCEPT], var[F.INTERCEPT] = INTERCEPT_PRIOR
    var[F.PHRASE_START : F.SPEC_START] = PHRASE_PRIOR_VAR
    var[F.SPEC_START : F.STYLE_START] = SPEC_PRIOR_VAR
    return mean, var


def between_var() -> np.ndarray:
    """Variance of a designer's weights around the population's, shape (SHARED_D,)."""
    var = np.empty(F.SHARED_D)
    var[F.INTERCEPT] = BETWEEN_VAR_INTERCEPT
    var[F.PHRASE_START : F.SPEC_START] = BETWEEN_VAR_PHRASE
    var[F.SPEC_START : F.STYLE_START] = BETWEEN_VAR_SPEC
    return var


@dataclass
class Posterior:
    """A Gaussian belief N(mean, precision^-1) over the weights.

    Attributes
    ----------
    mean : ndarray of shape (d,)
    precision : ndarray of shape (d, d)
    """

    mean: np.ndarray
    precision: np.ndarray

    def sqrt_cov(self) -> np.ndarray:
        """L of shape (d, d) with L @ L.T equal to the covariance (precision^-1)."""
        chol = np.linalg.cholesky(_symmetric(self.precision))
        # precision = R R^T  =>  covariance = R^-T R^-1, so L = R^-T.
        return np.linalg.inv(chol).T

    def covariance(self) -> np.ndarray:
        return _symmetric(np.linalg.inv(_symmetric(self.precision)))


def _symmetric(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + a.T)


def fit(
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray | None = None,
    noise_var: float = NOISE_VAR,
) -> Posterior:
    """Posterior of the weights given rows X (n, d), rewards y (n,) and event weights (n,)."""
    weights = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    Xw = X * (weights / noise_var)[:, None]
    precision = _symmetric(prior_precision + X.T @ Xw)
    rhs = prior_precision @ prior_mean + Xw.T @ y
    chol = np.linalg.cholesky(precision)
    mean = np.linalg.solve(chol.T, np.linalg.solve(chol, rhs))
    return Posterior(mean=mean, precision=precision)


def sufficient_stats(X: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(X'WX of shape (d, d), X'Wy of shape (d,)) of a designer's events."""
    Xw = X * weights[:, None]
    return _symmetric(X.T @ Xw), Xw.T @ y


def population_message(S: np.ndarray, b: np.ndarray, noise_var: float = NOISE_VAR) -> tuple[np.ndarray, np.ndarray]:
    """What one designer's events say about the population weights, as a Gaussian message.

    With ``A = S / noise_var`` and ``T = diag(between_var())``, the designer's likelihood
    about ``w_pop`` (their own deviation integrated out) has precision ``(A^-1 + T)^-1`` and
    information ``(I + A T)^-1 b / noise_var``; computed through the symmetric
    ``B = T^1/2 A T^1/2`` so that it is defined when A is singular (few events).

    Returns (precision of shape (SHARED_D, SHARED_D), information of shape (SHARED_D,)).
    """
    t_half = np.sqrt(between_var())
    A = S[: F.SHARED_D, : F.SHARED_D] / noise_var
    bb = b[: F.SHARED_D] / noise_var
    B = _symmetric(t_half[:, None] * A * t_half[None, :])
    lam, Q = np.linalg.eigh(B)
    lam = np.clip(lam, 0.0, None)
    P = (Q * (lam / (1.0 + lam))) @ Q.T
    precision = P / t_half[:, None] / t_half[None, :]
    h = (Q * (1.0 / (1.0 + lam))) @ (Q.T @ (t_half * bb)) / t_half
    return _symmetric(precision), h


def population_posterior(agg_precision: np.ndarray | None, agg_information: np.ndarray | None) -> Posterior:
    """The population weights' posterior from the summed designer messages (None: no data)."""
    mean0, var0 = population_prior()
    precision = np.diag(1.0 / var0)
    information = mean0 / var0
    if agg_precision is not None and agg_information is not None:
        precision = precision + agg_precision
        information = information + agg_information
    precision = _symmetric(precision)
    return Posterior(mean=np.linalg.solve(precision, information), precision=precision)


def designer_prior(population: Posterior, between: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Prior of one designer's weights given the population's: mean (D,), precision (D, D).

    ``w_u = w_pop + delta``: covariance ``Cov(w_pop) + T`` on the shared columns, where ``T`` is
    the between-designer covariance (``between``, learned by :func:`between_covariance`; the
    built-in ``diag(between_var())`` when None); style-mode columns (meaningful only for this
    designer) get their own independent prior.
    """
    T = np.diag(between_var()) if between is None else between
    cov_shared = population.covariance() + T
    cov = np.zeros((F.D, F.D))
    cov[: F.SHARED_D, : F.SHARED_D] = cov_shared
    cov[F.STYLE_START :, F.STYLE_START :] = np.diag(np.full(F.STYLE_MODES, STYLE_PRIOR_VAR))
    mean = np.zeros(F.D)
    mean[: F.SHARED_D] = population.mean
    return mean, _symmetric(np.linalg.inv(cov))


# Empirical Bayes for the between-designer covariance: a weak inverse-Wishart-style prior worth
# this many designers at the built-in variances keeps the estimate positive definite and near
# them until a few designers have evidence (not tuned: any small count gives the same fixed
# point once designers outnumber it).
EB_PRIOR_DESIGNERS = 2.0
EB_ITERATIONS = 3


def between_covariance(
    population_mean: np.ndarray,
    designer_stats: Sequence[tuple[np.ndarray, np.ndarray]],
    start: np.ndarray | None = None,
    iterations: int = EB_ITERATIONS,
    noise_var: float = NOISE_VAR,
) -> np.ndarray:
    """The between-designer covariance ``T`` of the shared weights, learned from the designers.

    Designers cluster around tastes they share (archetypes): then their deviations from the
    population are correlated across phrases and attributes, and ``T`` has a few large
    directions (the archetypes' differences) on top of a diagonal. EM for the random-effects
    covariance of ``delta_u ~ N(0, T)`` with each designer's likelihood ``y ~ X (w_pop +
    delta_u)`` (population mean held fixed)::

        E: P_u = T^-1 + S_u / s2,  m_u = P_u^-1 (b_u - S_u w_pop) / s2
        M: T = (nu0 T0 + sum_u (m_u m_u' + P_u^-1)) / (nu0 + n)

    with ``T0 = diag(between_var())`` and ``nu0 = EB_PRIOR_DESIGNERS``. ``T`` is then a
    diagonal plus a matrix of rank at most n (the designers' own deviations): a designer's
    prior ``N(w_pop, Cov(w_pop) + T)`` lets one like move every phrase that designers like
    them also liked. Warm-started from ``start`` (the last estimate), a few iterations per call:
    each retrain continues the EM.

    Parameters
    ----------
    population_mean : ndarray of shape (SHARED_D,)
    designer_stats : sequence of (S (SHARED_D, SHARED_D), b (SHARED_D,))
        Each designer's sufficient statistics X'WX and X'Wy on the shared columns.
    """
    T0 = np.diag(between_var())
    T = T0.copy() if start is None else _symmetric(np.asarray(start, dtype=float))
    if not designer_stats:
        return T
    d = len(population_mean)
    n = len(designer_stats)
    for _ in range(max(1, iterations)):
        T_inv = np.linalg.inv(T)
        means = np.zeros((n, d))
        spread = np.zeros((d, d))
        for u, (S, b) in enumerate(designer_stats):
            A = S / noise_var
            chol = np.linalg.cholesky(_symmetric(T_inv + A))
            C = np.linalg.solve(chol.T, np.linalg.solve(chol, np.eye(d)))
            means[u] = C @ ((b - S @ population_mean) / noise_var)
            spread += C
        total = EB_PRIOR_DESIGNERS * T0 + n * _shrunk_second_moment(means) + spread
        T = _symmetric(total / (EB_PRIOR_DESIGNERS + n))
    return T


def _shrunk_second_moment(deviations: np.ndarray) -> np.ndarray:
    """The designers' deviations' second moment (d, d), off-diagonal shrunk towards 0.

    Shrinkage towards the diagonal with the Ledoit-Wolf intensity (Schafer and Strimmer 2005,
    target "D"): ``delta = sum_{i != j} Var(s_ij) / sum_{i != j} s_ij^2``, each ``Var(s_ij)``
    estimated from the designers' own products. With ten designers over ~165 weights the raw
    moment is mostly chance correlation (worlds of independent tastes lost ~4 points of share to
    it); where designers do share archetypes the correlations are larger than their noise and
    survive. Our own: scikit-learn's LedoitWolf shrinks towards a multiple of the identity,
    which would also erase the different variances of phrases, attributes and the intercept.
    """
    n = len(deviations)
    products = deviations[:, :, None] * deviations[:, None, :]
    moment = products.mean(axis=0)
    if n < 2:
        return np.diag(np.diag(moment))
    off = ~np.eye(moment.shape[0], dtype=bool)
    variance = products.var(axis=0, ddof=1)[off].sum() / n
    signal = float((moment[off] ** 2).sum())
    delta = 1.0 if signal <= 0 else min(1.0, variance / signal)
    return (1.0 - delta) * moment + delta * np.diag(np.diag(moment))


def predictive(posterior_mean: np.ndarray, X: np.ndarray) -> np.ndarray:
    """P(like) of rows X (n, D) under a weight vector: the linear prediction clipped to [0, 1]."""
    return np.clip(X @ posterior_mean, 0.0, 1.0)


def holdout_metrics(p: np.ndarray, y: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """Brier score, log loss (probabilities clipped to [0.02, 0.98]) and accuracy on events."""
    if len(y) == 0:
        return {"n": 0}
    pc = np.clip(p, 0.02, 0.98)
    w = weights / weights.sum()
    logloss = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    return {
        "n": int(len(y)),
        "brier": float(np.sum(w * (p - y) ** 2)),
        "log_loss": float(np.sum(w * logloss)),
        "accuracy": float(np.sum(w * ((p >= 0.5) == (y >= 0.5)))),
    }


def per_event_log_loss(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    pc = np.clip(p, 0.02, 0.98)
    return -(y * np.log(pc) + (1 - y) * np.log(1 - pc))


# -- serialisation ---------------------------------------------------------------------------


def encode_array(a: np.ndarray, dtype: str = "<f8") -> dict[str, Any]:
    """A numpy array as JSON: base64 bytes, dtype and shape."""
    arr = np.ascontiguousarray(a, dtype=dtype)
    return {"dtype": dtype, "shape": list(arr.shape), "data": base64.b64encode(arr.tobytes()).decode()}


def decode_array(doc: Mapping[str, Any]) -> np.ndarray:
    arr = np.frombuffer(base64.b64decode(doc["data"]), dtype=doc["dtype"])
    return arr.reshape(doc["shape"]).astype(np.float64)


def encode_symmetric(a: np.ndarray) -> dict[str, Any]:
    """The upper triangle of a symmetric matrix (half the bytes)."""
    iu = np.triu_indices(a.shape[0])
    return {"triangle_of": int(a.shape[0]), **encode_array(a[iu])}


def decode_symmetric(doc: Mapping[str, Any]) -> np.ndarray:
    n = int(doc["triangle_of"])
    out = np.zeros((n, n))
    iu = np.triu_indices(n)
    out[iu] = decode_array(doc)
    return _symmetric(out + out.T - np.diag(np.diag(out)))


def fingerprint(parts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


# -- ONNX ------------------------------------------------------------------------------------


def export_onnx(mean: np.ndarray, sqrt_cov: np.ndarray, metadata: Mapping[str, Any]) -> bytes:
    """The scorer as ONNX: float32 X [n, D] -> ``mean`` [n, 1] and ``projection`` [n, D].

    ``mean`` is x . w_mean (the posterior-mean P(like) before clipping) and ``projection``
    is x @ L with L L' the posterior covariance, so that serving draws Thompson samples
    (``mean + projection @ eps``), UCB widths (row norms of ``projection``) and exact
    updates with fresh evidence from these two outputs and numpy alone. Built with
    ``onnx.helper`` (two MatMul nodes): there is no scikit-learn estimator to convert.
    ``onnx`` is imported here only, by the retrain function; serving loads the bytes with
    onnxruntime.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from designer_ml.onnx_models import TARGET_OPSET

    d = int(mean.shape[0])
    w_mean = numpy_helper.from_array(np.asarray(mean, dtype=np.float32).reshape(d, 1), name="w_mean")
    w_sqrt = numpy_helper.from_array(np.asarray(sqrt_cov, dtype=np.float32), name="w_sqrt_cov")
    graph = helper.make_graph(
        nodes=[
            helper.make_node("MatMul", ["X", "w_mean"], ["mean"], name="posterior_mean"),
            helper.make_node("MatMul", ["X", "w_sqrt_cov"], ["projection"], name="posterior_projection"),
        ],
        name="reward_scorer",
        inputs=[helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, d])],
        outputs=[
            helper.make_tensor_value_info("mean", TensorProto.FLOAT, [None, 1]),
            helper.make_tensor_value_info("projection", TensorProto.FLOAT, [None, int(sqrt_cov.shape[1])]),
        ],
        initializer=[w_mean, w_sqrt],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", TARGET_OPSET[""])],
        producer_name="designer-ml-reward",
    )
    model.ir_version = min(model.ir_version, 9)
    helper.set_model_props(model, {str(k): str(v) for k, v in metadata.items()})
    onnx.checker.check_model(model)
    return model.SerializeToString()
