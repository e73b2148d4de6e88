"""A designer's right to their data, through the API: export everything, erase everything.

The designer goes through the whole service first (profile, feedback, a trained reward model),
beside a neighbour whose id is a prefix-sibling; afterwards every table item and every object
(keys and JSON contents) is searched for the erased designer's id.
"""

from __future__ import annotations

import json
from typing import Any

from reliability_helpers import record, require_function, require_route, stored

from local.events import sqs_event

ERASED, NEIGHBOUR = "designer-7f3a", "designer-7f3a0"


def _journey(call: Any, invoke: Any, aws_env: Any, user_id: str) -> None:
    status, answer = call(
        require_route("POST", "/api/ml/style-profile/create"),
        "POST",
        "/api/ml/style-profile/create",
        body={"user_id": user_id, "vlt_records": [record(i, i) for i in range(9)]},
    )
    assert status == 201, answer
    for i, kind in enumerate(["like", "dislike", "like"]):
        status, answer = call(
            require_route("POST", "/api/ml/feedback/submit"),
            "POST",
            "/api/ml/feedback/submit",
            body={
                "user_id": user_id,
                "generation_id": "g",
                "asset_id": f"a{i}",
                "feedback_type": kind,
                "prompt_used": "black a-line dress",
                "vlt_spec": record(0),
            },
        )
        assert status == 202, answer
    require_function("RetrainFunction")
    sqs = aws_env.client("sqs")
    queue = aws_env.physical["RetrainQueue"]
    messages = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    result = invoke("RetrainFunction", sqs_event(messages, queue.arn))
    assert not (result or {}).get("batchItemFailures")
    for m in messages:
        sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=m["ReceiptHandle"])


def _mentions(aws_env: Any, user_id: str) -> list[str]:
    """Where ``user_id`` still appears: table items, object keys, JSON object contents."""
    everything = stored(aws_env)
    found = []
    for logical_id in ("ProfilesTable", "FeedbackTable"):
        for item in everything[logical_id]:
            if f'"{user_id}"' in json.dumps(item) or f"{user_id}/" in json.dumps(item):
                found.append(f"{logical_id}: {json.dumps(item)[:200]}")
    s3 = aws_env.client("s3")
    bucket = aws_env.physical["ArtifactsBucket"].name
    for key in everything["ArtifactsBucket"]:
        if f"/{user_id}/" in key:
            found.append(f"object {key}")
        elif key.endswith(".json"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            if f'"{user_id}"' in body or f"/{user_id}/" in body:
                found.append(f"inside {key}")
    return found


def test_export_gives_everything_and_erasure_leaves_nothing_of_the_designer(
    aws_env: Any, call: Any, invoke: Any
) -> None:
    # Given a designer and a neighbour who both used the whole service
    export = require_route("GET", "/api/ml/users/{user_id}/export")
    _journey(call, invoke, aws_env, ERASED)
    _journey(call, invoke, aws_env, NEIGHBOUR)

    # When the designer's data is exported
    status, document = call(export, "GET", f"/api/ml/users/{ERASED}/export")

    # Then it holds their profile, records, every feedback event and their model artifacts
    assert status == 200, document
    assert document["profile"]["document"]["user_id"] == ERASED
    # (the reward reports are stored as JSON text and exported as what they say)
    assert isinstance(document["profile"]["reward_summary"]["metrics"], dict)
    assert document["records"] and all(f"/{ERASED}/" in key for key in document["records"])
    assert sorted(e["event_key"] for e in document["feedback"]) == ["g#a0", "g#a1", "g#a2"]
    artifacts = document["model_artifacts"]
    assert any("/style/" in key for key in artifacts) and any("/reward/" in key for key in artifacts)
    assert not [key for key in artifacts + list(document["records"]) if f"/{NEIGHBOUR}/" in key]

    # When the designer asks to be erased
    status, deleted = call(export, "DELETE", f"/api/ml/users/{ERASED}")

    # Then nothing of theirs is left in any table or object, and the neighbour is untouched
    assert status == 200, deleted
    assert deleted["deleted"]["feedback_events"] == 3
    assert _mentions(aws_env, ERASED) == []
    status, neighbour = call(export, "GET", f"/api/ml/users/{NEIGHBOUR}/export")
    assert status == 200 and len(neighbour["feedback"]) == 3
    # And they are unknown now; erasing again is harmless
    assert call(export, "GET", f"/api/ml/users/{ERASED}/export")[0] == 404
    assert call(export, "DELETE", f"/api/ml/users/{ERASED}")[0] == 200
