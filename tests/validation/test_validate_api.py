"""POST /api/ml/validate through the ValidateFunction handler, on moto."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from validation_helpers import IN_MODES, fit_style, make_record, records, stand_in_bundle

from designer_ml import limits
from designer_ml.storage import reset_for_tests

PATH = "/api/ml/validate"
REPO = Path(__file__).resolve().parents[2]
TARGET = {
    "garment_type": "dress",
    "attributes": {"silhouette": "A-line", "neckline": "V-neck"},
    "colors": {"primary": "black"},
}


@pytest.fixture
def validate(aws_env: Any, api_event: Any, invoke: Any) -> Any:
    """``validate(body) -> (status, answer)`` through the handler the template names."""
    reset_for_tests()

    def call(body: Any) -> tuple[int, dict[str, Any]]:
        result = invoke("ValidateFunction", api_event("POST", PATH, body))
        return result["statusCode"], json.loads(result["body"])

    yield call
    reset_for_tests()


@pytest.fixture(scope="module")
def style() -> Any:
    return fit_style(records(IN_MODES, 60, seed=1, prefix="p"))


def with_bundles(monkeypatch: pytest.MonkeyPatch, bundles: dict[str, Any]) -> None:
    """Stand in for designer_ml.style.bundle (the profile stage's loader) with in-memory bundles."""
    module = types.ModuleType("designer_ml.style.bundle")
    module.load_style_bundle = lambda storage, user_id, **_: bundles.get(user_id)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "designer_ml.style.bundle", module)


def image(i: int, vlt: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"img-{i}", "vlt": vlt, "url": f"https://cdn.example/{i}.png"}


def test_the_node_clients_body_works_without_a_user(validate: Any) -> None:
    # Given the Node client's exact body: generation_id, images, target_vlt (no user_id)
    images = [image(0, TARGET), image(1, {**TARGET, "garment_type": "skirt"})]
    body = {"generation_id": "gen-1", "images": images, "target_vlt": TARGET}

    # When
    status, answer = validate(body)

    # Then the seed's shape comes back, consistency only, and a warning says so
    assert status == 200, answer
    first, second = answer["validations"]
    assert first["image_id"] == "img-0" and first["consistency_score"] == 1.0 and not first["is_rejected"]
    assert second["is_rejected"] and second["reasons"][0] == "garment_type: expected dress, got skirt"
    assert first["is_outlier"] is False and first["outlier_score"] is None
    assert first["vlt_analysis"] == TARGET
    assert answer["summary"] == {
        "total": 2,
        "passed": 1,
        "rejected": 1,
        "avg_consistency": pytest.approx((1.0 + second["consistency_score"]) / 2),
        "outliers": 0,
        "wrong_garment": 1,
        "style_checked": False,
    }
    assert answer["outliers"] == []
    assert any("no user_id" in w for w in answer["warnings"])


def test_user_without_profile_gets_consistency_and_a_warning(validate: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no profile for this user
    with_bundles(monkeypatch, {})

    # When
    status, answer = validate({"images": [image(0, TARGET)], "target_vlt": TARGET, "user_id": "nobody"})

    # Then outlier fields are null and the warning names the user
    assert status == 200, answer
    assert answer["validations"][0]["outlier_score"] is None
    assert answer["warnings"] == ["no style profile for user 'nobody': style check skipped, consistency only"]


def test_profile_without_off_style_model_is_a_warning_not_an_error(
    validate: Any, style: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bundle without novelty.onnx, and one whose ONNX bytes are corrupt
    corrupt = stand_in_bundle(style)
    corrupt.files["novelty.onnx"] = b"not onnx"
    with_bundles(monkeypatch, {"old": stand_in_bundle(style, with_model=False), "bad": corrupt})

    # When each validates
    results = [validate({"images": [image(0, TARGET)], "target_vlt": TARGET, "user_id": u}) for u in ("old", "bad")]

    # Then both answer 200, consistency only, with a warning
    for status, answer in results:
        assert status == 200, answer
        assert answer["validations"][0]["is_outlier"] is False and len(answer["warnings"]) == 1
        assert answer["validations"][0]["outlier_score"] is None and answer["summary"]["style_checked"] is False


def test_with_a_profile_off_style_images_are_flagged_and_explained(
    validate: Any, style: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a designer with a style bundle, a target from one of her modes, in-style and off-style images
    with_bundles(monkeypatch, {"u1": stand_in_bundle(style)})
    rng = np.random.default_rng(4)
    target = make_record("t", IN_MODES[0], rng, fidelity=1.0)
    in_style = [make_record(f"i{i}", IN_MODES[0], rng, fidelity=1.0) for i in range(3)]
    off_style = {
        **in_style[0],
        "attributes": {**in_style[0]["attributes"], "neckline": "halter"},
        "colors": {"primary": "neon green"},
        "style": {"overall": "punk"},
    }
    images = [image(i, vlt) for i, vlt in enumerate([*in_style, off_style])]

    # When validated for her
    status, answer = validate({"generation_id": "g", "images": images, "target_vlt": target, "user_id": "u1"})

    # Then the off-style image alone is an outlier, rejected, with reasons naming what is new
    assert status == 200, answer
    flags = [v["is_outlier"] for v in answer["validations"]]
    assert flags == [False, False, False, True]
    off = answer["validations"][3]
    assert off["is_rejected"] and off["outlier_score"] > 0.5
    assert "neckline 'halter' never appears in your portfolio" in off["reasons"]
    assert [o["image_id"] for o in answer["outliers"]] == ["img-3"]
    assert answer["summary"]["style_checked"] is True and answer["warnings"] == []
    assert answer["style_model"] == {"version": 1}


def test_image_without_vlt_is_a_422_naming_it(validate: Any) -> None:
    # Given an image whose vlt is missing
    body = {"images": [image(0, TARGET), {"id": "no-analysis", "url": "x"}], "target_vlt": TARGET}

    # When
    status, answer = validate(body)

    # Then 422 names the image
    assert status == 422
    assert "no-analysis" in answer["error"]["message"] and "images[1]" in answer["error"]["message"]


def test_duplicate_image_ids_are_a_422(validate: Any) -> None:
    # Given two images with one id (a number and its string)
    body = {"images": [{"id": 7, "vlt": TARGET}, {"id": "7", "vlt": TARGET}], "target_vlt": TARGET}

    # When
    status, answer = validate(body)

    # Then
    assert status == 422 and "duplicate id '7'" in answer["error"]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"images": [{"id": "a", "vlt": {}}], "target_vlt": TARGET}, "images[0].vlt"),
        ({"images": [{"id": "a", "vlt": TARGET}], "target_vlt": {"garment_type": None}}, "target_vlt"),
        ({"images": [], "target_vlt": TARGET}, "images"),
        (
            {"images": [{"id": "a", "vlt": TARGET}], "target_vlt": TARGET, "consistency_threshold": 2},
            "consistency_threshold",
        ),
        ({"images": [{"id": "a", "vlt": TARGET}], "target_vlt": TARGET, "user_id": "../etc"}, "user_id"),
        ({"images": [{"id": "a", "vlt": TARGET}]}, "target_vlt"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(validate: Any, body: dict[str, Any], field: str) -> None:
    # When
    status, answer = validate(body)

    # Then
    assert status == 422, answer
    assert answer["error"]["message"].startswith(field)


def test_too_many_images_is_a_413_naming_the_limit(validate: Any) -> None:
    # Given one image over the documented limit
    images = [{"id": str(i), "vlt": {"garment_type": "dress"}} for i in range(limits.MAX_VALIDATE_IMAGES + 1)]

    # When
    status, answer = validate({"images": images, "target_vlt": TARGET})

    # Then
    assert status == 413
    assert str(limits.MAX_VALIDATE_IMAGES) in answer["error"]["message"] and "images" in answer["error"]["message"]


def test_non_json_body_is_a_400(validate: Any) -> None:
    status, answer = validate("{not json")
    assert status == 400 and answer["error"]["code"] == "bad_request"


def test_the_handler_imports_no_training_library(tmp_path: Path, style: Any) -> None:
    # Given a fresh interpreter that imports the handler and answers a request scored by an off-style model
    (tmp_path / "model.onnx").write_bytes(style.artifacts.onnx_bytes)
    (tmp_path / "calibration.json").write_text(json.dumps(style.artifacts.calibration))
    (tmp_path / "vocab.json").write_text(json.dumps(style.vocab.to_dict()))
    body = {"generation_id": "g", "images": [image(0, TARGET)], "target_vlt": TARGET, "user_id": "u1"}
    script = textwrap.dedent(
        f"""
        import json, sys, types
        from pathlib import Path
        sys.path.insert(0, {str(REPO / "functions" / "validate")!r})
        import app
        from designer_ml.onnx_models import make_session
        from designer_ml.vlt import Vocabulary
        from local.runtime import LambdaContext
        tmp = Path({str(tmp_path)!r})
        vocab = Vocabulary.from_dict(json.loads((tmp / "vocab.json").read_text()))
        class Bundle:
            vocab = vocab
            version = 1
            def session(self, name): return make_session((tmp / "model.onnx").read_bytes())
            def json(self, name): return json.loads((tmp / "calibration.json").read_text())
        module = types.ModuleType("designer_ml.style.bundle")
        module.load_style_bundle = lambda storage, user_id, **_: Bundle()
        sys.modules["designer_ml.style.bundle"] = module
        event = {{"httpMethod": "POST", "path": {PATH!r}, "resource": {PATH!r}, "headers": {{"Content-Type": "application/json"}},
                 "body": json.dumps({body!r}), "requestContext": {{"requestId": "r1", "stage": "test"}}}}
        answer = app.lambda_handler(event, LambdaContext("validate", memory_limit_in_mb=1024, timeout_s=29))
        assert answer["statusCode"] == 200, answer
        assert json.loads(answer["body"])["validations"][0]["outlier_score"] is not None, answer
        banned = {{"sklearn", "scipy", "skl2onnx", "dppy", "matplotlib", "onnx"}}
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in banned)))
        """
    )

    # When it runs
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PROFILES_TABLE": "t",
            "FEEDBACK_TABLE": "f",
            "ARTIFACTS_BUCKET": "b",
            "RETRAIN_QUEUE_URL": "q",
        },
    )

    # Then no training library was imported on the way
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
