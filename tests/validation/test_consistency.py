"""Consistency of generated images with the target spec (designer_ml.validation.consistency)."""

from __future__ import annotations

import numpy as np
import pytest
from validation_helpers import SLOTS

from designer_ml.schemas import ImageIn, VLTRecord
from designer_ml.validation.consistency import compare
from designer_ml.validation.service import validate_images
from designer_ml.vlt import parse_record

TARGET = {
    "garment_type": "dress",
    "attributes": {"silhouette": "A-line", "neckline": "V-neck", "sleeveLength": "sleeveless"},
    "colors": {"primary": "black"},
    "style": {"overall": "elegant"},
}


def _validate(images: list[dict], target: dict = TARGET, threshold: float = 0.6):
    models = [ImageIn(id=str(i), vlt=vlt) for i, vlt in enumerate(images)]
    return validate_images(models, VLTRecord(**target), consistency_threshold=threshold)


def test_spelling_variants_match_after_normalisation():
    # Given an image whose analysis spells every value and key differently from the target
    image = {
        "garment_type": " DRESS ",
        "attributes": {"Silhouette": "a line", "neck_line": "v neck", "sleeve-length": "Sleeveless"},
        "colors": {"Primary": "Black"},
        "style": {"Overall": "Elegant"},
    }

    # When it is compared with the target
    check = compare(parse_record(TARGET), parse_record(image))

    # Then only the neckline (another key after normalisation) differs
    assert check.matches["attributes.silhouette"] is True
    assert check.matches["garment_type"] is True
    assert check.matches["colors.primary"] is True
    assert check.matches["attributes.sleeve_length"] is True
    assert check.matches["attributes.neckline"] is False
    assert not check.wrong_garment


def test_identical_spec_scores_one_with_no_reasons():
    # Given an image analysed exactly as the target
    # When it is validated
    result = _validate([TARGET]).validations[0]

    # Then it passes with full consistency
    assert result.consistency_score == 1.0
    assert result.reasons == []
    assert not result.is_rejected
    assert all(result.attribute_matches.values())


@pytest.mark.parametrize("seed", range(5))
def test_wrong_garment_type_always_rejected(seed):
    # Given images that match every other attribute of the target but name another garment
    rng = np.random.default_rng(seed)
    images = []
    for garment in SLOTS["garment_type"]:
        if garment == "dress":
            continue
        image = {**TARGET, "garment_type": garment.upper() if rng.random() < 0.5 else garment}
        image["details"] = ["pleats"]
        images.append(image)

    # When they are validated with the most lenient threshold
    response = _validate(images, threshold=0.0)

    # Then every one is rejected, naming the garment
    for v, image in zip(response.validations, images, strict=True):
        assert v.is_rejected
        assert v.consistency_score >= 0.7
        assert v.reasons[0] == f"garment_type: expected dress, got {image['garment_type'].lower()}"
    assert response.summary.rejected == len(images)
    assert response.summary.wrong_garment == len(images)


def test_slots_the_target_does_not_name_do_not_count():
    # Given a target naming only garment type and colour, and an image with many other attributes
    target = {"garment_type": "skirt", "colors": {"primary": "red"}}
    image = {
        "garment_type": "skirt",
        "attributes": {"silhouette": "pencil", "length": "mini"},
        "colors": {"primary": "Red", "finish": "sequin"},
        "style": {"overall": "edgy"},
        "details": ["zipper"],
    }

    # When it is validated
    result = _validate([image], target=target).validations[0]

    # Then only the target's slots are judged, and they all match
    assert result.attribute_matches == {"garment_type": True, "colors.primary": True}
    assert result.consistency_score == 1.0
    assert not result.is_rejected


def test_reasons_name_expected_and_got_values():
    # Given an image off in neckline and colour, and one missing the neckline
    off = {**TARGET, "attributes": {**TARGET["attributes"], "neckline": "halter"}, "colors": {"primary": "white"}}
    missing = {**TARGET, "attributes": {"silhouette": "A-line", "sleeveLength": "sleeveless"}}

    # When they are validated
    off_result, missing_result = _validate([off, missing]).validations

    # Then the reasons say what was expected and what came out
    assert "attributes.neckline: expected v neck, got halter" in off_result.reasons
    assert "colors.primary: expected black, got white" in off_result.reasons
    assert "attributes.neckline: expected v neck, not reported for this image" in missing_result.reasons
    # and an unreported attribute costs less than a wrong one
    assert missing_result.consistency_score > off_result.consistency_score


def test_close_value_gets_partial_credit_but_a_close_garment_is_still_wrong():
    # Given a target "shirt" in "blue" and an image analysed as "T-shirt" in "Navy Blue"
    target = {"garment_type": "shirt", "colors": {"primary": "blue"}}
    image = {"garment_type": "T-shirt", "colors": {"primary": "Navy Blue"}}

    # When compared
    check = compare(parse_record(target), parse_record(image))

    # Then the colour earns half its weight, and the garment is wrong
    assert check.matches == {"garment_type": False, "colors.primary": False}
    assert check.score == pytest.approx(0.5 / 3)
    assert check.wrong_garment
    assert "colors.primary: expected blue, got navy blue (close)" in check.reasons


def test_threshold_decides_rejection():
    # Given an image matching only garment type and silhouette (weights 2 and 1 of 7.5)
    image = {
        "garment_type": "dress",
        "attributes": {"silhouette": "a-line", "neckline": "boat", "sleeveLength": "long"},
        "colors": {"primary": "red"},
        "style": {"overall": "casual"},
    }

    # When validated at two thresholds
    strict = _validate([image], threshold=0.6).validations[0]
    lenient = _validate([image], threshold=0.35).validations[0]

    # Then the score (3/7.5) passes only the lenient one
    assert strict.consistency_score == pytest.approx(3 / 7.5, abs=1e-4)
    assert strict.is_rejected and not lenient.is_rejected
    assert any("below the threshold 0.60" in r for r in strict.reasons)
