"""An SQS handler for the poller's tests.

Each message body is JSON: {"id": ..., "fail": bool, "crash": bool}. A "fail" message is
reported in batchItemFailures; a "crash" message makes the whole invocation raise; every other
message is stored in WORK_TABLE with the receive count it was processed at.
"""

import json
import os

import boto3

SEEN = []


def lambda_handler(event, context):
    failures = []
    table = boto3.resource("dynamodb").Table(os.environ["WORK_TABLE"])
    for record in event["Records"]:
        message = json.loads(record["body"])
        SEEN.append((message["id"], record["attributes"]["ApproximateReceiveCount"]))
        if message.get("crash"):
            raise RuntimeError("the whole batch fails")
        if message.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        table.put_item(
            Item={
                "item_id": message["id"],
                "kind": "done",
                "receive_count": record["attributes"]["ApproximateReceiveCount"],
            }
        )
    return {"batchItemFailures": failures}
