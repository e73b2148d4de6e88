"""The off-style model: fitted on a portfolio, exported to ONNX, served with numpy + onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest
from validation_helpers import IN_MODES, OFF_MODE, fit_style, make_record, records

from designer_ml.errors import ModelIntegrityError
from designer_ml.onnx_models import check_parity, make_session
from designer_ml.validation.novelty import (
    MixtureLayout,
    NoveltyMismatch,
    NoveltyScorer,
    fit_mixture,
    fit_novelty,
    n_components,
)
from designer_ml.vlt import Vocabulary, parse_record


@pytest.fixture(scope="module")
def style():
    return fit_style(records(IN_MODES, 80, seed=1, prefix="p"))


@pytest.fixture(scope="module")
def scorer(style):
    return NoveltyScorer.from_artifacts(style.vocab, style.artifacts)


def _score(scorer, recs):
    return scorer.score(scorer.vocab.transform(recs))


def test_calibration_is_json_and_names_its_vocabulary(style):
    # Given a fitted model
    cal = style.artifacts.calibration

    # When its calibration goes through JSON (as novelty.json in S3)
    again = json.loads(json.dumps(cal))

    # Then it round-trips and is stamped with the vocabulary it was fitted with
    assert again == cal
    assert cal["schema_hash"] == style.vocab.schema_hash
    assert 0.0 < cal["cv_flag_rate"] <= 0.1


def _refit(style):
    """The final mixture fit_novelty exported, refitted (same seed, same rows) in numpy."""
    layout = MixtureLayout(style.vocab)
    train = layout.features([parse_record(r) for r in style.portfolio])
    return layout, fit_mixture(layout, train, n_components(len(style.portfolio)), seed=0)


def test_onnx_matches_the_numpy_mixture_on_new_rows(style):
    # Given the exported mixture and the same mixture refitted in numpy
    layout, mixture = _refit(style)
    held_out = records(IN_MODES, 40, seed=7, prefix="h") + records([OFF_MODE], 40, seed=8, prefix="o")
    rows = layout.features([parse_record(r) for r in held_out])

    # When both score rows they never saw (unseen values included)
    diff = check_parity(style.artifacts.onnx_bytes, rows, mixture.neg_log_likelihood(rows), output="scores")

    # Then they agree within 1e-4
    assert rows[:, [layout.unseen[s] for s in layout.slots]].sum() > 0
    assert diff < 1e-4


def test_every_component_is_a_distribution_over_each_slot(style):
    # Given the fitted mixture
    layout, mixture = _refit(style)

    # When each slot's weighted log-probabilities are turned back into probabilities
    for slot, weight, (a, b) in zip(layout.slots, layout.slot_weights, layout.spans, strict=True):
        p = np.exp(mixture.W[a:b] / weight)

        # Then they sum to one per component, and a value never seen keeps some mass, least of all
        np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-9)
        assert np.all(p[layout.unseen[slot] - a] > 0)
        assert np.all(p[layout.unseen[slot] - a] <= p.min(axis=0) + 1e-12)
    np.testing.assert_allclose(np.exp(mixture.log_weights).sum(), 1.0, atol=1e-9)


def test_parity_check_catches_a_different_model(style):
    # Given expected scores shifted by 1e-3
    rows = MixtureLayout(style.vocab).features([parse_record(r) for r in style.portfolio])
    session = make_session(style.artifacts.onnx_bytes)
    got = session.run(None, {session.get_inputs()[0].name: rows})[0]

    # When checked, Then the parity check refuses
    with pytest.raises(ModelIntegrityError):
        check_parity(style.artifacts.onnx_bytes, rows, got + 1e-3, output="scores")


def test_off_style_image_flagged_with_a_reason_naming_the_unseen_value(scorer):
    # Given an in-style record whose neckline the portfolio never holds
    rng = np.random.default_rng(3)
    image = make_record("x", IN_MODES[0], rng, fidelity=1.0)
    image["attributes"]["neckline"] = "Halter"
    image["colors"]["primary"] = "neon green"

    # When scored
    result = _score(scorer, [image])

    # Then it is flagged, and the reasons name the values
    assert result.is_outlier[0]
    assert result.outlier_score[0] > 0.5
    assert "neckline 'halter' never appears in your portfolio" in result.reasons[0]
    assert any(r.startswith("colour 'neon green' far from your usual palette") for r in result.reasons[0])


def test_in_style_images_mostly_pass_and_off_style_mostly_flagged(scorer):
    # Given new images from the portfolio's modes and from a mode it does not have
    in_style = records(IN_MODES, 60, seed=11, prefix="i")
    off_style = records([OFF_MODE], 60, seed=12, prefix="o")

    # When scored
    inside = _score(scorer, in_style)
    outside = _score(scorer, off_style)

    # Then few in-style images are flagged, most off-style ones are, and scores rank them
    assert inside.is_outlier.mean() <= 0.15
    assert outside.is_outlier.mean() >= 0.8
    assert np.median(outside.outlier_score) > np.max(np.median(inside.outlier_score))
    assert all(r == [] for r, flag in zip(inside.reasons, inside.is_outlier, strict=True) if not flag)


def test_a_large_portfolio_is_calibrated_on_a_subset_and_still_separates(monkeypatch):
    # Given a portfolio larger than the calibration subset (shrunk here so the test stays fast)
    import designer_ml.validation.novelty as novelty

    monkeypatch.setattr(novelty, "CALIBRATION_RECORDS", 120)
    style = fit_style(records(IN_MODES, 300, seed=21, prefix="big"))
    scorer = NoveltyScorer.from_artifacts(style.vocab, style.artifacts)

    # When new in-style and off-style images are scored
    inside = _score(scorer, records(IN_MODES, 60, seed=22, prefix="i"))
    outside = _score(scorer, records([OFF_MODE], 60, seed=23, prefix="o"))

    # Then the held-out scores came from the subset, and the model separates as the full one does
    cal = style.artifacts.calibration
    assert cal["calibration_records"] == 120 and cal["n_records"] == 300
    assert inside.is_outlier.mean() <= 0.15 and outside.is_outlier.mean() >= 0.8


def test_common_values_in_a_combination_the_portfolio_never_holds_are_flagged(scorer):
    # Given an image whose every value is common in the portfolio, but half from each mode
    rng = np.random.default_rng(4)
    first, second = (make_record(f"m{j}", IN_MODES[j], rng, fidelity=1.0) for j in (0, 1))
    crossed = {
        "garment_type": first["garment_type"],
        "attributes": {"silhouette": first["attributes"]["silhouette"], "neckline": second["attributes"]["neckline"]},
        "colors": {"primary": second["colors"]["primary"]},
        "style": {"overall": second["style"]["overall"]},
    }

    # When scored with the two records it was cut from
    result = _score(scorer, [first, second, crossed])

    # Then only the crossed one is flagged, and the reason says it is the combination
    assert result.is_outlier.tolist() == [False, False, True]
    assert result.reasons[2] == ["unusual combination of attributes for your portfolio"]


def test_a_sparse_in_style_record_is_not_off_style(scorer):
    # Given in-style records an analyser mostly left empty (garment type and colour only)
    rng = np.random.default_rng(6)
    sparse = []
    for i in range(20):
        full = make_record(f"s{i}", IN_MODES[i % 2], rng, fidelity=1.0)
        sparse.append({"garment_type": full["garment_type"], "colors": {"primary": full["colors"]["primary"]}})

    # When scored
    result = _score(scorer, sparse)

    # Then none is flagged: missing attributes are not evidence of another style
    assert not result.is_outlier.any()


def test_scores_are_probabilities_and_flag_above_one_half(scorer):
    # Given a mix of images
    recs = records(IN_MODES, 30, seed=21, prefix="i") + records([OFF_MODE], 30, seed=22, prefix="o")

    # When scored
    result = _score(scorer, recs)

    # Then scores lie in [0, 1] and is_outlier is exactly "above one half"
    assert np.all((result.outlier_score >= 0) & (result.outlier_score <= 1))
    np.testing.assert_array_equal(result.is_outlier, result.outlier_score > 0.5)


def test_new_slot_the_portfolio_never_had_is_not_evidence(scorer):
    # Given an in-style image that also carries keys the portfolio's analyser never emitted
    rng = np.random.default_rng(5)
    plain = make_record("a", IN_MODES[1], rng, fidelity=1.0)
    extra = {**plain, "fabric": "silk", "details": ["pleats", "bow"]}

    # When both are scored
    result = _score(scorer, [plain, extra])

    # Then the extra keys change nothing
    assert result.outlier_score[0] == pytest.approx(result.outlier_score[1])


def test_scorer_refuses_a_model_of_another_vocabulary(style):
    # Given a vocabulary fitted on other records
    other = Vocabulary.fit(records([OFF_MODE], 20, seed=2, prefix="z"))

    # When a scorer is built from the model and that vocabulary, Then it refuses
    with pytest.raises(NoveltyMismatch):
        NoveltyScorer.from_artifacts(other, style.artifacts)


def test_scorer_refuses_a_calibration_of_another_format(style):
    # Given the calibration of an older model format (an Isolation Forest's, say)
    old = {**style.artifacts.calibration, "format": 1}

    # When a scorer is built from it, Then it refuses (validate then skips the style check)
    with pytest.raises(NoveltyMismatch, match="format"):
        NoveltyScorer(style.vocab, make_session(style.artifacts.onnx_bytes), old)


def test_two_record_portfolio_fits():
    # Given the smallest portfolio there is
    recs = records(IN_MODES, 2, seed=0, prefix="t")

    # When fitted, Then the export passes its parity check and the model scores
    style = fit_style(recs)
    result = NoveltyScorer.from_artifacts(style.vocab, style.artifacts).score(style.vocab.transform(recs))
    assert np.all(np.isfinite(result.outlier_score))


def test_fit_needs_two_records():
    # Given a single-record portfolio
    recs = records(IN_MODES, 1, seed=0, prefix="s")
    vocab = Vocabulary.fit(recs)

    # When fitting, Then it says why
    with pytest.raises(ValueError, match="at least 2"):
        fit_novelty(vocab, [parse_record(r) for r in recs])


def test_small_uniform_portfolio_still_fits_and_scores():
    # Given three identical records
    recs = [{"id": str(i), "garment_type": "dress", "colors": {"primary": "black"}} for i in range(3)]
    style = fit_style(recs)
    scorer = NoveltyScorer.from_artifacts(style.vocab, style.artifacts)

    # When a copy and a different garment are scored
    result = _score(scorer, [recs[0], {"garment_type": "coat", "colors": {"primary": "black"}}])

    # Then the copy passes and the coat is flagged
    assert result.is_outlier.tolist() == [False, True]
    assert np.all(np.isfinite(result.outlier_score))
