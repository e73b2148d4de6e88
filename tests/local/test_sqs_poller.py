"""The SQS poller plays Lambda's event source mapping: partial failures, retries, the DLQ."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from local.server import LocalService, SqsPoller

FAKE_TEMPLATE = Path(__file__).resolve().parent / "fake_template.yaml"


def _prefix() -> str:
    return f"poll-{uuid.uuid4().hex[:8]}"


def _counts(sqs, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _send(sqs, url: str, *messages: dict) -> None:
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": json.dumps(m)} for i, m in enumerate(messages)]
    )


def test_partial_batch_failure_deletes_successes_and_the_failure_ends_in_the_dlq(moto_endpoint):
    # Given the fake service with its SQS worker polling (retries after 1 s, maxReceiveCount 2)
    with LocalService(
        FAKE_TEMPLATE, port=0, endpoint=moto_endpoint, prefix=_prefix(), visibility_timeout_s=1
    ) as service:
        sqs = boto3.client("sqs", endpoint_url=service.endpoint)
        queue, dlq = service.physical["WorkQueue"], service.physical["WorkDLQ"]
        # When a batch with one failing message arrives
        _send(sqs, queue.url, {"id": "ok-1"}, {"id": "poison", "fail": True}, {"id": "ok-2"})
        deadline = time.monotonic() + 15
        while _counts(sqs, dlq.url)[0] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        # Then the successes were stored once and deleted
        table = boto3.resource("dynamodb", endpoint_url=service.endpoint).Table(service.physical["WorkTable"].name)
        stored = {item["item_id"]: item["receive_count"] for item in table.scan()["Items"]}
        assert stored == {"ok-1": "1", "ok-2": "1"}
        # and the failing message was retried once, then moved to the DLQ by the queue's redrive policy
        seen = service.functions["WorkerFunction"].module.SEEN
        assert [count for message_id, count in seen if message_id == "poison"] == ["1", "2"]
        assert _counts(sqs, queue.url) == (0, 0)
        (dead,) = sqs.receive_message(QueueUrl=dlq.url, WaitTimeSeconds=0)["Messages"]
        assert json.loads(dead["Body"]) == {"id": "poison", "fail": True}


def test_a_raising_handler_deletes_nothing_and_the_batch_comes_back(moto_endpoint):
    # Given the fake worker, polled by hand
    with LocalService(FAKE_TEMPLATE, port=0, endpoint=moto_endpoint, prefix=_prefix(), pollers=False) as service:
        sqs = boto3.client("sqs", endpoint_url=service.endpoint)
        worker = service.functions["WorkerFunction"]
        (source,) = worker.spec.sqs_sources
        queue = service.physical[source.queue]
        poller = SqsPoller(worker, source, queue.url, queue.arn, sqs, visibility_timeout_s=1, wait_s=0)
        _send(sqs, queue.url, {"id": "crash", "crash": True})
        # When the handler raises on the batch
        outcome = poller.poll_once()
        # Then nothing is deleted, and after the visibility timeout the message is received again
        assert outcome["deleted"] == [] and len(outcome["failed"]) == 1
        assert poller.poll_once() == {"deleted": [], "failed": []}  # still invisible
        time.sleep(1.2)
        poller.poll_once()
        assert [count for _, count in worker.module.SEEN] == ["1", "2"]


class _Recorder:
    """Stands in for a LambdaFunction: returns a fixed result, records the events."""

    def __init__(self, result):
        self.result = result
        self.events = []

    def invoke(self, event):
        self.events.append(event)
        return self.result


@pytest.mark.parametrize(
    ("report_failures", "result", "deleted"),
    [
        (True, {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, 0),  # Lambda: whole batch fails
        (True, None, 2),
        (False, {"batchItemFailures": [{"itemIdentifier": "anything"}]}, 2),  # not reported: ignored
    ],
)
def test_batch_item_failures_are_read_as_lambda_reads_them(moto_endpoint, report_failures, result, deleted):
    # Given a queue and a handler answering ``result``
    with LocalService(FAKE_TEMPLATE, port=0, endpoint=moto_endpoint, prefix=_prefix(), pollers=False) as service:
        sqs = boto3.client("sqs", endpoint_url=service.endpoint)
        (source,) = service.functions["WorkerFunction"].spec.sqs_sources
        source = replace(source, function_response_types=("ReportBatchItemFailures",) if report_failures else ())
        queue = service.physical[source.queue]
        handler = _Recorder(result)
        poller = SqsPoller(handler, source, queue.url, queue.arn, sqs, visibility_timeout_s=1, wait_s=0)
        _send(sqs, queue.url, {"id": "a"}, {"id": "b"})
        # When one batch is processed
        outcome = {"deleted": [], "failed": []}
        for _ in range(5):
            if len(outcome["deleted"]) + len(outcome["failed"]) == 2:
                break
            step = poller.poll_once()
            outcome = {k: outcome[k] + step[k] for k in outcome}
        # Then the messages deleted are the ones Lambda would delete
        assert len(outcome["deleted"]) == deleted
        records = [r for event in handler.events for r in event["Records"]]
        assert {r["eventSourceARN"] for r in records} == {queue.arn}
