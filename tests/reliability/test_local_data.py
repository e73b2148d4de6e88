"""Local data: what ``make run`` keeps across a restart, and redriving the retrain DLQ locally."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from moto.moto_api._internal.models import moto_api_backend

from local import cloud, redrive
from local.server import LocalService


def _fill(service: LocalService) -> None:
    dynamodb = service._aws_client("dynamodb")
    s3 = service._aws_client("s3")
    profiles = service.physical["ProfilesTable"].name
    feedback = service.physical["FeedbackTable"].name
    dynamodb.put_item(
        TableName=profiles,
        Item={
            "user_id": {"S": "u1"},
            "version": {"N": "3"},
            "document": {"S": '{"n_records": 2}'},
            "blob": {"B": b"\x00\xffraw"},
            "tags": {"SS": ["a", "b"]},
        },
    )
    for i in range(30):  # more than one batch write
        dynamodb.put_item(TableName=feedback, Item={"user_id": {"S": "u1"}, "event_key": {"S": f"g#{i}"}})
    bucket = service.physical["ArtifactsBucket"].name
    s3.put_object(Bucket=bucket, Key="models/u1/reward/v1.onnx", Body=bytes(range(256)), Metadata={"sha": "x1"})
    s3.put_object(Bucket=bucket, Key="records/u1/v1.json", Body=b'{"r": 1}', ContentType="application/json")


def _contents(service: LocalService) -> dict[str, Any]:
    dynamodb = service._aws_client("dynamodb")
    s3 = service._aws_client("s3")
    found: dict[str, Any] = {}
    for logical_id in ("ProfilesTable", "FeedbackTable"):
        items = dynamodb.scan(TableName=service.physical[logical_id].name)["Items"]
        found[logical_id] = sorted(items, key=lambda i: repr(sorted(i.items())))
    bucket = service.physical["ArtifactsBucket"].name
    for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        got = s3.get_object(Bucket=bucket, Key=listed["Key"])
        found[listed["Key"]] = (got["Body"].read(), got.get("ContentType"), got.get("Metadata"))
    return found


@pytest.fixture
def own_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS endpoint: each LocalService starts its own embedded moto, as `make run` does."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def test_with_a_state_file_tables_and_bucket_survive_a_restart(own_backend: None, tmp_path: Path) -> None:
    # Given the local server with a state file, holding items and objects (binary ones too)
    state_file = tmp_path / "state" / "local.json"
    with LocalService(port=0, pollers=False, state_file=state_file) as first:
        _fill(first)
        before = _contents(first)
    # When it is stopped, its backend's memory wiped (a new process), and it is started again
    moto_api_backend.reset()
    with LocalService(port=0, pollers=False, state_file=state_file) as second:
        after = _contents(second)
    # Then everything is back, byte for byte
    assert state_file.exists()
    assert len(before["FeedbackTable"]) == 30
    assert after == before


def test_without_a_state_file_a_restart_starts_empty(own_backend: None) -> None:
    # Given the local server without a state file, holding data
    with LocalService(port=0, pollers=False) as first:
        _fill(first)
    moto_api_backend.reset()
    # When it is started again
    with LocalService(port=0, pollers=False) as second:
        after = _contents(second)
    # Then nothing was kept
    assert after == {"ProfilesTable": [], "FeedbackTable": []}


def test_redrive_moves_every_dead_letter_back_to_the_retrain_queue(aws_env: Any) -> None:
    # Given three messages in the retrain DLQ
    sqs = aws_env.client("sqs")
    dlq, queue = aws_env.physical["RetrainDLQ"].url, aws_env.physical["RetrainQueue"].url
    bodies = [json.dumps({"user_id": f"u{i}"}) for i in range(3)]
    for body in bodies:
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
    # When `python -m local.redrive` runs against the backend
    assert redrive.main(["--endpoint", aws_env.endpoint, "--prefix", aws_env.physical.stack_name]) == 0
    # Then the retrain queue holds them and the DLQ is empty
    moved = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert sorted(m["Body"] for m in moved) == sorted(bodies)
    left = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert left["ApproximateNumberOfMessages"] == "0"
    assert cloud.physical_name(aws_env.physical.stack_name, "RetrainDLQ", cloud.QUEUE) in dlq
