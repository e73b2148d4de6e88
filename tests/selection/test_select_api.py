"""POST /api/ml/select/diverse through the SelectFunction handler, on moto."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from selection_helpers import mode_image

from designer_ml.storage import reset_for_tests

PATH = "/api/ml/select/diverse"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def select(aws_env: Any, api_event: Any, invoke: Any) -> Any:
    """``select(body) -> (status, answer)`` through the handler the template names."""
    reset_for_tests()

    def call(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        result = invoke("SelectFunction", api_event("POST", PATH, body))
        return result["statusCode"], json.loads(result["body"])

    yield call
    reset_for_tests()


@pytest.fixture
def profiles(aws_env: Any) -> Any:
    return aws_env.resource("dynamodb").Table(aws_env.environment["PROFILES_TABLE"])


def mode_of(image: dict[str, Any]) -> str:
    return image["id"].split("-")[0]


def test_the_node_clients_body_works_and_images_come_back_as_sent(select: Any, mode_pool: list[dict]) -> None:
    # Given the Node client's exact body, images carrying url, a numeric id and fields of their own
    images = [
        {**image, "url": f"https://cdn.example/{i}.png", "prompt": {"seed": i}} for i, image in enumerate(mode_pool)
    ]
    images[0]["id"] = 12345
    body = {"images": images, "target_count": 4, "diversity_weight": 0.7, "quality_weight": 0.3}
    # When
    status, answer = select(body)
    # Then 4 selected, one per planted mode, ranked, and the rest rejected
    assert status == 200, answer
    assert [image["rank"] for image in answer["selected"]] == [1, 2, 3, 4]
    assert sorted(mode_of({"id": str(i["id"])}) for i in answer["selected"]) == ["m0", "m1", "m2", "m3"]
    assert len(answer["rejected"]) == len(images) - 4
    # And every image is exactly as sent, plus rank, score and novelty on the selected ones
    by_id = {str(image["id"]): image for image in images}
    for image in answer["selected"]:
        added = {k: image.pop(k) for k in ("rank", "score", "novelty")}
        assert image == by_id[str(image["id"])] and 0.0 <= added["score"] <= 1.0
    assert all(image == by_id[str(image["id"])] for image in answer["rejected"])
    assert 0.0 < answer["diversity_score"] <= 1.0
    assert answer["coverage"]["per_attribute"]["garment_type"]["covered"] == 4
    assert answer["coverage"]["gaps"] == [] and answer["warnings"] == []


def test_modes_are_spanned_before_any_repeats(select: Any, mode_pool: list[dict]) -> None:
    # When 8 of 4 modes x 5 variants are asked for
    status, answer = select({"images": mode_pool, "target_count": 8})
    # Then the first 4 cover each mode once, and all 8 cover each mode twice
    assert status == 200
    modes = [mode_of(image) for image in answer["selected"]]
    assert sorted(modes[:4]) == ["m0", "m1", "m2", "m3"]
    assert Counter(modes) == {"m0": 2, "m1": 2, "m2": 2, "m3": 2}
    scores = [image["score"] for image in answer["selected"]]
    assert scores == sorted(scores, reverse=True)


def test_target_count_over_the_pool_selects_the_whole_pool_with_a_warning(select: Any, mode_pool: list[dict]) -> None:
    status, answer = select({"images": mode_pool[:5], "target_count": 50})
    assert status == 200
    assert len(answer["selected"]) == 5 and answer["rejected"] == []
    assert any("target_count 50" in w for w in answer["warnings"])


def test_a_pool_of_one(select: Any) -> None:
    status, answer = select({"images": [mode_image(0, 0)], "target_count": 1})
    assert status == 200
    assert [i["id"] for i in answer["selected"]] == ["m0-v0"] and answer["diversity_score"] == 1.0


def test_identical_images_fill_the_target_with_a_warning(select: Any) -> None:
    # Given 2 distinct analyses, each shared by 3 images
    images = [{**mode_image(v % 2, 0), "id": f"img{v}"} for v in range(6)]
    # When 4 are asked for
    status, answer = select({"images": images, "target_count": 4})
    # Then 4 come back, both analyses once before either twice, and the warning says 2 were distinct
    assert status == 200
    ids = [int(i["id"][3:]) for i in answer["selected"]]
    assert len(ids) == 4 and {ids[0] % 2, ids[1] % 2} == {0, 1} and {ids[2] % 2, ids[3] % 2} == {0, 1}
    assert answer["diversity_score"] == 0.0 and answer["metadata"]["distinct_modes_selected"] == 2
    assert any("only 2 of the 4" in w for w in answer["warnings"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target_count": 0}, "target_count"),
        ({"target_count": -3}, "target_count"),
        ({"diversity_weight": 1.5}, "diversity_weight"),
        ({"method": "random"}, "method"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(select: Any, mode_pool: list[dict], change: dict, field: str) -> None:
    status, answer = select({"images": mode_pool, "target_count": 3, **change})
    assert status == 422 and answer["error"]["message"].startswith(field)


def test_duplicate_ids_and_empty_analyses_are_422_and_nothing_is_stored(
    select: Any, mode_pool: list[dict], profiles: Any
) -> None:
    # Given a designer with a profile
    profiles.put_item(Item={"user_id": "u1", "version": 1})
    duplicate = [mode_pool[0], {**mode_pool[1], "id": mode_pool[0]["id"]}]
    empty = [mode_pool[0], {"id": "blank", "vlt": {"garment_type": None, "colors": {}}}]
    # When
    dup_status, dup_answer = select({"images": duplicate, "target_count": 1, "user_id": "u1"})
    empty_status, empty_answer = select({"images": empty, "target_count": 1, "user_id": "u1"})
    # Then both are 422 naming the image, and the profile item is untouched
    assert dup_status == 422 and "duplicate id" in dup_answer["error"]["message"]
    assert empty_status == 422 and empty_answer["error"]["message"].startswith("images[1] (id 'blank')")
    assert profiles.get_item(Key={"user_id": "u1"})["Item"] == {"user_id": "u1", "version": 1}


def test_sampling_returns_exactly_target_count_and_is_reproducible(select: Any, mode_pool: list[dict]) -> None:
    body = {"images": mode_pool, "target_count": 6, "method": "sample", "seed": 7}
    status, first = select(body)
    _, again = select(body)
    assert status == 200 and len(first["selected"]) == 6
    assert [i["id"] for i in first["selected"]] == [i["id"] for i in again["selected"]]
    assert first["metadata"]["seed"] == 7


STYLE_DOCUMENT = {
    "clusters": [
        {"id": 0, "dominant_attributes": {"garment_type": ["dress", 12], "colors.primary": ["black", 9]}},
        {"id": 4, "dominant_attributes": {"garment_type": ["coat", 6], "style.overall": ["minimal", 5]}},
    ]
}


def test_gaps_are_stored_on_the_profile_for_the_next_optimize(select: Any, profiles: Any) -> None:
    # Given a designer whose style modes are dresses in black and minimal coats
    profiles.put_item(Item={"user_id": "u1", "version": 3, "document": json.dumps(STYLE_DOCUMENT)})
    images = [mode_image(0, v) for v in range(3)] + [mode_image(1, 0)]
    # When one image is selected for the user (every first pick gains the same: the first sent, a dress)
    status, answer = select({"images": images, "target_count": 1, "user_id": "u1"})
    # Then the gaps name the coat mode's values, and are stored without touching the profile version
    assert status == 200 and answer["selected"][0]["vlt"]["garment_type"] == "dress"
    expected = [
        {"attribute": "garment_type", "value": "coat", "cluster": 4, "in_pool": False},
        {"attribute": "style.overall", "value": "minimal", "cluster": 4, "in_pool": True},
    ]
    assert answer["coverage"]["gaps"] == expected
    item = profiles.get_item(Key={"user_id": "u1"})["Item"]
    assert item["coverage_gaps"] == expected and item["version"] == 3 and item["coverage_updated_at"]


def test_unchanged_gaps_are_not_written_again(select: Any, profiles: Any) -> None:
    # Given a designer whose gaps a first selection stored
    profiles.put_item(Item={"user_id": "u2", "version": 1, "document": json.dumps(STYLE_DOCUMENT)})
    dresses = [mode_image(0, v) for v in range(3)]
    assert select({"images": dresses, "target_count": 1, "user_id": "u2"})[0] == 200
    first = profiles.get_item(Key={"user_id": "u2"})["Item"]
    # When the same selection runs again, and then one that picks a coat too
    status, again = select({"images": dresses, "target_count": 1, "user_id": "u2"})
    unchanged = profiles.get_item(Key={"user_id": "u2"})["Item"]
    _, changed = select({"images": dresses + [mode_image(1, 0)], "target_count": 2, "user_id": "u2"})
    after = profiles.get_item(Key={"user_id": "u2"})["Item"]
    # Then the same gaps are answered without a write, and new gaps are stored
    assert status == 200 and again["coverage"]["gaps"] == first["coverage_gaps"]
    assert unchanged["coverage_updated_at"] == first["coverage_updated_at"]
    assert changed["coverage"]["gaps"] != first["coverage_gaps"]
    assert after["coverage_gaps"] == changed["coverage"]["gaps"]
    assert after["coverage_updated_at"] != first["coverage_updated_at"]


def test_the_profile_item_is_read_once_for_the_reward_model_and_the_gaps(
    select: Any, profiles: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a profile, and a reward loader that reads the profile item itself (as the real one does)
    import designer_ml.reward as reward
    from designer_ml.selection import service
    from designer_ml.storage import Storage

    profiles.put_item(
        Item={"user_id": "u3", "version": 2, "document": json.dumps(STYLE_DOCUMENT), "reward_version": 7, "tag": "x"}
    )
    seen: list[Any] = []

    def load_reward_scorer(storage: Any, user_id: str, item: Any = None) -> None:
        seen.append(item)
        return None

    monkeypatch.setattr(reward, "load_reward_scorer", load_reward_scorer, raising=False)
    reads: list[Any] = []
    real_get_item = Storage.get_item
    monkeypatch.setattr(
        Storage,
        "get_item",
        lambda self, table, key, consistent=True, attributes=None: reads.append((dict(key), attributes))
        or real_get_item(self, table, key, consistent, attributes),
    )
    # When
    status, answer = select({"images": [mode_image(0, 0), mode_image(1, 0)], "target_count": 1, "user_id": "u3"})
    # Then DynamoDB was asked once, for what select uses only; the reward loader saw the stored
    # item (without what select does not use), and the gaps came from it
    assert status == 200 and reads == [({"user_id": "u3"}, service.PROFILE_ATTRIBUTES)]
    assert seen[0]["reward_version"] == 7 and "document" in seen[0] and "tag" not in seen[0]
    assert answer["coverage"]["gaps"] and {g["cluster"] for g in answer["coverage"]["gaps"]} <= {0, 4}


def test_an_unreadable_profile_document_gives_a_selection_and_no_gaps(select: Any, profiles: Any) -> None:
    profiles.put_item(Item={"user_id": "u4", "version": 1, "document": "{not json"})
    status, answer = select({"images": [mode_image(0, 0), mode_image(1, 0)], "target_count": 1, "user_id": "u4"})
    assert status == 200 and answer["coverage"]["gaps"] == []
    assert any("no style profile" in w for w in answer["warnings"])
    assert "coverage_gaps" not in profiles.get_item(Key={"user_id": "u4"})["Item"]


def test_an_unreadable_profile_table_still_gives_a_selection_with_a_warning(
    select: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a profile table that does not answer
    from designer_ml.errors import StorageUnavailable
    from designer_ml.storage import Storage

    def unavailable(self: Any, table: Any, key: Any, consistent: bool = True, attributes: Any = None) -> None:
        raise StorageUnavailable("profiles: unavailable")

    monkeypatch.setattr(Storage, "get_item", unavailable)
    # When a selection is asked for a user
    status, answer = select({"images": [mode_image(0, 0), mode_image(1, 0)], "target_count": 1, "user_id": "u5"})
    # Then it answers without the reward and the gaps, and says so
    assert status == 200 and len(answer["selected"]) == 1
    assert answer["metadata"]["quality_source"] == "quality_score" and answer["coverage"]["gaps"] == []
    assert any("profile could not be read" in w for w in answer["warnings"])


def test_a_user_without_a_profile_gets_a_selection_and_nothing_is_created(select: Any, profiles: Any) -> None:
    status, answer = select({"images": [mode_image(0, 0), mode_image(1, 0)], "target_count": 1, "user_id": "ghost"})
    assert status == 200 and len(answer["selected"]) == 1
    assert any("no style profile" in w for w in answer["warnings"])
    assert "Item" not in profiles.get_item(Key={"user_id": "ghost"})


def test_the_designers_reward_model_moves_quality(select: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a designer whose reward model loves the jacket variant "v3" only, and quality to decide
    import designer_ml.reward as reward

    class Scorer:
        def score_vlts(self, vlts: list[dict]) -> np.ndarray:
            return np.array([1.0 if v["colors"]["finish"].startswith("textured") else 0.0 for v in vlts])

    monkeypatch.setattr(reward, "load_reward_scorer", lambda storage, user_id, item=None: Scorer(), raising=False)
    images = [mode_image(1, v, quality=0.5) for v in range(5)]
    # When
    status, answer = select(
        {"images": images, "target_count": 1, "user_id": "u1", "diversity_weight": 0.0, "quality_weight": 1.0}
    )
    # Then the designer's favourite comes first
    assert status == 200
    assert answer["selected"][0]["id"] == "m1-v3" and answer["metadata"]["quality_source"] == "quality_score+reward"


def test_the_request_path_imports_no_sklearn_scipy_dppy_or_matplotlib(aws_env: Any, profiles: Any) -> None:
    # Given a fresh process with the function's environment, and a user with a profile
    profiles.put_item(Item={"user_id": "u1", "version": 1})
    images = [mode_image(m, v) for m in range(4) for v in range(3)]
    script = textwrap.dedent(f"""
        import importlib.util, json, sys
        sys.path.insert(0, {str(REPO)!r})
        from local.events import build_api_event
        spec = importlib.util.spec_from_file_location("select_app", {str(REPO / "functions/select/app.py")!r})
        app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)
        class Context:
            function_name = "select"; memory_limit_in_mb = 2048; aws_request_id = "r"
            invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:select"
        for extra in ({{}}, {{"user_id": "u1"}}, {{"method": "sample", "seed": 1}}):
            body = json.dumps({{"images": {images!r}, "target_count": 4, **extra}})
            event = {{"httpMethod": "POST", "path": "{PATH}", "resource": "{PATH}", "body": body,
                      "headers": {{"Content-Type": "application/json"}}, "requestContext": {{"requestId": "r"}}}}
            assert app.lambda_handler(event, Context())["statusCode"] == 200
        banned = ("sklearn", "scipy", "dppy", "matplotlib", "skl2onnx")
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in banned)))
    """)
    # When it imports the handler and answers requests (with and without a user, both methods)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    # Then none of the heavy libraries was imported
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
