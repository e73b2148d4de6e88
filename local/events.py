"""The events Lambda hands to handlers: API Gateway REST proxy events and SQS batches.

One builder per event type, used by the local server and by the tests' fixtures alike, so a
handler sees the same event from ``curl`` against ``make run`` as from a unit test.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.cloud import ApiRoute

__all__ = ["allowed_methods", "api_gateway_event", "build_api_event", "match_route", "sqs_event"]

LOCAL_STAGE = "local"
LOCAL_ACCOUNT_ID = "123456789012"

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def _route_pattern(path: str) -> tuple[re.Pattern[str], list[str]]:
    """A regex for a resource path (``{name}`` one segment, ``{name+}`` the rest) and its names."""
    pattern, names = "", []
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            names.append(name.rstrip("+"))
            pattern += "(.+)" if name.endswith("+") else "([^/]+)"
        else:
            pattern += re.escape(part)
    return re.compile(pattern.rstrip("/") + "/?"), names


def _specificity(route: ApiRoute) -> tuple[int, int, int]:
    # API Gateway prefers literal segments to {param}, {param} to {greedy+}, a method to ANY.
    segments = route.path.strip("/").split("/")
    literal = sum(1 for s in segments if not s.startswith("{"))
    greedy = sum(1 for s in segments if s.endswith("+}"))
    return (-literal, greedy, route.method == "ANY")


def _resource(routes: Iterable[ApiRoute], path: str) -> list[ApiRoute]:
    """The routes of the one resource API Gateway picks for ``path``: the most specific resource
    path that matches (a literal segment beats ``{param}``, ``{param}`` beats ``{greedy+}``),
    whatever the method; empty when no resource matches."""
    matching = [r for r in routes if _route_pattern(r.path)[0].fullmatch(path)]
    if not matching:
        return []
    best = min(_specificity(r)[:2] for r in matching)
    chosen = min(r.path for r in matching if _specificity(r)[:2] == best)
    return [r for r in matching if r.path == chosen]


def match_route(routes: Iterable[ApiRoute], method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
    """The route serving ``method path`` (path without query) and its path parameters.

    As API Gateway: the resource is chosen first, then the method on it (or ANY), so a
    method the chosen resource lacks is no route even where a less specific resource has it.
    """
    method = method.upper()
    for route in sorted(_resource(routes, path), key=_specificity):
        if route.method in (method, "ANY"):
            pattern, names = _route_pattern(route.path)
            found = pattern.fullmatch(path)
            if found:
                return route, dict(zip(names, found.groups(), strict=True))
    return None


def allowed_methods(routes: Iterable[ApiRoute], path: str) -> list[str]:
    """The methods of the resource serving ``path`` (sorted; empty when no resource matches)."""
    return sorted({r.method for r in _resource(routes, path)})


def _header_pairs(headers: Headers | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), str(v)) for k, v in headers.items()]
    return [(str(k), str(v)) for k, v in headers]


def _single_and_multi(pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    # API Gateway REST: the single-value map holds the last value of a repeated key; null when empty.
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


def api_gateway_event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    path_parameters: Mapping[str, str] | None = None,
    query: str | Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    headers: Headers | None = None,
    body: str | bytes | None = None,
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
    stage: str = LOCAL_STAGE,
    api_key: str | None = None,
) -> dict[str, Any]:
    """An API Gateway REST API (v1) Lambda proxy event.

    ``path`` is the request path without query string; ``resource`` the route's resource path
    (``/api/ml/style-profile/{user_id}``), the path itself when omitted.
    """
    if isinstance(query, str):
        query_pairs = parse_qsl(query, keep_blank_values=True)
    elif isinstance(query, Mapping):
        query_pairs = [(str(k), str(v)) for k, v in query.items()]
    else:
        query_pairs = list(query or [])
    header_pairs = _header_pairs(headers)
    single_headers, multi_headers = _single_and_multi(header_pairs)
    single_query, multi_query = _single_and_multi(query_pairs)
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    method = method.upper()
    resource = resource or path
    request_id = request_id or str(uuid.uuid4())
    now = time.time()
    user_agent = next((v for k, v in header_pairs if k.lower() == "user-agent"), None)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{stage}{path}",
            "accountId": LOCAL_ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "sourceIp": source_ip,
                "userAgent": user_agent,
                "apiKey": api_key,
                "apiKeyId": "local" if api_key else None,
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
            },
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": body if body else None,
        "isBase64Encoded": False,
    }


def build_api_event(
    routes: Iterable[ApiRoute],
    method: str,
    raw_path: str,
    *,
    headers: Headers | None = None,
    body: str | bytes | None = None,
    source_ip: str = "127.0.0.1",
    request_id: str | None = None,
    api_key: str | None = None,
) -> tuple[ApiRoute | None, dict[str, Any]]:
    """Match ``raw_path`` (query string included) to a route and build its proxy event.

    With no matching route the event is still built (resource = path, no path parameters).
    """
    parts = urlsplit(raw_path)
    path = unquote(parts.path) or "/"
    matched = match_route(routes, method, path)
    route, path_parameters = matched if matched else (None, {})
    event = api_gateway_event(
        method,
        path,
        resource=route.path if route else None,
        path_parameters=path_parameters,
        query=parts.query,
        headers=headers,
        body=body,
        source_ip=source_ip,
        request_id=request_id,
        api_key=api_key,
    )
    return route, event


def _lambda_message_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    # Lambda spells SQS message attributes in camelCase and base64-encodes binary values.
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        binary = value.get("BinaryValue")
        converted[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary,
            "stringListValues": list(value.get("StringListValues", [])),
            "binaryListValues": [
                base64.b64encode(item).decode() if isinstance(item, bytes) else item
                for item in value.get("BinaryListValues", [])
            ],
            "dataType": value.get("DataType", "String"),
        }
    return converted


def sqs_event(messages: Iterable[Mapping[str, Any]], queue_arn: str, region: str = "us-east-1") -> dict[str, Any]:
    """The event of Lambda's SQS event source mapping for messages from ``ReceiveMessage``."""
    records = []
    for message in messages:
        body = message.get("Body", "")
        attributes = dict(message.get("Attributes") or {})
        attributes.setdefault("ApproximateReceiveCount", "1")
        attributes.setdefault("SentTimestamp", str(int(time.time() * 1000)))
        attributes.setdefault("SenderId", LOCAL_ACCOUNT_ID)
        attributes.setdefault("ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000)))
        records.append(
            {
                "messageId": message.get("MessageId") or str(uuid.uuid4()),
                "receiptHandle": message.get("ReceiptHandle", ""),
                "body": body,
                "attributes": attributes,
                "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes") or {}),
                "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}
