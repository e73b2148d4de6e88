"""Greedy MAP and the exact k-DPP sampler on small kernels, against explicit determinants."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from designer_ml.selection.dpp import (
    exact_k_dpp_marginals,
    greedy_map,
    greedy_rounds,
    novelty_along,
    sample_k_dpp,
    sample_rounds,
)


def random_pool(rng: np.random.Generator, n: int, d: int, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows (n, d) with non-negative entries (like one-hot features) and log qualities (n,)."""
    features = rng.random((n, d)) ** 3
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return features, spread * rng.random(n)


def log_det(features: np.ndarray, log_quality: np.ndarray, subset: tuple[int, ...] | list[int]) -> float:
    idx = list(subset)
    sign, value = np.linalg.slogdet(features[idx] @ features[idx].T)
    return 2 * float(log_quality[idx].sum()) + (value if sign > 0 else -math.inf)


def naive_greedy(features: np.ndarray, log_quality: np.ndarray, k: int) -> list[int]:
    chosen: list[int] = []
    for _ in range(k):
        rest = [i for i in range(len(features)) if i not in chosen]
        chosen.append(max(rest, key=lambda i: log_det(features, log_quality, [*chosen, i])))
    return chosen


def test_fast_greedy_makes_the_same_choices_as_explicit_determinants() -> None:
    # Given 40 random pools
    rng = np.random.default_rng(7)
    for _ in range(40):
        features, log_quality = random_pool(rng, n=int(rng.integers(5, 14)), d=int(rng.integers(4, 9)))
        k = int(rng.integers(1, 5))
        # When the incremental-Cholesky greedy runs
        order, novelty = greedy_map(features, log_quality, k)
        # Then it picks what recomputing every determinant picks, and its novelties are the Schur complements
        assert order.tolist() == naive_greedy(features, log_quality, k)
        np.testing.assert_allclose(novelty, novelty_along(features, order), atol=1e-9)


def test_greedy_is_the_exhaustive_optimum_on_most_small_pools() -> None:
    # Given 30 pools of 10 with 4 to choose (MAP is NP-hard: greedy is not always optimal)
    rng = np.random.default_rng(11)
    ratios, optimal = [], 0
    for _ in range(30):
        features, log_quality = random_pool(rng, n=10, d=6, spread=0.5)
        greedy_value = log_det(features, log_quality, greedy_map(features, log_quality, 4)[0].tolist())
        best = max(log_det(features, log_quality, s) for s in itertools.combinations(range(10), 4))
        ratios.append(math.exp(greedy_value - best))
        optimal += math.isclose(greedy_value, best, rel_tol=0, abs_tol=1e-9)
    # Then it is exactly optimal on most, and close on average (determinant ratio)
    assert optimal >= 15
    assert np.mean(ratios) >= 0.9


def test_greedy_stops_when_the_rest_duplicate_what_it_chose() -> None:
    # Given 3 distinct attribute vectors, each repeated 4 times
    base, _ = random_pool(np.random.default_rng(3), n=3, d=5)
    features = np.repeat(base, 4, axis=0)
    log_quality = np.zeros(12)
    # When the greedy is asked for 6
    order, novelty = greedy_map(features, log_quality, 6)
    # Then it stops after one of each, without a singular step
    assert sorted(order // 4) == [0, 1, 2]
    assert np.all(novelty > 1e-3)
    # And the rounds fill the rest by covering every mode once more before any a third time
    rounds = greedy_rounds(features, log_quality, 8)
    assert rounds.first_round == 3
    assert len(set(rounds.order.tolist())) == 8
    assert sorted(rounds.order[:6] // 4) == [0, 0, 1, 1, 2, 2]
    assert np.all(rounds.novelty[3:] == 0.0)


def test_greedy_on_a_pool_of_one_and_k_over_the_pool() -> None:
    # Given a single image, and then 3 images asked for 10
    one, q1 = random_pool(np.random.default_rng(0), n=1, d=3)
    three, q3 = random_pool(np.random.default_rng(1), n=3, d=3)
    # When / Then
    assert greedy_rounds(one, q1, 1).order.tolist() == [0]
    assert sorted(greedy_rounds(three, q3, 10).order.tolist()) == [0, 1, 2]


def test_exact_sampler_inclusion_frequencies_match_the_k_dpp_marginals() -> None:
    # Given a small pool with unequal qualities, and its exact k-DPP by enumeration
    rng = np.random.default_rng(2024)
    features, log_quality = random_pool(rng, n=7, d=5, spread=1.0)
    k, draws = 3, 3000
    q = np.exp(log_quality)
    kernel = (q[:, None] * features) @ (q[:, None] * features).T
    marginals, set_probs = exact_k_dpp_marginals(kernel, k)
    # When the sampler draws many times
    counts = np.zeros(7)
    set_counts: dict[tuple[int, ...], int] = {}
    sample_rng = np.random.default_rng(5)
    for _ in range(draws):
        sample = sample_k_dpp(features, log_quality, k, sample_rng)
        assert len(sample) == k and len(set(sample.tolist())) == k
        counts[sample] += 1
        key = tuple(sorted(sample.tolist()))
        set_counts[key] = set_counts.get(key, 0) + 1
    # Then each image's frequency is within 4 binomial standard errors of its exact marginal
    freq = counts / draws
    se = np.sqrt(marginals * (1 - marginals) / draws)
    assert np.all(np.abs(freq - marginals) <= 4 * se + 1e-3), (freq, marginals)
    # And the sets themselves follow the k-DPP (chi-square over the 35 subsets, far below its 99.9% point)
    chi2 = sum((set_counts.get(s, 0) - draws * p) ** 2 / (draws * p) for s, p in set_probs.items() if p > 0)
    assert chi2 < 65.2  # chi2(34).ppf(0.999)


def test_sampler_never_returns_more_than_the_kernel_rank_and_rounds_fill_up() -> None:
    # Given 6 images spanning only 2 directions
    base, _ = random_pool(np.random.default_rng(9), n=2, d=4)
    features = np.vstack([base[0], base[0], base[1], base[1], base[0], base[1]])
    rng = np.random.default_rng(1)
    # When / Then
    assert len(sample_k_dpp(features, np.zeros(6), 4, rng)) == 2
    filled = sample_rounds(features, np.zeros(6), 4, rng)
    assert filled.first_round == 2 and len(set(filled.order.tolist())) == 4


@pytest.mark.parametrize("k", [1, 4, 9])
def test_sampler_is_reproducible_with_a_seed(k: int) -> None:
    features, log_quality = random_pool(np.random.default_rng(4), n=9, d=9)
    first = sample_k_dpp(features, log_quality, k, np.random.default_rng(42))
    again = sample_k_dpp(features, log_quality, k, np.random.default_rng(42))
    assert first.tolist() == again.tolist() and len(first) == k
