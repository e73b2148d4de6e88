"""An Api handler for the local server's tests: echoes the event, raises, or answers malformed."""

import json
import time

from echo_format import response  # a sibling module, as LAMBDA_TASK_ROOT allows

CALLS = []


def lambda_handler(event, context):
    CALLS.append((event, context))
    if event["resource"] == "/boom":
        raise RuntimeError("secret internal detail")
    if event["resource"] == "/slow":
        time.sleep(float(event["queryStringParameters"]["s"]))
    if event["resource"] == "/malformed":
        return {"body": "no status code"}
    return response(
        200,
        {
            "event": event,
            "context": {
                "function_name": context.function_name,
                "remaining_ms": context.get_remaining_time_in_millis(),
                "memory": context.memory_limit_in_mb,
            },
        },
    )


def raw_body_json(event):
    return json.loads(event["body"])
