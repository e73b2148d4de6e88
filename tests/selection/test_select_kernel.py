"""The DPP kernel: PSD for every weight pair, low-rank, the quality trade-off, coverage bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
from selection_helpers import mode_image

from designer_ml.selection import coverage
from designer_ml.selection.dpp import greedy_rounds
from designer_ml.selection.kernel import MAX_FEATURES, build_kernel, encode_features, quality_alpha
from designer_ml.vlt import parse_record


def parsed_pool(images: list[dict]) -> list:
    return [parse_record(image["vlt"]) for image in images]


@pytest.mark.parametrize(("diversity", "quality"), [(0.7, 0.3), (0.0, 1.0), (1.0, 0.0), (0.0, 0.0), (0.05, 1.0)])
def test_kernel_is_psd_for_every_weight_pair(mode_pool: list[dict], diversity: float, quality: float) -> None:
    # Given qualities from 0 to 1
    qualities = np.linspace(0.0, 1.0, len(mode_pool))
    # When the kernel is built
    kernel = build_kernel(parsed_pool(mode_pool), qualities, diversity, quality)
    # Then L has no negative eigenvalue and S has a unit diagonal
    assert np.linalg.eigvalsh(kernel.dense()).min() >= -1e-9
    np.testing.assert_allclose(np.einsum("ij,ij->i", kernel.features, kernel.features), 1.0)


def test_the_seeds_elementwise_power_kernel_is_not_psd() -> None:
    # Given three unit vectors (a PSD Gram matrix): the seed's similarity ** 0.7 breaks PSD
    vectors = np.array([[1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)], [0.0, 1.0]])
    gram = vectors @ vectors.T
    # Then our kernel stays PSD while the seed's does not
    assert np.linalg.eigvalsh(gram).min() >= -1e-12
    assert np.linalg.eigvalsh(np.abs(gram) ** 0.3).min() < 0


def test_quality_weight_alone_picks_the_best_images_and_diversity_alone_ignores_quality() -> None:
    # Given one mode repeated with rising quality, plus a distinct low-quality image
    images = [mode_image(0, v, quality=0.5 + 0.1 * v) for v in range(5)] + [mode_image(1, 0, quality=0.0)]
    parsed = parsed_pool(images)
    qualities = np.array([image["quality_score"] for image in images])
    # When quality decides (diversity_weight 0)
    quality_first = build_kernel(parsed, qualities, 0.0, 1.0)
    top = greedy_rounds(quality_first.features, quality_first.log_quality, 2).order.tolist()
    # Then the two best images come first even though they are near-duplicates
    assert top == [4, 3]
    # When diversity alone decides, quality changes nothing
    flat = build_kernel(parsed, np.full(6, 0.5), 1.0, 0.0)
    skewed = build_kernel(parsed, qualities, 1.0, 0.0)
    assert (
        greedy_rounds(flat.features, flat.log_quality, 3).order.tolist()
        == greedy_rounds(skewed.features, skewed.log_quality, 3).order.tolist()
    )
    assert 5 in greedy_rounds(skewed.features, skewed.log_quality, 2).order.tolist()


def test_only_the_weight_ratio_matters() -> None:
    assert quality_alpha(0.7, 0.3) == pytest.approx(quality_alpha(0.35, 0.15))
    assert quality_alpha(0.0, 0.0) == 0.0
    assert np.isfinite(quality_alpha(0.0, 1.0))


def test_thousands_of_distinct_values_stay_within_the_feature_budget() -> None:
    # Given 600 images, each with its own colour, and pairs sharing a rare "fabric"
    images = [
        {"garment_type": "dress", "colors": {"primary": f"colour {i}"}, "fabric": f"fabric {i // 2}"}
        for i in range(600)
    ]
    # When encoded
    features, columns, _ = encode_features(parsed_pool([{"vlt": v} for v in images]))
    # Then the factor is N x (budget + 1), rows are unit, and images sharing a hashed value stay alike
    assert features.shape == (600, MAX_FEATURES + 1) == (600, len(columns))
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0)
    same_fabric = features[10] @ features[11]
    assert same_fabric > np.median(features[10] @ features[100:200].T) + 0.1


def test_images_with_only_shared_numbers_are_alike_and_unlike_the_rest() -> None:
    # Given two images whose only attribute is the same number, and two ordinary ones
    parsed = parsed_pool(
        [{"vlt": {"confidence": 0.8}}, {"vlt": {"confidence": 0.8}}, mode_image(0, 0), mode_image(1, 0)]
    )
    # When encoded
    features, columns, _ = encode_features(parsed)
    # Then
    assert columns[-1] == "#nothing_distinctive"
    assert features[0] @ features[1] == pytest.approx(1.0)
    assert features[0] @ features[2] == pytest.approx(0.0)


def test_coverage_counts_values_and_gaps_name_the_style_mode_values_missed() -> None:
    # Given a pool of two modes (10 distinct values), of which only mode 0 is selected
    pool = parsed_pool([mode_image(0, 0), mode_image(1, 0)])
    counts = coverage.value_counts(pool)
    profile = {
        "clusters": [
            {"id": 3, "dominant_attributes": {"garment_type": ["dress", 9], "colors.primary": ["Black", 4]}},
            {"id": 5, "dominant_attributes": {"garment_type": ["jacket", 7], "style.overall": ["romantic", 2]}},
        ]
    }
    # When
    report, overall = coverage.per_attribute(counts, [pool[0]])
    gaps = coverage.gaps(coverage.style_modes(profile), counts, [pool[0]])
    # Then
    assert report["garment_type"] == {"covered": 1, "total": 2, "ratio": 0.5, "missing": ["jacket"]}
    assert overall == pytest.approx(0.5)
    assert gaps == [
        {"attribute": "garment_type", "value": "jacket", "cluster": 5, "in_pool": True},
        {"attribute": "style.overall", "value": "romantic", "cluster": 5, "in_pool": False},
    ]
