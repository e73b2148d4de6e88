"""The sample events in events/: one API Gateway proxy event per route, bodies that the service accepts.

They are what `sam local invoke <Function> -e events/<name>.json` sends, so each must look like
what API Gateway would deliver for its route and carry a body valid for the route's request model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from infra_contract import REPO, layout_functions

EVENTS = REPO / "events"
ROUTES = sorted({route for row in layout_functions() for route in row.routes})

# Request model of each route with a body (designer_ml.schemas).
REQUEST_MODELS = {
    ("POST", "/api/ml/style-profile/create"): "CreateProfileRequest",
    ("POST", "/api/ml/style-profile/update"): "UpdateProfileRequest",
    ("POST", "/api/ml/prompt/optimize"): "OptimizeRequest",
    ("POST", "/api/ml/validate"): "ValidateRequest",
    ("POST", "/api/ml/select/diverse"): "SelectRequest",
    ("POST", "/api/ml/feedback/submit"): "FeedbackRequest",
    ("POST", "/api/ml/rlhf/train"): "TrainRequest",
}


def _api_events() -> dict[tuple[str, str], list[tuple[Path, dict[str, Any]]]]:
    found: dict[tuple[str, str], list[tuple[Path, dict[str, Any]]]] = {}
    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text(encoding="utf-8"))
        if "httpMethod" in event:
            found.setdefault((event["httpMethod"], event["resource"]), []).append((path, event))
    return found


@pytest.mark.parametrize("route", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_route_has_one_sample_event_shaped_like_api_gateways(route: tuple[str, str]):
    # Given a route of the layout
    method, resource = route

    # When the sample events are searched for it
    matches = _api_events().get(route, [])

    # Then exactly one REST proxy event targets it, with a concrete path, its path parameters,
    # the stage's request context, and an API key unless the route is open
    assert len(matches) == 1, f"{method} {resource}: {[p.name for p, _ in matches]}"
    path, event = matches[0]
    params = event.get("pathParameters") or {}
    expected_path = re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], resource)
    assert event["path"] == expected_path, path.name
    assert event["requestContext"]["resourcePath"] == resource
    assert event["requestContext"]["httpMethod"] == method
    assert event["isBase64Encoded"] is False
    has_key = "x-api-key" in {k.lower() for k in (event.get("headers") or {})}
    assert has_key is (route != ("GET", "/health")), path.name


@pytest.mark.parametrize("route", sorted(REQUEST_MODELS), ids=[f"{m} {p}" for m, p in sorted(REQUEST_MODELS)])
def test_sample_body_is_valid_for_the_routes_request_model(route: tuple[str, str]):
    # Given the sample event of a route with a body, and the route's request model
    schemas = pytest.importorskip("designer_ml.schemas")
    model = getattr(schemas, REQUEST_MODELS[route])
    ((path, event),) = _api_events()[route]

    # When its body is validated
    request = model.model_validate_json(event["body"])

    # Then it is accepted as sent, with a JSON content type
    assert request is not None
    assert event["headers"].get("Content-Type") == "application/json", path.name


def test_retrain_sample_is_an_sqs_batch_of_user_retrain_requests():
    # Given the retrain function's sample event
    event = json.loads((EVENTS / "retrain_sqs.json").read_text(encoding="utf-8"))

    # When its records are read
    records = event["Records"]

    # Then it is an SQS batch whose bodies name the user to retrain
    assert records and all(r["eventSource"] == "aws:sqs" for r in records)
    assert len({r["messageId"] for r in records}) == len(records)
    assert all(json.loads(r["body"]).get("user_id") for r in records)
