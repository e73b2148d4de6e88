"""Optional image embeddings: profile, validate and select use them; without them nothing changes."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from designer_ml.embedding import embedding_matrix
from designer_ml.selection.dpp import greedy_rounds
from designer_ml.selection.kernel import build_kernel
from designer_ml.storage import get_storage, reset_for_tests
from designer_ml.style import bundle as bundles
from designer_ml.style.fit import fit_style
from designer_ml.vlt import parse_record
from tests.embedding.make_baseline import BASELINE, compute

CREATE = "/api/ml/style-profile/create"
UPDATE = "/api/ml/style-profile/update"
VALIDATE = "/api/ml/validate"
SELECT = "/api/ml/select/diverse"
DIM = 8
GARMENTS = ["dress", "top", "skirt", "jacket"]
COLOURS = ["black", "white", "red", "navy"]


def hidden_modes(n: int, seed: int = 0, n_modes: int = 3) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Records whose attributes are noise (every value drawn from one pool) and whose embedding
    carries ``n_modes`` modes the attributes cannot show."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_modes, DIM)) * 4.0
    modes = np.arange(n) % n_modes
    records = [
        {
            "id": f"r{i}",
            "garment_type": str(rng.choice(GARMENTS)),
            "colors": {"primary": str(rng.choice(COLOURS))},
            "embedding": (centres[m] + rng.normal(size=DIM)).round(5).tolist(),
        }
        for i, m in enumerate(modes)
    ]
    return records, modes


@pytest.fixture
def call(aws_env: Any, api_event: Any, invoke: Any) -> Any:
    reset_for_tests()
    bundles.clear_cache()

    def send(function: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        result = invoke(function, api_event("POST", path, body))
        return result["statusCode"], json.loads(result["body"])

    yield send
    reset_for_tests()


def test_without_embeddings_outputs_are_those_of_main() -> None:
    # Given the style, off-style and selection outputs main gave on fixed inputs (no embeddings)
    expected = json.loads(BASELINE.read_text())

    # When the same inputs go through this code
    got = compute()

    # Then every assignment, ordering and flag is the same, every score equal to its rounding
    assert got["style"]["components"] == expected["style"]["components"]
    assert got["style"]["n_clusters"] == expected["style"]["n_clusters"]
    assert got["style"]["n_features"] == expected["style"]["n_features"]
    assert np.allclose(got["style"]["probabilities"], expected["style"]["probabilities"], atol=1e-6)
    assert np.allclose(got["style"]["onnx_probabilities"], expected["style"]["onnx_probabilities"], atol=1e-5)
    assert got["novelty"]["is_outlier"] == expected["novelty"]["is_outlier"]
    assert np.allclose(got["novelty"]["raw"], expected["novelty"]["raw"], atol=1e-6)
    assert got["select"] == expected["select"]


def test_fused_style_model_finds_modes_only_the_embedding_shows() -> None:
    # Given records whose attributes are noise and whose embeddings hold three modes
    records, modes = hidden_modes(90)
    parsed = [parse_record(r) for r in records]

    # When the style model is fitted on attributes alone and on attributes with embeddings
    alone = fit_style(parsed, n_clusters=3)
    fused = fit_style(parsed, n_clusters=3, embeddings=embedding_matrix(records))

    # Then only the fused model recovers the modes, and it says how it weighed the embedding
    assert adjusted_rand_score(modes, alone.components) < 0.2
    assert adjusted_rand_score(modes, fused.components) > 0.9
    assert fused.X.shape[1] == alone.X.shape[1] + DIM
    assert fused.describe()["embedding_dim"] == DIM
    assert "embedding_dim" not in alone.describe()


def test_profile_with_embeddings_is_stored_and_served_by_onnx(call: Any) -> None:
    # Given a portfolio with embeddings
    records, _ = hidden_modes(60)

    # When the profile is created
    status, body = call("ProfileFunction", CREATE, {"user_id": "emb", "vlt_records": records, "n_clusters": 3})

    # Then the stored bundle places the records as the profile did, from the same fused rows
    assert status == 201, body
    profile = body["profile"]
    bundle = bundles.load_style_bundle(get_storage(), "emb")
    assert bundle is not None and bundle.embedding is not None and bundle.embedding.dim == DIM
    ids, _ = bundle.place(records)
    assert ids.tolist() == [profile["assignments"][r["id"]] for r in records]
    assert profile["model"]["onnx_parity_max_abs_diff"] < 1e-4
    keys = get_storage().list_keys(bundle.prefix)
    assert any(k.endswith(bundles.NOVELTY_EMBEDDING_MODEL) for k in keys)
    assert bundle.json(bundles.NOVELTY_CALIBRATION)["embedding"]["parity_max_abs_diff"] < 1e-4


def test_update_with_another_embedding_dimension_is_a_422_and_changes_nothing(call: Any) -> None:
    # Given a profile fitted on 8-dimensional embeddings
    records, _ = hidden_modes(30)
    assert call("ProfileFunction", CREATE, {"user_id": "emb", "vlt_records": records})[0] == 201
    before = sorted(get_storage().list_keys(""))

    # When an update sends a record with a 5-dimensional embedding
    extra = [{"id": "new1", "garment_type": "dress", "embedding": [0.1] * 5}]
    status, body = call("ProfileFunction", UPDATE, {"user_id": "emb", "vlt_records": extra})

    # Then a 422 names the field and the stored profile is as it was
    assert status == 422
    assert "vlt_records[0].embedding" in body["error"]["message"]
    assert sorted(get_storage().list_keys("")) == before


def test_validate_flags_images_whose_embedding_is_off_style(call: Any) -> None:
    # Given a profile whose attributes say nothing (noise) and whose embeddings hold its style
    records, _ = hidden_modes(90)
    assert call("ProfileFunction", CREATE, {"user_id": "emb", "vlt_records": records})[0] == 201
    rng = np.random.default_rng(5)
    in_style, _ = hidden_modes(9, seed=0)
    images = [
        {"id": f"in{i}", "vlt": {k: v for k, v in r.items() if k != "embedding"}, "embedding": r["embedding"]}
        for i, r in enumerate(in_style)
    ]
    images += [
        {
            "id": f"off{i}",
            "vlt": {"garment_type": "dress", "colors": {"primary": "black"}},
            "embedding": (rng.normal(size=DIM) * 4.0 + 12.0).tolist(),
        }
        for i in range(6)
    ]
    body = {"images": images, "target_vlt": {"garment_type": "dress"}, "user_id": "emb", "consistency_threshold": 0.0}

    # When the images are validated
    status, answer = call("ValidateFunction", VALIDATE, body)

    # Then the off-style embeddings are flagged, saying why, and the in-style ones mostly pass
    assert status == 200, answer
    by_id = {v["image_id"]: v for v in answer["validations"]}
    assert all(by_id[f"off{i}"]["is_outlier"] for i in range(6))
    assert any("embedding" in reason for reason in by_id["off0"]["reasons"])
    assert sum(by_id[f"in{i}"]["is_outlier"] for i in range(9)) <= 1


def test_validate_with_another_embedding_dimension_is_a_422(call: Any) -> None:
    # Given a profile fitted on 8-dimensional embeddings
    records, _ = hidden_modes(60)
    assert call("ProfileFunction", CREATE, {"user_id": "emb", "vlt_records": records})[0] == 201

    # When an image carries a 3-dimensional one
    images = [{"id": "a", "vlt": {"garment_type": "dress"}, "embedding": [0.1, 0.2, 0.3]}]
    status, body = call(
        "ValidateFunction", VALIDATE, {"images": images, "target_vlt": {"garment_type": "dress"}, "user_id": "emb"}
    )

    # Then a 422 names the image's embedding
    assert status == 422
    assert "images[0].embedding" in body["error"]["message"]


def test_validate_images_without_embeddings_are_checked_on_attributes_with_a_warning(call: Any) -> None:
    # Given a profile with embeddings
    records, _ = hidden_modes(60)
    assert call("ProfileFunction", CREATE, {"user_id": "emb", "vlt_records": records})[0] == 201

    # When the images carry none
    images = [{"id": "a", "vlt": {"garment_type": "dress", "colors": {"primary": "black"}}}]
    status, body = call(
        "ValidateFunction", VALIDATE, {"images": images, "target_vlt": {"garment_type": "dress"}, "user_id": "emb"}
    )

    # Then the style is still checked, and the answer says on what
    assert status == 200, body
    assert body["validations"][0]["outlier_score"] is not None
    assert any("no embedding" in w for w in body["warnings"])


def test_select_kernel_with_embeddings_stays_unit_psd_and_low_rank() -> None:
    # Given 30 images with identical attributes and embeddings of three modes
    records, modes = hidden_modes(30)
    parsed = [parse_record({"garment_type": "dress"}) for _ in records]
    E = embedding_matrix(records)

    # When the kernel is built with and without the embeddings
    plain = build_kernel(parsed, np.full(30, 0.5), 0.7, 0.3)
    fused = build_kernel(parsed, np.full(30, 0.5), 0.7, 0.3, embeddings=E)

    # Then rows stay unit (S_ii = 1), B is N x (D + dim), and only the embedding tells images apart
    assert np.allclose(np.linalg.norm(fused.features, axis=1), 1.0)
    assert fused.features.shape == (30, plain.features.shape[1] + DIM)
    assert np.linalg.eigvalsh(fused.dense()).min() > -1e-9
    assert greedy_rounds(plain.features, plain.log_quality, 3).first_round == 1
    chosen = greedy_rounds(fused.features, fused.log_quality, 3).order
    assert sorted(modes[chosen].tolist()) == [0, 1, 2]


def test_select_through_the_handler_uses_the_embeddings(call: Any) -> None:
    # Given images alike in attributes, different in embedding (three modes)
    records, modes = hidden_modes(12)
    images = [{"id": r["id"], "vlt": {"garment_type": "dress"}, "embedding": r["embedding"]} for r in records]

    # When three are selected
    status, body = call("SelectFunction", SELECT, {"images": images, "target_count": 3})

    # Then one of each mode is kept
    assert status == 200, body
    picked = [int(s["id"][1:]) for s in body["selected"]]
    assert sorted(modes[picked].tolist()) == [0, 1, 2]
    assert body["metadata"]["images_with_embedding"] == 12
