"""The one encoder: every messy-input rule of API.md."""

import numpy as np
import pytest

from designer_ml.vlt import Vocabulary, normalize_key, normalize_value, parse_record

SEED_RECORD = {
    "id": "1",
    "garment_type": "dress",
    "attributes": {"silhouette": "A-line", "neckline": "V-neck", "sleeveLength": "sleeveless", "length": "midi"},
    "colors": {"primary": "black", "finish": "matte"},
    "style": {"overall": "elegant", "mood": "sophisticated"},
}


@pytest.mark.parametrize("variant", ["A-line", "a line", "A-Line", " a_line ", "A LINE", "a--line"])
def test_spelling_and_case_variants_normalise_to_one_value(variant):
    # Given a silhouette spelled one of the ways real analysers emit it
    # When it is normalised
    # Then every variant becomes the same value
    assert normalize_value(variant) == "a line"


def test_colour_variants_and_key_spellings_fold():
    # Given colour and key spellings seen in real records
    # Then they fold to one value and one slot name
    assert normalize_value("Navy Blue") == normalize_value("navy-blue") == "navy blue"
    assert normalize_key("sleeveLength") == normalize_key("Sleeve Length") == normalize_key("sleeve-length")


def test_missing_and_null_groups_are_skipped_not_errors():
    # Given records with missing, null and empty groups and values
    record = {"id": "2", "garment_type": None, "attributes": None, "colors": {}, "style": {"overall": ""}}
    # When parsed
    parsed = parse_record(record)
    # Then nothing usable is found, and nothing raises
    assert not parsed.usable
    assert parse_record(None).categorical == {}
    assert parse_record({"id": "x"}).usable is False


def test_extra_keys_lists_and_numbers_become_features():
    # Given a record with unknown groups, a multi-valued list and a number
    record = {
        "id": "3",
        "garment_type": "Dress",
        "fabric": "Silk",
        "attributes": {"details": ["Pleats", "belt", None, {"x": 1}], "confidence": 0.83},
        "colors": {"primary": "Navy Blue"},
    }
    # When parsed and encoded under a vocabulary fitted on it
    parsed = parse_record(record)
    vocab = Vocabulary.fit([record])
    X = vocab.transform([record]).X
    # Then each becomes a slot: the unknown key, each list element, the number
    assert parsed.values("fabric") == ("silk",)
    assert parsed.values("attributes.details") == ("belt", "pleats")
    assert parsed.numeric == {"attributes.confidence": 0.83}
    assert "fabric=silk" in vocab.columns and "attributes.details=pleats" in vocab.columns
    assert "attributes.confidence" in vocab.columns
    assert X.shape == (1, vocab.n_features) and X.dtype == np.float32


def test_id_url_and_ground_truth_are_not_features():
    # Given a record carrying bookkeeping keys
    record = dict(SEED_RECORD, url="http://x", ground_truth={"section_name": "Womens"}, quality_score=0.4)
    # Then only garment attributes become slots
    assert set(parse_record(record).categorical) == {
        "garment_type",
        "attributes.silhouette",
        "attributes.neckline",
        "attributes.sleeve_length",
        "attributes.length",
        "colors.primary",
        "colors.finish",
        "style.overall",
        "style.mood",
    }


def test_unseen_values_are_flagged_per_group_not_lost():
    # Given a vocabulary fitted on black dresses
    vocab = Vocabulary.fit([SEED_RECORD, dict(SEED_RECORD, id="2")])
    # When a record with a never-seen neckline, an unseen slot and a known colour is encoded
    other = {
        "id": "9",
        "garment_type": "dress",
        "attributes": {"neckline": "Halter", "pattern": "floral"},
        "colors": {"primary": "black"},
    }
    batch = vocab.transform([SEED_RECORD, other])
    # Then the attributes group says unseen for it (and only for it), with the values named
    assert batch.unseen["attributes"].tolist() == [False, True]
    assert batch.unseen["colors"].tolist() == [False, False]
    assert ("attributes.neckline", "halter") in batch.unseen_values[1]
    assert ("attributes.pattern", "floral") in batch.unseen_values[1]
    # And rarity is higher for the unseen neckline than for the seen one
    k = vocab.slots.index("attributes.neckline")
    assert batch.rarity[1, k] > batch.rarity[0, k] >= 0


def test_group_weighting_is_a_parameter():
    # Given the same record under two weightings
    heavy = Vocabulary.fit([SEED_RECORD], group_weights={"garment_type": 3.0})
    light = Vocabulary.fit([SEED_RECORD], group_weights={"garment_type": 0.5, "colors.finish": 0.1})
    col = heavy.columns.index("garment_type=dress")
    # Then the garment column carries the weight, and slot-level weights override groups
    assert heavy.transform([SEED_RECORD]).X[0, col] == pytest.approx(3.0)
    assert light.transform([SEED_RECORD]).X[0, col] == pytest.approx(0.5)
    assert light.weight("colors.finish") == 0.1 and light.weight("colors.primary") == 1.0


def test_vocabulary_round_trips_with_schema_hash():
    # Given a fitted vocabulary
    vocab = Vocabulary.fit([SEED_RECORD, {"id": "2", "garment_type": "skirt", "attributes": {"n": 2}}])
    # When it is serialised and loaded back
    again = Vocabulary.from_dict(vocab.to_dict())
    # Then it encodes identically and keeps its schema hash
    assert again.schema_hash == vocab.schema_hash
    np.testing.assert_array_equal(again.transform([SEED_RECORD]).X, vocab.transform([SEED_RECORD]).X)
    # And a tampered document is refused
    doc = vocab.to_dict()
    doc["categories"]["garment_type"]["coat"] = 1
    with pytest.raises(ValueError):
        Vocabulary.from_dict(doc)


def test_schema_hash_changes_with_layout():
    a = Vocabulary.fit([SEED_RECORD])
    b = Vocabulary.fit([SEED_RECORD, {"id": "2", "garment_type": "skirt"}])
    assert a.schema_hash != b.schema_hash


def test_real_catalogue_records_encode(hm_records):
    # Given real, sparse catalogue records
    vocab = Vocabulary.fit(hm_records[:500])
    # When encoded
    batch = vocab.transform(hm_records[:500])
    # Then every record with any attribute has a non-zero row, and ground truth never leaks
    usable = [parse_record(r).usable for r in hm_records[:500]]
    assert all(np.any(batch.X[i] != 0) for i, ok in enumerate(usable) if ok)
    assert not any(c.startswith(("ground_truth", "text")) for c in vocab.columns)
