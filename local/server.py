"""The whole service on one machine, no Docker, no AWS account: ``python -m local.server``.

Reads template.yaml, creates its tables, bucket and queues on an embedded moto server
(loopback only; or on ``AWS_ENDPOINT_URL`` when set), serves every Api route over HTTP by
turning each request into an API Gateway proxy event for the handler the template names, and
plays Lambda's SQS event source mapping for SQS-triggered functions.

Environment: ``HOST`` (127.0.0.1), ``PORT`` (8001; 0 picks a free port), ``API_KEY`` (when set,
routes that require a key answer 403 without a matching ``x-api-key``), ``AWS_ENDPOINT_URL``,
``LOCAL_SQS_VISIBILITY_TIMEOUT`` (seconds a failed message stays invisible before its retry;
2 by default, so retries and the DLQ happen within seconds), ``LOCAL_STACK_PREFIX``
(resource name prefix, ``designer-ml-local``), ``LOCAL_STATE_FILE`` (tables and bucket are
restored from this file at start and written to it on a clean stop; unset: nothing is kept;
``make run`` sets ``.local/state.json``; see local/state.py).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

from local import cloud
from local.cloud import ApiRoute, Physical, SqsSource
from local.events import allowed_methods, build_api_event, sqs_event
from local.runtime import LambdaFunction

__all__ = ["GatewayResponses", "LocalService", "SqsPoller", "error_body", "main"]

logger = logging.getLogger("local.server")

# API Gateway's limits: a 10 MB payload, a 29 s integration timeout.
MAX_BODY_BYTES = 10 * 1024 * 1024
API_TIMEOUT_S = 29.0
DEFAULT_VISIBILITY_TIMEOUT_S = 2
_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_HOP_BY_HOP = {"connection", "content-length", "transfer-encoding", "keep-alive"}
TIMED_OUT = object()
# The edge's own deadlines: an idle keep-alive connection is closed after IDLE_TIMEOUT_S (longer
# than Node's agent keeps a free socket, 5 s by default, so a reused socket is never one the
# server is closing); a request must keep arriving: READ_TIMEOUT_S between two reads,
# BODY_DEADLINE_S from its request line to its last body byte (on loopback a 10 MB body takes
# milliseconds), else a 408.
IDLE_TIMEOUT_S = 60.0
READ_TIMEOUT_S = 2.0
BODY_DEADLINE_S = 5.0
# The error code of an answer the edge itself gives (API.md's codes).
_EDGE_ERROR_CODES = {
    400: "bad_request",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    414: "uri_too_long",
    431: "headers_too_large",
}


def error_body(code: str, message: str, request_id: str) -> dict[str, Any]:
    """API.md's error shape."""
    return {"error": {"code": code, "message": message, "details": [], "request_id": request_id}}


# API Gateway's own answers: response type -> (status, API Gateway's message, the contract's code
# when the template does not customise the response).
_GATEWAY_ERRORS: dict[str, tuple[int, str, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token", "not_found"),
    "INVALID_API_KEY": (403, "Forbidden", "forbidden"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long", "payload_too_large"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out", "timeout"),
}


class GatewayResponses:
    """API Gateway's errors (unknown route, API key, size, timeout) as the template shapes them.

    The Api's ``GatewayResponses`` are rendered (status, ``application/json`` template with
    ``$context.requestId``, ``$context.error.responseType``, ``$context.error.messageString``,
    literal header parameters), so that a client sees locally what API Gateway would send.
    Without one, the answer is API.md's error shape with the contract's status and code.
    """

    def __init__(self, responses: Mapping[str, Any] | None = None) -> None:
        self.responses = dict(responses or {})

    @classmethod
    def from_template(cls, template: Mapping[str, Any], physical: Physical) -> GatewayResponses:
        global_api = (template.get("Globals") or {}).get("Api") or {}
        for resource in template["Resources"].values():
            if isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Api":
                props = cloud.merge_globals(global_api, resource.get("Properties") or {})
                responses = props.get("GatewayResponses")
                if responses:
                    return cls(cloud.resolve(responses, physical, template))
        return cls(global_api.get("GatewayResponses"))

    def render(
        self, response_type: str, request_id: str, message: str | None = None
    ) -> tuple[int, dict[str, list[str]], bytes]:
        default_status, aws_message, contract_code = _GATEWAY_ERRORS[response_type]
        message = message or aws_message
        response = self.responses.get(response_type) or self.responses.get(f"DEFAULT_{str(default_status)[0]}XX")
        headers = {
            "Content-Type": ["application/json"],
            "x-request-id": [request_id],
            "x-amzn-RequestId": [request_id],
            "x-amzn-ErrorType": [f"{response_type.title().replace('_', '')}Exception"],
        }
        if not response:
            if response_type == "MISSING_AUTHENTICATION_TOKEN":
                default_status = 404  # API.md: an unknown route is a 404
            return default_status, headers, json.dumps(error_body(contract_code, message, request_id)).encode()
        status = int(response.get("StatusCode") or default_status)
        for name, value in (response.get("ResponseParameters") or {}).items():
            if name.startswith("gatewayresponse.header.") and str(value).startswith("'"):
                headers[name.removeprefix("gatewayresponse.header.")] = [str(value).strip("'")]
        body_template = (response.get("ResponseTemplates") or {}).get("application/json")
        if body_template is None:
            return status, headers, json.dumps({"message": message}).encode()
        body = (
            str(body_template)
            .replace("$context.error.responseType.toLowerCase()", response_type.lower())
            .replace("$context.error.responseType", response_type)
            .replace("$context.error.messageString", json.dumps(message))
            .replace("$context.error.message", message)
            .replace("$context.requestId", request_id)
            .replace("$context.extendedRequestId", request_id)
        )
        return status, headers, body.encode()


class SqsPoller:
    """Lambda's SQS event source mapping for one function and one queue.

    Receives up to BatchSize messages (long poll ``wait_s``), calls the handler with the SQS
    event, then deletes: everything when the handler returns, nothing when it raises, and with
    ReportBatchItemFailures everything but the ``batchItemFailures``. Messages left undeleted
    reappear after the visibility timeout; the queue's RedrivePolicy (enforced by the SQS
    endpoint, moto included) moves them to the DLQ after maxReceiveCount receives.
    """

    def __init__(
        self,
        function: LambdaFunction,
        source: SqsSource,
        queue_url: str,
        queue_arn: str,
        sqs_client: Any,
        *,
        region: str = cloud.DEFAULT_REGION,
        visibility_timeout_s: int | None = DEFAULT_VISIBILITY_TIMEOUT_S,
        wait_s: int = 1,
    ) -> None:
        self.function = function
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.sqs = sqs_client
        self.region = region
        self.visibility_timeout_s = visibility_timeout_s
        self.wait_s = wait_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"sqs-poller-{self.source.function}-{self.source.event}", daemon=True
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Stop after the current receive (at most ``wait_s``) and invocation."""
        self._stop.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                if self._stop.is_set():
                    break
                logger.exception("SQS poller for %s failed; retrying in 1 s", self.source.function)
                self._stop.wait(1.0)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        wait_s = self.wait_s
        while len(messages) < self.source.batch_size:
            request: dict[str, Any] = {
                "QueueUrl": self.queue_url,
                "MaxNumberOfMessages": min(10, self.source.batch_size - len(messages)),
                "WaitTimeSeconds": wait_s,
                "MessageSystemAttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
            }
            if self.visibility_timeout_s is not None:
                request["VisibilityTimeout"] = self.visibility_timeout_s
            received = self.sqs.receive_message(**request).get("Messages", [])
            messages.extend(received)
            # Keep filling the batch only while the queue hands out full pages.
            if len(received) < 10:
                break
            wait_s = 0
        return messages

    def poll_once(self) -> dict[str, list[str]]:
        """One receive-invoke-delete cycle; returns the message ids ``deleted`` and ``failed``."""
        messages = self._receive()
        if not messages:
            return {"deleted": [], "failed": []}
        event = sqs_event(messages, self.queue_arn, self.region)
        ids = [m["MessageId"] for m in messages]
        try:
            result = self.function.invoke(event)
        except Exception:
            logger.exception(
                "%s raised on a batch of %d message(s); all will be retried", self.source.function, len(messages)
            )
            return {"deleted": [], "failed": ids}
        failed = self._failed_ids(result, set(ids))
        to_delete = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(to_delete), 10):
            chunk = to_delete[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        if failed:
            logger.info(
                "%s: %d of %d message(s) failed and will be retried", self.source.function, len(failed), len(messages)
            )
        return {"deleted": [m["MessageId"] for m in to_delete], "failed": [i for i in ids if i in failed]}

    def _failed_ids(self, result: Any, ids: set[str]) -> set[str]:
        if not self.source.report_batch_item_failures:
            return set()
        if result is None:
            return set()
        failures = result.get("batchItemFailures") if isinstance(result, Mapping) else None
        if failures is None:
            return set()
        failed = {f.get("itemIdentifier") if isinstance(f, Mapping) else None for f in failures}
        if not failed <= ids:
            # Lambda treats an unknown or empty itemIdentifier as a failure of the whole batch.
            logger.warning(
                "%s returned unknown batchItemFailures %s; failing the whole batch", self.source.function, failed - ids
            )
            return set(ids)
        return failed  # type: ignore[return-value]


class _ApiHandler(BaseHTTPRequestHandler):
    server_version = "DesignerBffMlLocal/1.0"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and delayed
    # ACKs add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    service: LocalService  # set on the subclass made per service

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        logger.debug("%s %s", self.address_string(), format % args)

    def handle_one_request(self) -> None:
        """One request off the connection (the base class's, with deadlines and one dispatch).

        The base class answers a method it has no ``do_*`` for with a 501 HTML page and waits
        forever for a slow or truncated request. Here every method reaches :meth:`_handle` (an
        unsupported one is a 405 in the error shape there); an idle keep-alive connection is
        closed after ``IDLE_TIMEOUT_S``; once a request line has arrived, headers and body must
        keep coming (``READ_TIMEOUT_S`` between reads, ``BODY_DEADLINE_S`` in all) or the
        answer is a 408.
        """
        self.connection.settimeout(IDLE_TIMEOUT_S)
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, ConnectionError):
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        self.connection.settimeout(READ_TIMEOUT_S)
        self._deadline = time.monotonic() + BODY_DEADLINE_S
        try:
            if len(self.raw_requestline) > 65536:
                self.requestline, self.request_version, self.command = "", "", ""
                self.send_error(414)
                return
            if not self.parse_request():
                return  # parse_request has answered (send_error)
            self._handle()
            self.wfile.flush()
        except TimeoutError:
            self._timed_out()
        except ConnectionError:
            self.close_connection = True

    def _timed_out(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.send_error(408, "the request did not arrive in time")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's errors (bad request line, headers too long...) in the error shape."""
        # Its own HTML page, or for a line it could not parse no status line at all (HTTP/0.9).
        if not str(getattr(self, "request_version", "")).startswith("HTTP/1."):
            self.request_version = "HTTP/1.1"
        self.close_connection = True
        # 505 (an HTTP/2 request line) is the client's error: the edge never answers 5xx to input.
        status = 400 if code >= 500 else code
        reason = message or self.responses.get(code, ("bad request",))[0]
        request_id = str(uuid.uuid4())
        self._send_error(status, _EDGE_ERROR_CODES.get(status, "bad_request"), str(reason), request_id)

    def _read_body(self) -> bytes | None:
        """The request body; None when it is over the limit (the connection is then closed).

        ValueError for a malformed Content-Length or chunked framing or a body cut short;
        TimeoutError when it does not arrive within the deadlines.
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, size = [], 0
            while True:
                chunk_size = int(self._readline().split(b";")[0].strip() or b"0", 16)
                if chunk_size < 0:
                    raise ValueError("negative chunk size")
                if chunk_size == 0:
                    while self._readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                size += chunk_size
                if size > MAX_BODY_BYTES:
                    self.close_connection = True
                    return None
                chunks.append(self._read_exactly(chunk_size))
                self._readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return None
        return self._read_exactly(length) if length else b""

    def _check_deadline(self) -> None:
        if time.monotonic() > self._deadline:
            raise TimeoutError("body deadline passed")

    def _readline(self) -> bytes:
        self._check_deadline()
        return self.rfile.readline(65537)

    def _read_exactly(self, n: int) -> bytes:
        parts, remaining = [], n
        while remaining:
            self._check_deadline()
            part = self.rfile.read1(min(remaining, 1 << 16))
            if not part:
                self.close_connection = True
                raise ValueError(f"body cut short: {n - remaining} of {n} bytes")
            parts.append(part)
            remaining -= len(part)
        return b"".join(parts)

    def _handle(self) -> None:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        status = 500
        try:
            status = self._serve(request_id)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away before the answer was written: nothing to answer.
            self.close_connection = True
            status = 499
        except Exception:
            logger.exception("local server failed on %s %s", self.command, self.path)
            status = self._send_error(502, "internal_error", "Internal server error", request_id)
        finally:
            logger.info("%s %s %d %.1f ms", self.command, self.path, status, (time.perf_counter() - started) * 1000)

    def _serve(self, request_id: str) -> int:
        service = self.service
        try:
            body = self._read_body()
        except TimeoutError:
            self.close_connection = True
            return self._send_error(408, "request_timeout", "the request body did not arrive in time", request_id)
        except ValueError as error:
            self.close_connection = True
            return self._send_error(400, "bad_request", f"malformed body: {error}", request_id)
        if body is None:
            return self._send_gateway_error("REQUEST_TOO_LARGE", request_id)
        headers = list(self.headers.items())
        api_key = self.headers.get("x-api-key")
        route, event = build_api_event(
            service.routes,
            self.command,
            self.path,
            headers=headers,
            body=body,
            source_ip=self.client_address[0],
            request_id=request_id,
            api_key=api_key,
        )
        if route is None:
            allowed = allowed_methods(service.routes, event["path"])
            if allowed:
                return self._send_error(
                    405,
                    "method_not_allowed",
                    f"{self.command} is not allowed on {event['path']}; allowed: {', '.join(allowed)}",
                    request_id,
                    {"Allow": [", ".join(allowed)]},
                )
            return self._send_gateway_error(
                "MISSING_AUTHENTICATION_TOKEN", request_id, f"no route {self.command} {event['path']}"
            )
        if service.api_key and route.api_key_required:
            if not api_key or not hmac.compare_digest(api_key.encode(), service.api_key.encode()):
                return self._send_gateway_error("INVALID_API_KEY", request_id)
        function = service.functions[route.function]
        outcome = service.invoke_with_deadline(function, event)
        if outcome is TIMED_OUT:
            return self._send_gateway_error("INTEGRATION_TIMEOUT", request_id)
        if isinstance(outcome, BaseException):
            logger.error(
                "%s raised on %s %s:\n%s",
                route.function,
                self.command,
                self.path,
                "".join(traceback.format_exception(outcome)),
            )
            return self._send_error(502, "internal_error", "Internal server error", request_id)
        return self._send_proxy_result(outcome, route, request_id)

    def _send_proxy_result(self, result: Any, route: ApiRoute, request_id: str) -> int:
        body = result.get("body") if isinstance(result, Mapping) else None
        if (
            not isinstance(result, Mapping)
            or not isinstance(result.get("statusCode"), int)
            or not isinstance(body, str | None)
        ):
            # API Gateway's "Malformed Lambda proxy response".
            logger.error("%s returned a malformed proxy response: %.300r", route.function, result)
            return self._send_error(502, "internal_error", "Internal server error", request_id)
        payload = (base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()) if body else b""
        # API Gateway merges headers and multiValueHeaders; a key in both takes the multi values.
        merged: dict[str, list[str]] = {
            k: [str(v) for v in vs] for k, vs in (result.get("multiValueHeaders") or {}).items()
        }
        lower = {k.lower() for k in merged}
        for key, value in (result.get("headers") or {}).items():
            if key.lower() not in lower:
                merged[key] = [str(value)]
        return self._send(int(result["statusCode"]), merged, payload)

    def _send_gateway_error(self, response_type: str, request_id: str, message: str | None = None) -> int:
        status, headers, payload = self.service.gateway_responses.render(response_type, request_id, message)
        return self._send(status, headers, payload)

    def _send_error(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str,
        extra_headers: Mapping[str, list[str]] | None = None,
    ) -> int:
        payload = json.dumps(error_body(code, message, request_id)).encode()
        headers = {"Content-Type": ["application/json"], "x-request-id": [request_id], **(extra_headers or {})}
        return self._send(status, headers, payload)

    def _send(self, status: int, headers: Mapping[str, Iterable[str]], payload: bytes) -> int:
        self.send_response(status)
        for key, values in headers.items():
            if key.lower() in _HOP_BY_HOP:
                continue
            for value in values:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        return status


class LocalService:
    """The local server, usable in-process: ``with LocalService(port=0) as service: service.url``.

    ``endpoint``: an AWS endpoint to use instead of starting moto (``AWS_ENDPOINT_URL`` by
    default). ``api_key``: enforce API keys on the routes that require one (``API_KEY``).
    ``visibility_timeout_s``: the visibility timeout the pollers receive with, None for the
    queue's own. ``pollers``: run the SQS event source mappings.
    """

    def __init__(
        self,
        template_path: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 8001,
        endpoint: str | None = None,
        api_key: str | None = None,
        prefix: str = cloud.DEFAULT_PREFIX,
        visibility_timeout_s: int | None = DEFAULT_VISIBILITY_TIMEOUT_S,
        pollers: bool = True,
        api_timeout_s: float = API_TIMEOUT_S,
        state_file: str | Path | None = None,
    ) -> None:
        self.template_path = template_path
        self.host = host
        self.port = port
        self.api_key = api_key or None
        self.prefix = prefix
        self.visibility_timeout_s = visibility_timeout_s
        self.run_pollers = pollers
        self.api_timeout_s = api_timeout_s
        self.state_file = Path(state_file) if state_file else None
        self._state_ready = False
        self._requested_endpoint = endpoint if endpoint is not None else os.environ.get("AWS_ENDPOINT_URL") or None
        self.endpoint: str | None = None
        self.embedded_moto = False
        self.physical: Physical = Physical()
        self.functions: dict[str, LambdaFunction] = {}
        self.routes: list[ApiRoute] = []
        self.gateway_responses = GatewayResponses()
        self.pollers: list[SqsPoller] = []
        self._moto: Any = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def url(self) -> str:
        if self._http is None:
            raise RuntimeError("the service is not started")
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def backend(self) -> str:
        return f"embedded moto at {self.endpoint}" if self.embedded_moto else f"AWS_ENDPOINT_URL {self.endpoint}"

    def _set_env(self, name: str, value: str, *, only_if_unset: bool = False) -> None:
        if only_if_unset and os.environ.get(name):
            return
        if name not in self._saved_env:
            self._saved_env[name] = os.environ.get(name)
        os.environ[name] = value

    def start(self) -> LocalService:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        template = cloud.load_template(self.template_path)
        for name, value in _DUMMY_CREDENTIALS.items():
            self._set_env(name, value, only_if_unset=True)
        self._set_env("AWS_DEFAULT_REGION", cloud.DEFAULT_REGION, only_if_unset=True)
        region = os.environ["AWS_DEFAULT_REGION"]
        self._set_env("AWS_REGION", region, only_if_unset=True)
        if self._requested_endpoint:
            self.endpoint = self._requested_endpoint
        else:
            from local.backend import start_moto

            self._moto, self.endpoint = start_moto()
            self.embedded_moto = True
        # Handlers' boto3 clients find the backend through the environment, as the tests do.
        self._set_env("AWS_ENDPOINT_URL", self.endpoint)
        self._set_env("POWERTOOLS_TRACE_DISABLED", "true", only_if_unset=True)

        self.physical = cloud.create_resources(template, self.endpoint, prefix=self.prefix)
        if self.state_file is not None:
            from local import state

            restored = state.load(self.state_file, self._aws_client, self.physical)
            logger.info("local data: %s from %s", restored or "nothing yet", self.state_file)
            self._state_ready = True
        specs = cloud.functions(template, self.physical)
        environment: dict[str, str] = {}
        for spec in specs:
            for name, value in spec.environment.items():
                if environment.get(name, value) != value:
                    logger.warning(
                        "%s=%r (%s) differs from another function's %r; one process holds one value",
                        name,
                        value,
                        spec.logical_id,
                        environment[name],
                    )
                environment[name] = value
        for name, value in environment.items():
            self._set_env(name, value)
        self.functions = {
            spec.logical_id: LambdaFunction(
                spec,
                region=self.physical.region,
                account_id=self.physical.account_id,
                function_name=cloud.physical_name(self.prefix, spec.logical_id),
            )
            for spec in specs
        }
        self.routes = [route for spec in specs for route in spec.api_routes]
        self.gateway_responses = GatewayResponses.from_template(template, self.physical)

        handler_class = type("ApiHandler", (_ApiHandler,), {"service": self})
        self._http = ThreadingHTTPServer((self.host, self.port), handler_class)
        self._http.daemon_threads = True
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.1}, name="local-api", daemon=True
        )
        self._http_thread.start()

        if self.run_pollers:
            for spec in specs:
                for source in spec.sqs_sources:
                    if not source.enabled:
                        continue
                    queue = self.physical[source.queue]
                    sqs = boto3.client("sqs", region_name=self.physical.region, endpoint_url=self.endpoint)
                    poller = SqsPoller(
                        self.functions[spec.logical_id],
                        source,
                        queue.url or "",
                        queue.arn,
                        sqs,
                        region=self.physical.region,
                        visibility_timeout_s=self.visibility_timeout_s,
                    )
                    poller.start()
                    self.pollers.append(poller)

    def invoke_with_deadline(self, function: LambdaFunction, event: dict[str, Any]) -> Any:
        """The handler's result, or the exception it raised, or ``TIMED_OUT`` past the limit.

        The limit is the function's Timeout, at most API Gateway's 29 s. A handler past it keeps
        running in its thread (a thread cannot be killed); its answer is dropped.
        """
        timeout_s = min(self.api_timeout_s, float(function.spec.timeout_s))
        outcome: list[Any] = []

        def call() -> None:
            try:
                outcome.append(function.invoke(event))
            except BaseException as error:  # noqa: BLE001 - handed to the HTTP thread
                outcome.append(error)

        worker = threading.Thread(target=call, name=f"invoke-{function.spec.logical_id}", daemon=True)
        worker.start()
        # The first call also imports the handler (a cold start): allow for it, as Lambda's
        # init phase has its own 10 s on top of the function timeout.
        worker.join(timeout_s + (0.0 if function.loaded else 10.0))
        if worker.is_alive():
            logger.error("%s did not answer within %.0f s", function.spec.logical_id, timeout_s)
            return TIMED_OUT
        return outcome[0]

    def _aws_client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.physical.region, endpoint_url=self.endpoint)

    def save_state(self) -> None:
        """Write the tables and the bucket to ``state_file`` (no-op without one)."""
        if self.state_file is None or not self._state_ready:
            return
        from local import state

        state.save(self.state_file, self._aws_client, self.physical)
        logger.info("local data saved to %s", self.state_file)

    def stop(self) -> None:
        for poller in self.pollers:
            poller.request_stop()
        for poller in self.pollers:
            poller.stop()
        self.pollers = []
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        try:
            self.save_state()
        except Exception:
            logger.exception("local data not saved to %s", self.state_file)
        self._state_ready = False
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8001")))
    parser.add_argument("--template", default=os.environ.get("LOCAL_TEMPLATE"), help="template.yaml by default")
    parser.add_argument("--prefix", default=os.environ.get("LOCAL_STACK_PREFIX", cloud.DEFAULT_PREFIX))
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=int(os.environ.get("LOCAL_SQS_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT_S)),
        help="seconds before a failed SQS message is retried (a negative value keeps the queue's own)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("local").setLevel(os.environ.get("LOCAL_LOG_LEVEL", "INFO").upper())
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    service = LocalService(
        args.template,
        host=args.host,
        port=args.port,
        api_key=os.environ.get("API_KEY"),
        prefix=args.prefix,
        visibility_timeout_s=args.visibility_timeout if args.visibility_timeout >= 0 else None,
        state_file=os.environ.get("LOCAL_STATE_FILE") or None,
    )
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        service.start()
    except OSError as error:
        logger.error("cannot start: %s", error)
        return 1
    print(f"Designer BFF ML listening on {service.url} (backend: {service.backend})", flush=True)
    if service.api_key:
        logger.info("API key required (x-api-key) on every route whose template event requires one")
    stopping.wait()  # the signal handler runs in this thread and ends the wait
    logger.info("stopping")
    service.stop()
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
