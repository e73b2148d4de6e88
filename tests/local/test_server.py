"""The local server: end to end over HTTP (``python -m local.server``), and in process.

The end-to-end tests run the real template and handlers; the in-process ones run
fake_template.yaml (an echo handler) to pin down what the server itself does.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from local.cloud import REPO_ROOT
from local.server import MAX_BODY_BYTES, GatewayResponses, LocalService

FAKE_TEMPLATE = Path(__file__).resolve().parent / "fake_template.yaml"
API_KEY = "local-test-key"
READY = re.compile(r"Designer BFF ML listening on (http://\S+) \(backend: embedded moto at http://127\.0\.0\.1:\d+\)")


def assert_error_shape(response: requests.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"]
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"code", "message", "details", "request_id"}
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


class ServerProcess:
    def __init__(self, process: subprocess.Popen, url: str, started: float, first_answer_s: float, stderr: Path):
        self.process, self.url, self.started, self.first_answer_s, self.stderr = (
            process,
            url,
            started,
            first_answer_s,
            stderr,
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Given `python -m local.server` on a free port (PORT=0), with an API key, no AWS endpoint set
    stderr_path = tmp_path_factory.mktemp("server") / "stderr.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PORT="0", HOST="127.0.0.1", API_KEY=API_KEY, PYTHONUNBUFFERED="1")
    started = time.monotonic()
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.server"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    lines: list[str] = []
    found = threading.Event()

    def drain() -> None:  # the handlers log to stdout: keep the pipe from filling up
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if READY.search(line):
                found.set()

    threading.Thread(target=drain, daemon=True).start()
    url = None
    deadline = started + 30
    while time.monotonic() < deadline and process.poll() is None:
        if found.wait(0.05):
            url = READY.search("".join(lines)).group(1)  # type: ignore[union-attr]
            try:
                if requests.get(f"{url}/health", timeout=10).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
    else:
        process.kill()
        pytest.fail(f"server not ready in 30 s:\n{''.join(lines)}\n{stderr_path.read_text()}")
    first_answer_s = time.monotonic() - started
    print(f"local.server: first answered request {first_answer_s:.2f} s after start")
    yield ServerProcess(process, url, started, first_answer_s, stderr_path)
    # Ctrl-C stops it cleanly
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0, stderr_path.read_text()


def test_health_answers_without_a_key(server):
    # When /health is called without an API key
    response = requests.get(f"{server.url}/health", timeout=10)
    # Then it is alive, with a request id
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["x-request-id"]
    assert server.first_answer_s < 30


def test_openapi_document_is_served(server):
    # When the OpenAPI document is asked for with the key
    response = requests.get(f"{server.url}/api/ml/openapi.json", headers={"x-api-key": API_KEY}, timeout=10)
    # Then it lists the paths
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert isinstance(paths, dict) and "/api/ml/openapi.json" in paths


def test_unknown_route_is_a_404_in_the_error_shape(server):
    # When a route nobody serves is called
    response = requests.get(f"{server.url}/api/ml/nothing-here", timeout=10)
    # Then it is API.md's 404
    assert_error_shape(response, 404, "not_found")


def test_routes_that_need_a_key_refuse_requests_without_it(server):
    # When a keyed route is called without a key, and with a wrong one
    missing = requests.get(f"{server.url}/api/ml/openapi.json", timeout=10)
    wrong = requests.get(f"{server.url}/api/ml/openapi.json", headers={"x-api-key": "nope"}, timeout=10)
    # Then both are 403 in the error shape (the code is what the template's gateway responses say)
    assert_error_shape(missing, 403)
    assert_error_shape(wrong, 403)


def test_a_body_that_is_not_json_is_a_400(server):
    # When the profile is created with a body that is not JSON
    response = requests.post(
        f"{server.url}/api/ml/style-profile/create",
        data="{not json",
        headers={"x-api-key": API_KEY, "Content-Type": "application/json"},
        timeout=30,
    )
    # Then it is a 400 in the error shape
    assert_error_shape(response, 400)


def _raw_exchange(
    server_url: str, send: list[tuple[bytes, float]], wait_s: float = 15.0, body: bool = True
) -> tuple[bytes, float]:
    """Send ``(bytes, pause after)`` pieces on one raw connection; (what came back, seconds).

    ``body=False``: the answer has headers only (a HEAD request's).
    """
    host, port = server_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as connection:
        started = time.monotonic()
        for data, pause in send:
            try:
                connection.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server has answered and closed: read what it said
            time.sleep(pause)
        received = b""
        while b"\r\n\r\n" not in received or (body and len(received.split(b"\r\n\r\n", 1)[1]) < _length_of(received)):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        return received, time.monotonic() - started


def _length_of(received: bytes) -> int:
    found = re.search(rb"(?i)content-length: *(\d+)", received.split(b"\r\n\r\n", 1)[0])
    return int(found.group(1)) if found else 0


def _raw_error(received: bytes) -> tuple[int, dict]:
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert re.search(rb"(?i)content-type: application/json", head), head
    return status, json_error(body)


def test_a_body_over_the_functions_limit_is_a_prompt_413_and_the_server_keeps_serving(server):
    # Given a 7 MB profile request (the functions take at most 6 MB, API Gateway 10 MB)
    records = [{"id": str(i), "garment_type": "dress", "description": "x" * 340} for i in range(18_000)]
    body = json.dumps({"user_id": "big-body", "vlt_records": records})
    assert 7_000_000 < len(body) < MAX_BODY_BYTES
    # When it is posted
    started = time.monotonic()
    response = requests.post(
        f"{server.url}/api/ml/style-profile/create",
        data=body,
        headers={"x-api-key": API_KEY, "Content-Type": "application/json"},
        timeout=20,
    )
    # Then it is a 413 in the error shape within a couple of seconds, and /health still answers
    assert_error_shape(response, 413, "payload_too_large")
    assert time.monotonic() - started < 5
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("name", "pieces", "status", "code"),
    [
        # announces 1,000 bytes, sends 12 and waits: a 408 once READ_TIMEOUT_S passes
        (
            "truncated",
            [(b'POST /api/ml/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"images": ', 0)],
            408,
            "request_timeout",
        ),
        # a body that keeps trickling in, 1 byte every 0.4 s: a 408 at BODY_DEADLINE_S
        (
            "slow",
            [(b"POST /api/ml/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 0.4)] + [(b" ", 0.4)] * 20,
            408,
            "request_timeout",
        ),
        # 7 MB announced, nothing sent
        (
            "announced only",
            [(b"POST /api/ml/validate HTTP/1.1\r\nHost: x\r\nContent-Length: 7000000\r\n\r\n", 0)],
            408,
            "request_timeout",
        ),
        # headers never finished
        ("headers cut", [(b"GET /health HTTP/1.1\r\nHost: x\r\n", 0)], 408, "request_timeout"),
        ("not HTTP", [(b"\x16\x03\x01 hello\r\n\r\n", 0)], 400, "bad_request"),
        ("HTTP/2 line", [(b"GET /health HTTP/2.0\r\n\r\n", 0)], 400, "bad_request"),
        (
            "bad chunk",
            [(b"POST /api/ml/validate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0)],
            400,
            "bad_request",
        ),
    ],
)
def test_a_slow_truncated_or_malformed_request_gets_a_prompt_4xx_in_the_error_shape(server, name, pieces, status, code):
    # When the request arrives this way on a raw connection
    received, elapsed = _raw_exchange(server.url, pieces)
    # Then the answer is the error shape (never HTML) within the edge's deadlines
    got_status, error = _raw_error(received)
    assert (got_status, error["code"]) == (status, code), (name, received[:300])
    assert elapsed < 8, (name, elapsed)
    # And the server keeps serving
    assert requests.get(f"{server.url}/health", timeout=5).status_code == 200


def test_every_method_on_every_path_is_a_route_a_405_with_allow_or_a_404(server):
    # Given every documented path (a path parameter filled in) and methods it does not serve
    document = requests.get(f"{server.url}/api/ml/openapi.json", headers={"x-api-key": API_KEY}, timeout=10).json()
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "CONNECT", "PROPFIND"]
    checked = 0
    for template_path, operations in document["paths"].items():
        path = re.sub(r"\{[^}]+\}", "someone", template_path)
        served = {m.upper() for m in operations}
        for method in sorted(set(methods) - served):
            # When the path is called with that method
            received, _ = _raw_exchange(
                server.url,
                [(f"{method} {path} HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\n\r\n".encode(), 0)],
                body=method != "HEAD",
            )
            # Then it is a 405 in the error shape, naming what the path allows
            head = received.split(b"\r\n\r\n", 1)[0].decode()
            status = int(head.split(" ", 2)[1])
            assert status == 405, (method, path, head)
            allow = re.search(r"(?im)^allow: *(.+?)\r?$", head)
            assert allow and set(allow.group(1).split(", ")) == served, (method, path, head)
            if method != "HEAD":
                assert _raw_error(received)[1]["code"] == "method_not_allowed"
            checked += 1
    # And a path nobody serves is a 404 whatever the method
    received, _ = _raw_exchange(server.url, [(b"TRACE /api/ml/nothing HTTP/1.1\r\nHost: x\r\n\r\n", 0)])
    assert _raw_error(received)[0] == 404
    assert checked >= 50


@pytest.fixture(scope="module")
def fake_service(moto_endpoint: str) -> Iterator[LocalService]:
    # Given the fake service in process, with an API key
    service = LocalService(
        FAKE_TEMPLATE,
        port=0,
        endpoint=moto_endpoint,
        api_key=API_KEY,
        prefix=f"srv-{uuid.uuid4().hex[:8]}",
        pollers=False,
    )
    with service:
        yield service


def test_api_key_is_enforced_only_where_the_template_requires_it(fake_service):
    # When the open route and a keyed route are called with and without the key
    health = requests.get(f"{fake_service.url}/health", timeout=10)
    without = requests.get(f"{fake_service.url}/items/u1", timeout=10)
    wrong = requests.get(f"{fake_service.url}/items/u1", headers={"x-api-key": "wrong"}, timeout=10)
    with_key = requests.get(f"{fake_service.url}/items/u1", headers={"X-Api-Key": API_KEY}, timeout=10)
    # Then only the keyed route without the right key is refused, with API Gateway's 403
    assert health.status_code == 200
    assert_error_shape(without, 403, "forbidden")
    assert_error_shape(wrong, 403, "forbidden")
    assert with_key.status_code == 200


def test_the_handler_gets_a_rest_proxy_event_and_its_response_goes_back(fake_service):
    # When a keyed route with a path parameter, a query string and a header is called
    response = requests.get(
        f"{fake_service.url}/items/u-7?limit=3&tag=a&tag=b",
        headers={"x-api-key": API_KEY, "X-Custom": "yes"},
        timeout=10,
    )
    # Then the handler saw API Gateway's event and a Lambda context
    assert response.status_code == 200
    echoed = response.json()
    event = echoed["event"]
    assert (event["httpMethod"], event["path"], event["resource"]) == ("GET", "/items/u-7", "/items/{item_id}")
    assert event["pathParameters"] == {"item_id": "u-7"}
    assert event["queryStringParameters"] == {"limit": "3", "tag": "b"}
    assert event["multiValueQueryStringParameters"]["tag"] == ["a", "b"]
    assert event["headers"]["X-Custom"] == "yes"
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "local" and context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["resourcePath"] == "/items/{item_id}" and context["httpMethod"] == "GET"
    uuid.UUID(context["requestId"])
    assert echoed["context"]["memory"] == 256
    assert 0 < echoed["context"]["remaining_ms"] <= 10_000
    # and its status, headers and multi-value headers came back
    assert response.headers["x-request-id"] == "echo"
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1", "b=2"]


def test_the_literal_route_wins_and_greedy_paths_reach_their_handler(fake_service):
    # When the literal sibling of a parameter route and a greedy route are called
    special = requests.get(f"{fake_service.url}/items/special", headers={"x-api-key": API_KEY}, timeout=10)
    files = requests.delete(f"{fake_service.url}/files/a/b.txt", headers={"x-api-key": API_KEY}, timeout=10)
    # Then each reaches its own route
    assert special.json()["event"]["resource"] == "/items/special"
    assert files.json()["event"]["pathParameters"] == {"key": "a/b.txt"}


def test_an_unknown_route_is_a_404_and_an_unserved_method_a_405_with_allow(fake_service):
    # When an unknown path, and a known path with another method, are called
    unknown = requests.get(f"{fake_service.url}/nowhere", timeout=10)
    wrong_method = requests.put(f"{fake_service.url}/items", headers={"x-api-key": API_KEY}, timeout=10)
    trace = requests.request("TRACE", f"{fake_service.url}/health", timeout=10)
    # Then the first is a 404, the others 405 naming the methods served, all in the error shape
    error = assert_error_shape(unknown, 404, "not_found")
    assert error["request_id"] == unknown.headers["x-request-id"]
    assert_error_shape(wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["Allow"] == "POST"
    assert_error_shape(trace, 405, "method_not_allowed")
    assert trace.headers["Allow"] == "GET"


def test_a_raising_or_malformed_handler_is_a_502_without_internals(fake_service):
    # When the handler raises, and when it answers without a status code
    boom = requests.post(f"{fake_service.url}/boom", json={}, headers={"x-api-key": API_KEY}, timeout=10)
    malformed = requests.get(f"{fake_service.url}/malformed", headers={"x-api-key": API_KEY}, timeout=10)
    # Then both are a 502 internal_error, and the exception stays in the log
    assert_error_shape(boom, 502, "internal_error")
    assert "secret internal detail" not in boom.text and "Traceback" not in boom.text
    assert_error_shape(malformed, 502, "internal_error")


def test_the_server_builds_the_same_event_as_the_api_event_fixture(fake_service, api_event):
    # Given a request to the real template's route shape, built by the fixture
    built = api_event("POST", "/items?x=1", body={"a": 1}, headers={"x-api-key": API_KEY})
    # When the same request goes through the server
    served = requests.post(f"{fake_service.url}/items?x=1", json={"a": 1}, headers={"x-api-key": API_KEY}, timeout=10)
    event = served.json()["event"]
    # Then both events have the same keys, down to the request context
    assert set(event) == set(built)
    assert set(event["requestContext"]) == set(built["requestContext"])
    assert set(event["requestContext"]["identity"]) == set(built["requestContext"]["identity"])
    assert event["body"] == built["body"] == '{"a": 1}'


def test_a_body_over_api_gateways_limit_is_a_413(fake_service):
    # When a request announces a body over 10 MB
    host, port = fake_service.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", "/items")
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    # Then it is refused before it is read, in the error shape
    assert response.status == 413
    assert json_error(response.read())["code"] == "payload_too_large"
    connection.close()


def test_a_handler_past_its_deadline_is_a_504(moto_endpoint):
    # Given the fake service with a 0.3 s API timeout, its function already warm
    with LocalService(
        FAKE_TEMPLATE, port=0, endpoint=moto_endpoint, prefix="srv-slow", pollers=False, api_timeout_s=0.3
    ) as service:
        assert requests.get(f"{service.url}/health", timeout=10).status_code == 200
        # When the handler takes longer
        response = requests.get(f"{service.url}/slow?s=1", timeout=10)
        # Then API Gateway's integration timeout answers
        assert_error_shape(response, 504, "timeout")


def test_gateway_responses_of_the_template_shape_gateway_errors():
    # Given an Api whose DEFAULT_4XX renders the error shape from $context variables
    responses = GatewayResponses(
        {
            "DEFAULT_4XX": {
                "ResponseParameters": {"gatewayresponse.header.x-extra": "'yes'"},
                "ResponseTemplates": {
                    "application/json": '{"error": {"code": "$context.error.responseType.toLowerCase()", '
                    '"message": $context.error.messageString, "details": [], "request_id": "$context.requestId"}}'
                },
            },
            "MISSING_AUTHENTICATION_TOKEN": {"StatusCode": "404"},
        }
    )
    # When a missing API key and an unknown route are rendered
    status, headers, body = responses.render("INVALID_API_KEY", "rid-1")
    unknown_status, _, unknown_body = responses.render("MISSING_AUTHENTICATION_TOKEN", "rid-2")
    # Then they are what API Gateway would send for this template
    assert status == 403 and headers["x-extra"] == ["yes"] and headers["x-request-id"] == ["rid-1"]
    assert json_error(body) == {"code": "invalid_api_key", "message": "Forbidden", "details": [], "request_id": "rid-1"}
    assert unknown_status == 404 and json.loads(unknown_body) == {"message": "Missing Authentication Token"}


def json_error(payload: bytes) -> dict:
    body = json.loads(payload)
    assert set(body) == {"error"}
    return body["error"]
