"""The HTTP edge: one error shape, statuses of API.md, request ids, limits."""

import json

import pytest

from designer_ml import limits
from designer_ml.api import create_app, lambda_entry
from designer_ml.errors import NotFound
from designer_ml.schemas import CreateProfileRequest, SelectRequest, ValidateRequest

app = create_app()


@app.post("/profile")
def _profile(body: CreateProfileRequest) -> dict:
    if body.user_id == "ghost":
        raise NotFound("user 'ghost' has no profile")
    if body.user_id == "bug":
        raise RuntimeError("secret internal detail")
    return {"n": len(body.vlt_records)}


@app.post("/select")
def _select(body: SelectRequest) -> dict:
    return {"n": body.target_count}


@app.post("/validate")
def _validate(body: ValidateRequest) -> dict:
    return {"n": len(body.images)}


handler = lambda_entry(app)


class Context:
    function_name = "test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "req-1"


def call(path, body, headers=None):
    event = {
        "httpMethod": "POST",
        "path": path,
        "resource": path,
        "headers": headers or {},
        "body": body if isinstance(body, str) else json.dumps(body),
        "requestContext": {"requestId": "gw-123", "httpMethod": "POST", "resourcePath": path},
    }
    result = handler(event, Context())
    return result["statusCode"], json.loads(result["body"]), result["headers"]


def record(i, **extra):
    return {"id": str(i), "garment_type": "dress", **extra}


def assert_error_shape(body, code):
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["request_id"]
    assert "Traceback" not in body["error"]["message"]


def test_valid_request_passes_with_request_id_header():
    status, body, headers = call("/profile", {"user_id": "u1", "vlt_records": [record(1)]})
    assert status == 200 and body == {"n": 1}
    assert headers["x-request-id"] == "gw-123"


def test_callers_request_id_is_echoed():
    _, _, headers = call("/profile", {"user_id": "u1", "vlt_records": [record(1)]}, {"X-Request-Id": "abc-1"})
    assert headers["x-request-id"] == "abc-1"


@pytest.mark.parametrize("raw", ["{not json", '{"user_id": NaN, "vlt_records": []}', '{"a": Infinity}'])
def test_non_json_and_nan_are_400(raw):
    status, body, _ = call("/profile", raw)
    assert status == 400
    assert_error_shape(body, "bad_request")


def test_schema_errors_are_422_naming_the_field():
    # Given a record whose group has the wrong type
    status, body, _ = call("/profile", {"user_id": "u1", "vlt_records": [record(1), {"id": "2", "colors": "red"}]})
    # Then the 422 names the field
    assert status == 422
    assert_error_shape(body, "validation_error")
    assert body["error"]["message"].startswith("vlt_records[1].colors")


@pytest.mark.parametrize("user_id", ["../etc", "a" * 129, "", "a b"])
def test_bad_user_ids_are_422(user_id):
    status, body, _ = call("/profile", {"user_id": user_id, "vlt_records": [record(1)]})
    assert status == 422 and "user_id" in body["error"]["message"]


def test_duplicate_ids_are_422():
    status, body, _ = call("/profile", {"user_id": "u1", "vlt_records": [record(1), record(1)]})
    assert status == 422 and "duplicate id" in body["error"]["message"]


def test_too_many_records_is_413_naming_the_limit():
    records = [record(i) for i in range(limits.MAX_RECORDS + 1)]
    status, body, _ = call("/profile", {"user_id": "u1", "vlt_records": records})
    assert status == 413
    assert_error_shape(body, "payload_too_large")
    assert "vlt_records" in body["error"]["message"] and str(limits.MAX_RECORDS) in body["error"]["message"]


def test_oversize_body_is_413():
    status, body, headers = call("/profile", "x" * (limits.MAX_BODY_BYTES + 1))
    assert status == 413 and "bytes" in body["error"]["message"]
    assert headers["x-request-id"]


def test_target_count_zero_and_unknown_enum_are_422():
    images = [{"id": "a", "vlt": record(1)}]
    status, body, _ = call("/select", {"images": images, "target_count": 0})
    assert status == 422 and "target_count" in body["error"]["message"]
    status, body, _ = call("/select", {"images": images, "target_count": 1, "method": "magic"})
    assert status == 422 and "method" in body["error"]["message"]


def test_image_without_vlt_is_422_naming_the_image():
    status, body, _ = call("/validate", {"images": [{"id": "img-7"}], "target_vlt": record(1)})
    assert status == 422 and "img-7" in body["error"]["message"]


def test_domain_errors_map_to_their_status():
    status, body, _ = call("/profile", {"user_id": "ghost", "vlt_records": [record(1)]})
    assert status == 404
    assert_error_shape(body, "not_found")


def test_a_bug_is_500_without_details():
    status, body, _ = call("/profile", {"user_id": "bug", "vlt_records": [record(1)]})
    assert status == 500
    assert_error_shape(body, "internal_error")
    assert "secret" not in json.dumps(body)


def test_unknown_route_is_404_in_the_error_shape():
    status, body, headers = call("/nowhere", {})
    assert status == 404
    assert_error_shape(body, "not_found")
    assert headers["x-request-id"]
