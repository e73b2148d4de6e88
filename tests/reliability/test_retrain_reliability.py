"""Feedback and retraining under duplicates, poison messages, races and failing backends.

Faults are injected into the service's own boto3 clients (botocore event hooks) talking to
moto: the code under test runs unchanged. These tests switch on when the feedback, retrain and
optimize handlers exist.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from botocore.exceptions import EndpointConnectionError
from reliability_helpers import API_KEY, record, require_function, require_route, stored

from designer_ml import observability
from designer_ml.reward.events import STATE_KEY
from designer_ml.storage import get_storage
from local.events import sqs_event
from local.server import LocalService

SUBMIT = ("POST", "/api/ml/feedback/submit")
MODEL = ("GET", "/api/ml/rlhf/model/{user_id}")
OPTIMIZE = ("POST", "/api/ml/prompt/optimize")


@pytest.fixture(autouse=True)
def _no_coalescing_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    # A burst still makes one retrain message, but it is sent without delay: the tests can receive it.
    monkeypatch.setenv("RETRAIN_COALESCE_SECONDS", "0")


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """The service logger's records, each as one line of text (message and extra keys)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            extras = {k: v for k, v in record.__dict__.items() if k not in logging.makeLogRecord({}).__dict__}
            lines.append(f"{record.levelname} {record.getMessage()} {extras}")

    handler = Collect(level=logging.WARNING)
    target = logging.getLogger(observability.SERVICE)
    target.addHandler(handler)
    yield lines
    target.removeHandler(handler)


def events_in(everything: dict[str, Any]) -> list[dict[str, Any]]:
    """The feedback events among the feedback table's items (not the designers' state items)."""
    return [i for i in everything["FeedbackTable"] if i["event_key"]["S"] != STATE_KEY]


def feedback(user_id: str, asset: str, kind: str = "like", **extra: Any) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "generation_id": "g1",
        "asset_id": asset,
        "feedback_type": kind,
        "prompt_used": "editorial photo of a black a-line dress, soft light",
        "vlt_spec": record(0),
        "quality_score": 0.9,
        **extra,
    }


def submit(call: Any, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = call(require_route(*SUBMIT), "POST", SUBMIT[1], body=body)
    assert status == 202, answer
    return answer


def model_version(call: Any, user_id: str) -> int | None:
    status, answer = call(require_route(*MODEL), "GET", f"/api/ml/rlhf/model/{user_id}")
    assert status in (200, 404), answer
    return answer["version"] if status == 200 else None


def take_messages(aws_env: Any, n: int) -> list[dict[str, Any]]:
    """Receive ``n`` retrain messages (and hide them for a minute, as Lambda's poller would)."""
    sqs = aws_env.client("sqs")
    url = aws_env.physical["RetrainQueue"].url
    messages: list[dict[str, Any]] = []
    for _ in range(20):
        if len(messages) >= n:
            break
        messages += sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=60,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
    assert len(messages) == n, [m["Body"] for m in messages]
    return messages


def retrain(invoke: Any, aws_env: Any, messages: list[dict[str, Any]]) -> list[str]:
    """Invoke RetrainFunction on one SQS batch; returns the ids it reported as failed."""
    require_function("RetrainFunction")
    try:
        result = invoke("RetrainFunction", sqs_event(messages, aws_env.physical["RetrainQueue"].arn))
    except Exception:  # noqa: BLE001 - Lambda's reading: a raising handler failed the whole batch
        return [m["MessageId"] for m in messages]
    return [f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])]


def trained(call: Any, invoke: Any, aws_env: Any, user_id: str, assets: list[str]) -> dict[str, Any]:
    """A designer with feedback on ``assets`` and a reward model trained on it; returns the message."""
    for asset in assets:
        submit(call, feedback(user_id, asset, "like" if asset.endswith(("0", "2", "4")) else "dislike"))
    (message,) = take_messages(aws_env, 1)
    assert retrain(invoke, aws_env, [message]) == []
    assert model_version(call, user_id) == 1
    return message


def optimize(call: Any, user_id: str) -> dict[str, Any]:
    status, answer = call(
        require_route(*OPTIMIZE),
        "POST",
        OPTIMIZE[1],
        body={"user_id": user_id, "base_prompt": "a dress", "vlt_spec": record(0), "explore": False},
    )
    assert status == 200, answer
    return answer


# Idempotency


def test_the_same_feedback_twice_is_one_event(aws_env: Any, call: Any) -> None:
    # Given a designer's like on an asset
    first = submit(call, feedback("u1", "a1"))
    # When the Node side sends it again (a retry after a timeout)
    second = submit(call, feedback("u1", "a1"))
    # Then it is stored once and the second answer says so
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert first["feedback_id"] == second["feedback_id"]
    assert len(events_in(stored(aws_env))) == 1


def test_a_score_below_dynamodbs_smallest_number_is_stored_as_zero(aws_env: Any, call: Any) -> None:
    # Given a score DynamoDB cannot hold (its smallest magnitude is 1e-130; found by schemathesis)
    body = feedback("u1", "a1", quality_score=2.0059190247368518e-134)
    # When it is submitted
    answer = submit(call, body)
    # Then it is accepted and stored, not a 503
    assert answer["duplicate"] is False
    assert len(events_in(stored(aws_env))) == 1


def test_the_same_sqs_message_twice_makes_one_model_version(aws_env: Any, call: Any, invoke: Any) -> None:
    # Given feedback and its retrain message
    for asset in ("a0", "a1", "a2"):
        submit(call, feedback("u1", asset, "like" if asset != "a1" else "dislike"))
    (message,) = take_messages(aws_env, 1)
    # When SQS delivers the message twice (at-least-once delivery)
    first = retrain(invoke, aws_env, [message])
    second = retrain(invoke, aws_env, [message])
    # Then both succeed and there is one model version, one model object
    assert first == second == []
    assert model_version(call, "u1") == 1
    onnx = [k for k in stored(aws_env)["ArtifactsBucket"] if k.startswith("models/u1/") and k.endswith(".onnx")]
    assert len(onnx) == 1, onnx


# Partial failure


def test_a_poison_message_fails_alone_in_a_batch_of_ten(aws_env: Any, call: Any, invoke: Any) -> None:
    # Given 9 designers' retrain messages and one that can never succeed
    users = [f"d{i}" for i in range(9)]
    for user in users:
        submit(call, feedback(user, "a1"))
    messages = take_messages(aws_env, 9)
    poison = {"MessageId": "poison-1", "ReceiptHandle": "rh-poison", "Body": "{not json"}
    batch = messages[:4] + [poison] + messages[4:]
    # When the batch of 10 is processed
    failed = retrain(invoke, aws_env, batch)
    # Then only the poison message is reported (SQS retries it), the 9 designers have a model
    assert failed == ["poison-1"]
    assert [model_version(call, user) for user in users] == [1] * 9
    # And no feedback was lost
    assert len(events_in(stored(aws_env))) == 9


def _wait_for(condition: Any, timeout_s: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()


def test_through_the_local_poller_a_poison_message_is_retried_then_dead_lettered(
    aws_env: Any, local_service: LocalService
) -> None:
    # Given the local server with its SQS poller, a poison message and a designer's feedback
    require_function("RetrainFunction")
    require_route(*SUBMIT)
    sqs = aws_env.client("sqs")
    queue, dlq = aws_env.physical["RetrainQueue"].url, aws_env.physical["RetrainDLQ"].url
    sqs.send_message(QueueUrl=queue, MessageBody='{"user_id": "../nobody"}')
    answer = requests.post(
        f"{local_service.url}{SUBMIT[1]}", json=feedback("u1", "a1"), headers={"x-api-key": API_KEY}, timeout=30
    )
    assert answer.status_code == 202, answer.text

    # When the poller has worked through the queue
    def dead_lettered() -> list[dict[str, Any]]:
        return sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])

    in_dlq = _wait_for(dead_lettered)

    # Then the poison message went to the DLQ after its retries, the designer's model exists
    assert [m["Body"] for m in in_dlq] == ['{"user_id": "../nobody"}']
    model = requests.get(f"{local_service.url}/api/ml/rlhf/model/u1", headers={"x-api-key": API_KEY}, timeout=30)
    assert model.status_code == 200 and model.json()["version"] == 1, model.text
    assert len(events_in(stored(aws_env))) == 1


# Concurrency


@pytest.fixture
def api_only(aws_env: Any, fresh_storage: None) -> Iterator[LocalService]:
    """The local server without SQS pollers: retrain messages stay in the queue to be counted."""
    with LocalService(
        port=0, endpoint=aws_env.endpoint, api_key=API_KEY, prefix=aws_env.physical.stack_name, pollers=False
    ) as service:
        yield service


def _post(service: LocalService, path: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{service.url}{path}", json=body, headers={"x-api-key": API_KEY}, timeout=120)


def test_twenty_concurrent_feedback_submits_store_every_event_and_queue_one_retrain(
    aws_env: Any, api_only: LocalService
) -> None:
    # Given a designer
    require_route(*SUBMIT)
    # When 20 feedback events on 20 assets arrive at once
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda i: _post(api_only, SUBMIT[1], feedback("u1", f"a{i}")), range(20)))
    # Then every one is accepted and stored
    assert [a.status_code for a in answers] == [202] * 20, [a.text for a in answers if a.status_code != 202]
    everything = stored(aws_env)
    assert len(events_in(everything)) == 20
    # And the burst queued one retrain, not 20
    assert everything["RetrainQueue"] == 1


# Faults


class Fault:
    """Raises a connection error from matching calls of a real boto3 client (botocore event hook)."""

    def __init__(self, client: Any, operation: str, match: Any = None) -> None:
        self.client, self.event = client, f"before-parameter-build.{client.meta.service_model.service_name}.{operation}"
        self.match = match or (lambda params: True)
        self.hits = 0

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if self.match(params):
            self.hits += 1
            raise EndpointConnectionError(endpoint_url=f"injected fault: {self.event}")

    def __enter__(self) -> Fault:
        self.client.meta.events.register(self.event, self, unique_id=f"fault-{id(self)}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.meta.events.unregister(self.event, unique_id=f"fault-{id(self)}")


def _new_feedback_message(call: Any, aws_env: Any, user_id: str, asset: str) -> dict[str, Any]:
    submit(call, feedback(user_id, asset, "dislike"))
    (message,) = take_messages(aws_env, 1)
    return message


def test_s3_failing_mid_retrain_keeps_the_old_model_serving_and_the_retry_succeeds(
    aws_env: Any, call: Any, invoke: Any, logs: list[str]
) -> None:
    # Given a designer served by reward model v1, and new feedback with its retrain message
    trained(call, invoke, aws_env, "u1", ["a0", "a1", "a2"])
    message = _new_feedback_message(call, aws_env, "u1", "a3")
    # When S3 refuses every upload during the retrain
    with Fault(get_storage().s3, "PutObject") as fault:
        failed = retrain(invoke, aws_env, [message])
        during = optimize(call, "u1")
    # Then the message is retried, v1 keeps serving, optimize answers, the log says what failed
    assert fault.hits >= 1 and failed == [message["MessageId"]]
    assert model_version(call, "u1") == 1
    assert during["metadata"]["reward_model_version"] == 1
    assert any("PutObject" in line or "s3://" in line for line in logs), logs
    # And the retry, with S3 back, publishes v2
    assert retrain(invoke, aws_env, [message]) == []
    assert model_version(call, "u1") == 2
    assert optimize(call, "u1")["metadata"]["reward_model_version"] == 2


def test_dynamodb_failing_mid_retrain_keeps_the_old_model_serving_and_the_retry_succeeds(
    aws_env: Any, call: Any, invoke: Any, logs: list[str]
) -> None:
    # Given a designer served by reward model v1, and new feedback with its retrain message
    trained(call, invoke, aws_env, "u1", ["a0", "a1", "a2"])
    message = _new_feedback_message(call, aws_env, "u1", "a3")
    dynamodb = get_storage().dynamodb
    # The service's DynamoDB client (the resource layer's, if storage uses one).
    client = dynamodb.meta.client if hasattr(dynamodb.meta, "client") else dynamodb

    def publishing(params: dict[str, Any]) -> bool:
        return "reward_version" in (params.get("ExpressionAttributeNames") or {}).values()

    # When DynamoDB fails the write that would point the profile at the new model (after its upload)
    with Fault(client, "UpdateItem", publishing) as fault:
        failed = retrain(invoke, aws_env, [message])
        during = optimize(call, "u1")
    # Then the message is retried, v1 keeps serving, optimize answers, the log says what failed
    assert fault.hits >= 1 and failed == [message["MessageId"]]
    assert model_version(call, "u1") == 1
    assert during["metadata"]["reward_model_version"] == 1
    assert any("storage" in line.lower() or "retrain" in line.lower() for line in logs), logs
    # And the retry publishes v2
    assert retrain(invoke, aws_env, [message]) == []
    assert model_version(call, "u1") == 2


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_damaged_model_artifact_never_makes_optimize_fail_and_a_retrain_replaces_it(
    damage: str, aws_env: Any, call: Any, invoke: Any, logs: list[str]
) -> None:
    # Given a designer served by reward model v1
    trained(call, invoke, aws_env, "u1", ["a0", "a1", "a2"])
    s3 = aws_env.client("s3")
    bucket = aws_env.physical["ArtifactsBucket"].name
    key = next(k for k in stored(aws_env)["ArtifactsBucket"] if k.startswith("models/u1/") and k.endswith(".onnx"))
    # When its ONNX artifact is corrupted, or gone, under the pointer
    if damage == "corrupt":
        s3.put_object(Bucket=bucket, Key=key, Body=b"\x08\x07not an onnx model")
    else:
        s3.delete_object(Bucket=bucket, Key=key)
    answer = optimize(call, "u1")
    # Then optimize still answers (from a fallback model), and the log names the damaged artifact
    assert answer["prompt"]
    assert any(key in line or "u1" in line for line in logs), logs
    # And the next retrain publishes a sound model that serves again
    message = _new_feedback_message(call, aws_env, "u1", "a3")
    assert retrain(invoke, aws_env, [message]) == []
    assert model_version(call, "u1") == 2
    assert optimize(call, "u1")["metadata"]["reward_model_version"] == 2


def test_a_retrain_message_for_a_user_erased_meanwhile_does_not_resurrect_their_data(
    aws_env: Any, call: Any, invoke: Any
) -> None:
    # Given feedback with its retrain message, then the designer's erasure
    submit(call, feedback("u1", "a1"))
    (message,) = take_messages(aws_env, 1)
    status, _ = call(require_route("DELETE", "/api/ml/users/{user_id}"), "DELETE", "/api/ml/users/u1")
    assert status == 200
    # When the stale message is processed
    failed = retrain(invoke, aws_env, [message])
    # Then it is consumed, and nothing of the designer is stored again
    assert failed == []
    everything = stored(aws_env)
    assert not [k for k in everything["ArtifactsBucket"] if k.startswith(("models/u1/", "records/u1/"))]
    assert not [i for i in everything["ProfilesTable"] + everything["FeedbackTable"] if i["user_id"]["S"] == "u1"]


def test_logs_are_json_lines_a_reader_can_parse(aws_env: Any, call: Any, capfd: pytest.CaptureFixture[str]) -> None:
    # Given a feedback submit
    submit(call, feedback("u1", "a1"))
    # When the process's output is read
    out = capfd.readouterr().out
    # Then every log line the service wrote is one JSON object
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert all(isinstance(json.loads(line), dict) for line in lines)
