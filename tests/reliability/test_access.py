"""Access checks tests/infra and tests/local do not make already.

tests/infra/test_template.py covers the API key on every route but /health, least privilege per
role, the bucket (private, encrypted, TLS-only), the tables (encrypted, point-in-time recovery),
throttling, the alarms and cfn-lint; tests/local/test_server.py covers the local server's API
key. Here: the queues (encrypted, TLS-only) and the OpenAPI document telling clients which
operations need the key.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from reliability_helpers import served_routes

from local import cloud
from local.openapi import DOCUMENT

QUEUES = ["RetrainQueue", "RetrainDLQ"]


def _template() -> dict[str, Any]:
    return cloud.load_template()


@pytest.mark.parametrize("logical_id", QUEUES)
def test_queue_is_encrypted_and_refuses_requests_without_tls(logical_id: str) -> None:
    # Given a queue of the template
    resources = _template()["Resources"]
    queue = resources[logical_id]["Properties"]
    # When its encryption and the queue policies are read
    denies = [
        statement
        for resource in resources.values()
        if resource.get("Type") == "AWS::SQS::QueuePolicy" and {"Ref": logical_id} in resource["Properties"]["Queues"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement["Principal"] == "*"
        and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        and {"Fn::GetAtt": [logical_id, "Arn"]} in statement["Resource"]
    ]
    # Then it is encrypted at rest and a policy denies every action over plain HTTP
    assert queue.get("SqsManagedSseEnabled") is True or queue.get("KmsMasterKeyId")
    assert denies and all(d["Action"] in ("sqs:*", ["sqs:*"]) for d in denies)


def test_the_openapi_document_says_which_operations_need_the_key() -> None:
    # Given the committed OpenAPI document and the template's routes
    document = json.loads(DOCUMENT.read_text())
    keyed = {
        (route.method.lower(), route.path): route.api_key_required
        for spec in cloud.functions(_template())
        for route in spec.api_routes
    }
    served = {(method.lower(), path) for method, path in served_routes()}
    # When each documented operation's security is read
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if (method, path) not in served:
                continue
            # Then it asks for x-api-key exactly where API Gateway does, and documents the 403
            needs_key = keyed[(method, path)]
            assert operation["security"] == ([{"api_key": []}] if needs_key else []), (method, path)
            assert ("403" in operation["responses"]) is needs_key, (method, path)
    assert document["components"]["securitySchemes"]["api_key"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
