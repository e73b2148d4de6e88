"""The embedded moto server serves DynamoDB requests one at a time (local/backend.py)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local.backend import _OneDynamoDbRequestAtATime


def _overlap(target: str) -> int:
    """Most requests inside a slow app at once, of 8 concurrent ones with this X-Amz-Target."""
    inside = 0
    most = 0
    lock = threading.Lock()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.02)
        with lock:
            inside -= 1
        start_response("200 OK", [])
        return [b"{}"]

    wrapped = _OneDynamoDbRequestAtATime(app)
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: wrapped({"HTTP_X_AMZ_TARGET": target}, lambda *a: None), range(8)))
    assert bodies == [[b"{}"]] * 8
    return most


def test_dynamodb_requests_never_overlap_and_other_services_do() -> None:
    # Given 8 concurrent requests to a slow backend, When they are DynamoDB's, or SQS's
    # Then DynamoDB's run one at a time (each write atomic, as in DynamoDB); SQS's together
    assert _overlap("DynamoDB_20120810.UpdateItem") == 1
    assert _overlap("AmazonSQS.ReceiveMessage") > 1
