"""Helpers of the reliability tests: what is stored, which routes exist, request bodies.

Tests of a stage skip only while the stage is absent: its route is not in template.yaml, or the
handler file the template names is not written yet. They switch on by themselves when it lands.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import pytest

from local import cloud

API_KEY = "reliability-test-key"


@lru_cache(maxsize=1)
def _specs() -> tuple[cloud.FunctionSpec, ...]:
    return tuple(cloud.functions(cloud.load_template()))


def handler_exists(spec: cloud.FunctionSpec) -> bool:
    return (spec.code_dir / f"{spec.handler_module.replace('.', '/')}.py").is_file()


def route_function(method: str, path: str) -> cloud.FunctionSpec | None:
    """The function of template.yaml serving ``method path`` (a template path, with ``{user_id}``)."""
    for spec in _specs():
        if any(r.method == method and r.path == path for r in spec.api_routes):
            return spec
    return None


def require_route(method: str, path: str) -> str:
    """Skip the test while ``method path`` is not served yet; returns the function's logical id."""
    spec = route_function(method, path)
    if spec is None:
        pytest.skip(f"{method} {path} is not in template.yaml yet")
    if not handler_exists(spec):
        pytest.skip(f"{spec.logical_id}'s handler {spec.code_dir.name}/{spec.handler_module}.py is not written yet")
    return spec.logical_id


def require_function(logical_id: str) -> None:
    """Skip the test while the function (e.g. RetrainFunction) is absent or its handler unwritten."""
    spec = next((s for s in _specs() if s.logical_id == logical_id), None)
    if spec is None:
        pytest.skip(f"{logical_id} is not in template.yaml yet")
    if not handler_exists(spec):
        pytest.skip(f"{logical_id}'s handler {spec.code_dir.name}/{spec.handler_module}.py is not written yet")


def served_routes() -> list[tuple[str, str]]:
    """(method, template path) of every Api route whose handler exists."""
    return [(r.method, r.path) for s in _specs() if handler_exists(s) for r in s.api_routes]


def stored(aws_env: Any) -> dict[str, Any]:
    """Everything in the template's tables, bucket and queues: items, object keys, message counts."""
    dynamodb = aws_env.client("dynamodb")
    s3 = aws_env.client("s3")
    sqs = aws_env.client("sqs")
    found: dict[str, Any] = {}
    for logical_id, resource in aws_env.physical.items():
        if resource.type == cloud.TABLE:
            items = []
            for page in dynamodb.get_paginator("scan").paginate(TableName=resource.name):
                items.extend(page.get("Items", []))
            found[logical_id] = items
        elif resource.type == cloud.BUCKET:
            keys = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=resource.name):
                keys.extend(o["Key"] for o in page.get("Contents", []))
            found[logical_id] = keys
        elif resource.type == cloud.QUEUE:
            attributes = sqs.get_queue_attributes(
                QueueUrl=resource.url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            found[logical_id] = sum(int(v) for v in attributes.values())
    return found


def nothing_stored(aws_env: Any) -> dict[str, Any]:
    """The non-empty parts of :func:`stored` (an empty dict when nothing is stored anywhere)."""
    return {k: v for k, v in stored(aws_env).items() if v}


def record(i: int, mode: int = 0) -> dict[str, Any]:
    """A VLT portfolio record of one of three plain style modes."""
    modes = [
        ("dress", "a-line", "black", "elegant"),
        ("jacket", "boxy", "camel", "minimal"),
        ("skirt", "pleated", "red", "romantic"),
    ]
    garment, silhouette, color, style = modes[mode % len(modes)]
    return {
        "id": f"r{i}",
        "garment_type": garment,
        "attributes": {"silhouette": silhouette, "length": ["midi", "mini", "maxi"][i % 3]},
        "colors": {"primary": color},
        "style": {"overall": style},
    }


def records(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [record(i, i) for i in range(start, start + n)]


def image(i: int) -> dict[str, Any]:
    return {"id": f"img{i}", "vlt": {**record(i, i), "id": f"img{i}"}, "quality_score": 0.5}


def error_of(result: dict[str, Any]) -> dict[str, Any]:
    """The ``error`` object of a proxy result (fails when the body is not the one error shape)."""
    body = json.loads(result["body"])
    assert set(body) == {"error"}, body
    assert {"code", "message", "details", "request_id"} <= set(body["error"]), body
    return body["error"]
