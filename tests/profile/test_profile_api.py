"""Style profile endpoints against moto: create, update, read, and what must never be stored."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from profile_helpers import atomic_moto_updates, planted

from designer_ml import limits, onnx_models
from designer_ml.errors import ModelIntegrityError
from designer_ml.settings import get_settings
from designer_ml.storage import Storage, get_storage, reset_for_tests
from designer_ml.style import bundle as bundles
from designer_ml.style import profile as profiles

ROOT = Path(__file__).resolve().parents[2]
CREATE = "/api/ml/style-profile/create"
UPDATE = "/api/ml/style-profile/update"


@pytest.fixture
def call(aws_env: Any, api_event: Any, invoke: Any) -> Any:
    reset_for_tests()
    bundles.clear_cache()

    def send(method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        result = invoke("ProfileFunction", api_event(method, path, body))
        return result["statusCode"], json.loads(result["body"])

    yield send
    reset_for_tests()


def _stored_keys() -> list[str]:
    return list(get_storage().list_keys(""))


def test_seed_node_client_body_creates_a_profile_it_can_read_back(call: Any) -> None:
    # Given the body the seed's Node.js createStyleProfile sends
    records, _ = planted(40)
    body = {"user_id": "user_123", "vlt_records": records, "n_clusters": 5}

    # When it is posted, then read back
    status, created = call("POST", CREATE, body)
    read_status, read = call("GET", "/api/ml/style-profile/user_123")

    # Then response.data.profile holds the profile, and GET answers the same document
    assert status == 201
    profile = created["profile"]
    assert profile["user_id"] == "user_123" and profile["version"] == 1
    assert profile["n_clusters"] == 5 == len(profile["clusters"])
    assert set(profile["assignments"]) == {r["id"] for r in records}
    assert sum(c["size"] for c in profile["clusters"]) == 40
    assert all(c["style_summary"] for c in profile["clusters"])
    assert profile["model"]["selection"] == "requested"
    assert read_status == 200 and read["profile"] == profile


def test_messy_records_are_taken_as_they_come(call: Any) -> None:
    # Given records with nulls, missing groups, lists, numbers, numeric ids, extra keys, spellings
    records, _ = planted(30)
    records += [
        {"id": 7, "garment_type": "DRESS", "attributes": None, "colors": {"primary": "Black", "finish": ""}},
        {
            "id": "x-1",
            "garment_type": ["dress", "slip"],
            "style": {"overall": "Elegant", "mood": None},
            "details": ["pleats", 3, None, {"nested": "dropped"}],
            "confidence": 0.83,
            "fabric": {"main": "Silk"},
        },
        {"id": "x-2", "attributes": {"silhouette": "a line"}, "colors": None, "style": None, "price": 120},
    ]

    # When a profile is created from them
    status, body = call("POST", CREATE, {"user_id": "messy", "vlt_records": records})

    # Then every record is assigned, and spelling variants count as one value
    assert status == 201, body
    profile = body["profile"]
    assert set(profile["assignments"]) == {str(r["id"]) for r in records}
    assert "black" in profile["statistics"]["color_distribution"]
    assert "Black" not in profile["statistics"]["color_distribution"]
    assert 3 <= profile["n_clusters"] <= 7


@pytest.mark.parametrize("n_records", [1, 2])
def test_tiny_portfolio_gets_a_single_mode_with_a_warning(call: Any, n_records: int) -> None:
    # Given a portfolio of one or two records
    records, _ = planted(n_records)

    # When a profile is created
    status, body = call("POST", CREATE, {"user_id": "tiny", "vlt_records": records})

    # Then it is a profile, not an error, and it says why it has one mode
    assert status == 201, body
    assert body["profile"]["n_clusters"] == 1
    assert any("record" in w for w in body["profile"]["warnings"])


@pytest.mark.parametrize("n_clusters", [0, 11, -1])
def test_n_clusters_out_of_range_is_a_422_naming_it(call: Any, n_clusters: int) -> None:
    records, _ = planted(20)
    status, body = call("POST", CREATE, {"user_id": "u", "vlt_records": records, "n_clusters": n_clusters})
    assert status == 422
    assert "n_clusters" in body["error"]["message"]
    assert _stored_keys() == []


def test_n_clusters_beyond_what_the_data_carries_is_capped_with_a_warning(call: Any) -> None:
    # Given 12 records and a request for 10 modes
    records, _ = planted(12)

    # When a profile is created
    status, body = call("POST", CREATE, {"user_id": "u", "vlt_records": records, "n_clusters": 10})

    # Then fewer modes, and a warning that says so
    assert status == 201
    profile = body["profile"]
    assert profile["n_clusters"] < 10
    assert any("capped" in w and "n_clusters=10" in w for w in profile["warnings"])


def test_a_record_with_nothing_usable_is_a_422_naming_it_and_nothing_is_stored(call: Any) -> None:
    records, _ = planted(10)
    records.insert(4, {"id": "empty-one", "garment_type": None, "attributes": {"silhouette": ""}, "style": None})

    status, body = call("POST", CREATE, {"user_id": "u", "vlt_records": records})

    assert status == 422
    assert "empty-one" in body["error"]["message"] and "vlt_records[4]" in body["error"]["message"]
    assert call("GET", "/api/ml/style-profile/u")[0] == 404
    assert _stored_keys() == []


def test_update_of_an_unknown_user_is_a_404(call: Any) -> None:
    records, _ = planted(3)
    status, body = call("POST", UPDATE, {"user_id": "nobody", "vlt_records": records})
    assert status == 404
    assert "nobody" in body["error"]["message"]
    assert call("GET", "/api/ml/style-profile/nobody")[0] == 404


def test_update_keeps_cluster_ids_replaces_same_ids_and_reports_drift(call: Any) -> None:
    # Given a profile of three planted modes
    records, _ = planted(90, n_modes=3)
    _, created = call("POST", CREATE, {"user_id": "u", "vlt_records": records})
    before = created["profile"]["assignments"]

    # When 10% more records of the same modes arrive, one of them replacing an existing id
    more, _ = planted(9, n_modes=3, seed=1, start=1000)
    more.append(dict(records[0], colors={"primary": "white"}))
    status, body = call("POST", UPDATE, {"user_id": "u", "vlt_records": more})

    # Then the version moves on, every record is there once, and records keep their cluster id
    assert status == 200, body
    after = body["profile"]
    assert after["version"] == 2 and after["n_records"] == 99
    assert set(after["assignments"]) == set(before) | {r["id"] for r in more}
    kept = np.mean([after["assignments"][rid] == cid for rid, cid in before.items()])
    assert kept >= 0.9
    assert after["drift"]["n_new_records"] == 9 and after["drift"]["n_replaced_records"] == 1
    assert after["drift"]["new_mode_detected"] is False
    assert after["created_at"] == created["profile"]["created_at"]


def test_update_with_a_new_style_mode_gets_a_fresh_cluster_id(call: Any) -> None:
    # Given a profile of three modes
    records, modes = planted(60, n_modes=3)
    _, created = call("POST", CREATE, {"user_id": "u", "vlt_records": records})
    old_ids = {c["id"] for c in created["profile"]["clusters"]}

    # When many records of a fourth mode arrive
    fourth = [r for r, m in zip(*planted(120, n_modes=4, seed=3, start=500), strict=True) if m == 3]
    status, body = call("POST", UPDATE, {"user_id": "u", "vlt_records": fourth})

    # Then the new mode is reported with an id never used before
    assert status == 200
    drift = body["profile"]["drift"]
    assert drift["new_mode_detected"] is True
    assert drift["new_cluster_ids"] and min(drift["new_cluster_ids"]) > max(old_ids)
    assert drift["new_mode_share"] > 0.5


def test_twenty_concurrent_updates_all_land(call: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a profile, and DynamoDB's atomic conditional writes
    atomic_moto_updates(monkeypatch)
    from designer_ml.style import fit

    # The off-style model has nothing to do with write races and costs most of each refit here.
    monkeypatch.setattr(fit, "fit_novelty_model", lambda vocab, parsed, **_: None)
    records, _ = planted(24)
    assert call("POST", CREATE, {"user_id": "busy", "vlt_records": records})[0] == 201
    extra, _ = planted(20, seed=9, start=100)
    errors: list[BaseException] = []

    def one(record: dict[str, Any]) -> None:
        try:
            # boto3 resources are not thread-safe: one storage per thread, as in separate Lambdas
            profiles.update_profile(Storage(get_settings()), "busy", [record])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    # When 20 updates of one record each run at once
    threads = [threading.Thread(target=one, args=(r,)) for r in extra]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Then every record is in the final profile (updates that raced were committed together),
    # and no pending batch is left behind
    assert errors == []
    profile = call("GET", "/api/ml/style-profile/busy")[1]["profile"]
    assert set(profile["assignments"]) == {r["id"] for r in records + extra}
    assert 2 <= profile["version"] <= 21
    assert list(get_storage().list_keys("records/busy/pending/")) == []
    stored = get_storage().get_json(get_storage().get_item(get_storage().profiles, {"user_id": "busy"})["records_key"])
    assert len(stored) == 44


def test_stored_onnx_model_places_records_as_the_profile_does(call: Any) -> None:
    # Given a stored profile
    records, _ = planted(45)
    profile = call("POST", CREATE, {"user_id": "u", "vlt_records": records})[1]["profile"]

    # When another stage loads the bundle with onnxruntime and places the same records
    bundle = bundles.load_style_bundle(get_storage(), "u")
    ids, probabilities = bundle.place(records)

    # Then it agrees with the profile, and the manifest names the model it describes
    assert bundle is not None
    assert ids.tolist() == [profile["assignments"][r["id"]] for r in records]
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert bundle.manifest["schema_hash"] == bundle.vocab.schema_hash == profile["model"]["schema_hash"]
    assert sorted(bundle.cluster_ids.tolist()) == sorted(c["id"] for c in profile["clusters"])
    assert profile["model"]["onnx_parity_max_abs_diff"] < 1e-4
    metadata = dict(bundle.session().get_modelmeta().custom_metadata_map)
    assert metadata["schema_hash"] == bundle.vocab.schema_hash and metadata["n_records"] == "45"


def test_failed_parity_check_fails_the_request_and_stores_nothing(call: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an export whose ONNX model disagrees with scikit-learn
    from designer_ml.style import fit

    real = fit.check_parity
    monkeypatch.setattr(fit, "check_parity", lambda b, X, expected, **kw: real(b, X, expected + 0.01, **kw))
    records, _ = planted(20)

    # When a profile is created
    status, body = call("POST", CREATE, {"user_id": "u", "vlt_records": records})

    # Then the request fails, and no record, model or profile was written
    assert status == 500 and body["error"]["code"] == "model_integrity_error"
    assert _stored_keys() == []
    assert call("GET", "/api/ml/style-profile/u")[0] == 404


def _profile_with_a_corrupt_style_model(call: Any, n: int) -> tuple[Any, list[dict[str, Any]]]:
    """Create designer "u"'s profile from ``n`` planted records, then corrupt its stored style
    model (the off-style model stays intact); (storage, records), with the bundle cache cleared."""
    records, _ = planted(n)
    call("POST", CREATE, {"user_id": "u", "vlt_records": records})
    storage = get_storage()
    prefix = storage.get_item(storage.profiles, {"user_id": "u"})["style_model"]["prefix"]
    storage.put_bytes(prefix + bundles.STYLE_MODEL, b"not an onnx model")
    bundles.clear_cache()
    return storage, records


def test_corrupt_style_model_makes_the_bundle_absent_not_an_error(call: Any) -> None:
    storage, _ = _profile_with_a_corrupt_style_model(call, 20)

    assert bundles.load_style_bundle(storage, "u") is None
    assert bundles.load_style_bundle(storage, "nobody") is None


def test_a_bundle_reads_only_the_artifacts_its_caller_names_and_the_rest_on_first_use(
    call: Any, s3_reads: list[str]
) -> None:
    # Given a stored profile, and no model in this process's caches
    records, _ = planted(30)
    call("POST", CREATE, {"user_id": "u", "vlt_records": records})
    bundles.clear_cache()
    onnx_models.clear_cache()
    s3_reads.clear()
    reads = s3_reads

    # When validation's loader asks for the off-style model only
    bundle = bundles.load_style_bundle(
        get_storage(), "u", artifacts=(bundles.NOVELTY_MODEL, bundles.NOVELTY_CALIBRATION)
    )
    loaded = sorted(key.rsplit("/", 1)[1] for key in reads)
    assert bundle is not None
    novelty = bundle.session(bundles.NOVELTY_MODEL), bundle.json(bundles.NOVELTY_CALIBRATION)
    after_novelty = len(reads)
    ids, _ = bundle.place(records)

    # Then the load read one object, the off-style model, which carries the manifest, the
    # vocabulary and its calibration; those needed no further read, and placing records read the
    # style model once, on first use
    assert loaded == ["novelty.onnx"]
    assert novelty[0] is not None and isinstance(novelty[1], dict) and after_novelty == 1
    assert [key.rsplit("/", 1)[1] for key in reads[1:]] == [bundles.STYLE_MODEL]
    assert len(ids) == len(records)
    assert novelty[1] == get_storage().get_json(bundle.key(bundles.NOVELTY_CALIBRATION))


def test_a_bundle_stored_before_models_carried_their_documents_reads_them_as_files(
    call: Any, s3_reads: list[str], store_without_documents: Any
) -> None:
    # Given a stored profile whose models carry no documents (as every bundle before them)
    records, _ = planted(30)
    call("POST", CREATE, {"user_id": "u", "vlt_records": records})
    storage = get_storage()
    prefix = storage.get_item(storage.profiles, {"user_id": "u"})["style_model"]["prefix"]
    placed_before, _ = bundles.load_style_bundle(storage, "u").place(records)
    for name in (bundles.STYLE_MODEL, bundles.NOVELTY_MODEL):
        store_without_documents(storage, prefix + name)
    bundles.clear_cache()
    onnx_models.clear_cache()
    s3_reads.clear()
    reads = s3_reads

    # When each reader loads it
    style = bundles.load_style_bundle(storage, "u")
    style_reads = sorted(key.rsplit("/", 1)[1] for key in reads)
    bundles.clear_cache()
    novelty = bundles.load_style_bundle(storage, "u", artifacts=(bundles.NOVELTY_MODEL, bundles.NOVELTY_CALIBRATION))

    # Then the models are read first and the documents as files after them, and the bundle
    # places records as the new format does
    assert style_reads == ["manifest.json", "style.onnx", "vocabulary.json"]
    assert style is not None and novelty is not None
    assert isinstance(novelty.json(bundles.NOVELTY_CALIBRATION), dict)
    assert style.place(records)[0].tolist() == placed_before.tolist()
    assert style.manifest == novelty.manifest == storage.get_json(prefix + bundles.MANIFEST)


def test_a_corrupt_style_model_leaves_the_off_style_model_usable(call: Any) -> None:
    # Given a profile whose style model is corrupt (the off-style model is intact)
    storage, records = _profile_with_a_corrupt_style_model(call, 30)

    # When a reader that needs only the off-style model loads the bundle
    bundle = bundles.load_style_bundle(storage, "u", artifacts=(bundles.NOVELTY_MODEL,))

    # Then it gets it, and using the style model fails as an integrity error, not a crash
    assert bundle is not None and bundle.session(bundles.NOVELTY_MODEL) is not None
    with pytest.raises(ModelIntegrityError):
        bundle.place(records[:2])


def test_portfolio_over_the_limit_is_a_413_naming_it(call: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    records, _ = planted(12)
    call("POST", CREATE, {"user_id": "u", "vlt_records": records})
    monkeypatch.setattr(limits, "MAX_PORTFOLIO_RECORDS", 15)
    more, _ = planted(5, start=100)

    status, body = call("POST", UPDATE, {"user_id": "u", "vlt_records": more})

    assert status == 413 and "15" in body["error"]["message"]
    assert call("GET", "/api/ml/style-profile/u")[1]["profile"]["version"] == 1


def _imported_after(code: str) -> set[str]:
    script = code + "\nimport sys, json\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_handler_imports_no_scikit_learn_until_a_fit() -> None:
    loaded = _imported_after("import sys; sys.path.insert(0, 'functions/profile'); import app")
    assert "sklearn" not in loaded and "skl2onnx" not in loaded and "scipy" not in loaded


def test_style_bundle_reader_imports_no_training_libraries() -> None:
    loaded = _imported_after("import designer_ml.style.bundle")
    assert not loaded & {"sklearn", "scipy", "skl2onnx", "dppy", "matplotlib"}
