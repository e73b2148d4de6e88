"""Move the retrain DLQ's messages back to the retrain queue: ``python -m local.redrive``.

In AWS the same is one command (SQS's own redrive, which moto does not implement)::

    aws sqs start-message-move-task --source-arn <RetrainDLQ ARN>

Locally this receives from the DLQ, sends each body (and attributes) to the source queue, and
deletes it from the DLQ only once sent, so a crash half-way duplicates at worst (retraining is
idempotent) and never loses a message. Environment: ``AWS_ENDPOINT_URL`` (the running
``make run`` prints its backend), ``LOCAL_STACK_PREFIX`` (``designer-ml-local``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import boto3

from local import cloud

DLQ, SOURCE = "RetrainDLQ", "RetrainQueue"


def redrive(sqs: Any, dlq_url: str, source_url: str, limit: int | None = None) -> int:
    """Move up to ``limit`` messages (all when None) from ``dlq_url`` to ``source_url``; returns how many."""
    moved = 0
    while limit is None or moved < limit:
        batch = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10 if limit is None else max(1, min(10, limit - moved)),
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not batch:
            return moved
        for message in batch:
            request: dict[str, Any] = {"QueueUrl": source_url, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                request["MessageAttributes"] = message["MessageAttributes"]
            sqs.send_message(**request)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.redrive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"), help="the local AWS endpoint")
    parser.add_argument("--prefix", default=os.environ.get("LOCAL_STACK_PREFIX", cloud.DEFAULT_PREFIX))
    parser.add_argument("--limit", type=int, default=None, help="move at most this many messages")
    args = parser.parse_args(argv)
    if not args.endpoint:
        parser.error("no endpoint: pass --endpoint (the backend `make run` prints) or set AWS_ENDPOINT_URL")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    region = os.environ.get("AWS_DEFAULT_REGION") or cloud.DEFAULT_REGION
    sqs = boto3.client("sqs", region_name=region, endpoint_url=args.endpoint)
    dlq = sqs.get_queue_url(QueueName=cloud.physical_name(args.prefix, DLQ, cloud.QUEUE))["QueueUrl"]
    source = sqs.get_queue_url(QueueName=cloud.physical_name(args.prefix, SOURCE, cloud.QUEUE))["QueueUrl"]
    moved = redrive(sqs, dlq, source, args.limit)
    print(f"moved {moved} message(s) from {DLQ} to {SOURCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
