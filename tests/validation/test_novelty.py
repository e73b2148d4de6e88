"""The off-style model: fitted on a portfolio, exported to ONNX, served with numpy + onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import pytest
from validation_helpers import IN_MODES, OFF_MODE, fit_style, make_record, records

from designer_ml.errors import ModelIntegrityError
from designer_ml.onnx_models import check_parity, make_session
from designer_ml.validation.novelty import NoveltyMismatch, NoveltyScorer, fit_novelty, novelty_features
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


def test_onnx_matches_scikit_learn_on_new_rows(style):
    # Given the exported forest and the same forest refitted in scikit-learn (same seed, same rows)
    from sklearn.ensemble import IsolationForest

    from designer_ml.validation.novelty import N_ESTIMATORS

    train = novelty_features(style.vocab.transform(style.portfolio))
    reference = IsolationForest(
        n_estimators=N_ESTIMATORS, max_samples=style.artifacts.calibration["max_samples"], random_state=0
    ).fit(train)
    held_out = records(IN_MODES, 40, seed=7, prefix="h") + records([OFF_MODE], 40, seed=8, prefix="o")
    rows = novelty_features(style.vocab.transform(held_out))

    # When both score rows they never saw
    diff = check_parity(style.artifacts.onnx_bytes, rows, reference.decision_function(rows), output="scores")

    # Then they agree within 1e-4
    assert diff < 1e-4


def test_parity_check_catches_a_different_model(style):
    # Given expected scores shifted by 1e-3
    rows = novelty_features(style.vocab.transform(style.portfolio))
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
