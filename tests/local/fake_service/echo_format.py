"""Response helper of the fake service (imported by app.py as a sibling module)."""

import json


def response(status, payload):
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "x-request-id": "echo"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": json.dumps(payload),
    }
