"""The HTTP edge shared by every function: resolver, error mapping, request ids, limits.

Every error leaves through :func:`error_response`, so every endpoint answers the one shape of
API.md. Handlers build their resolver with :func:`create_app` and export
``lambda_handler = lambda_entry(app)``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from designer_ml import limits
from designer_ml.errors import DomainError
from designer_ml.observability import logger

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Documented error answers of every operation (OpenAPI `responses`). `make openapi` adds them to
# every operation; a route passing them as `responses=` must also name its 2xx answer, or
# Powertools leaves the success schema out (local/openapi.py puts a 200 back if none is named).
ERROR_RESPONSES: dict[int, dict[str, Any]] = {
    status: {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    for status, text in {
        400: "Body is not JSON",
        404: "Unknown user, model or route",
        409: "A concurrent update could not be retried",
        413: "Body or list over a documented limit",
        415: "Body sent with a Content-Type other than application/json",
        422: "JSON that breaks the schema, or data that cannot carry the request",
        503: "A backend is unavailable; retry",
    }.items()
}


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity, which are not JSON; refuse them as a 400.
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def _loads(body: str | bytes) -> Any:
    return json.loads(body, parse_constant=_reject_constant)


def request_id_of(event: dict[str, Any] | None) -> str:
    """The caller's x-request-id when it is sane, else API Gateway's request id, else a new one."""
    event = event or {}
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    given = headers.get("x-request-id")
    if isinstance(given, str) and _REQUEST_ID.match(given):
        return given
    rid = (event.get("requestContext") or {}).get("requestId")
    return rid if isinstance(rid, str) and rid else str(uuid.uuid4())


def error_body(status: int, code: str, message: str, request_id: str, details: list[Any] | None = None) -> str:
    return json.dumps({"error": {"code": code, "message": message, "details": details or [], "request_id": request_id}})


def error_response(status: int, code: str, message: str, request_id: str, details: list[Any] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=error_body(status, code, message, request_id, details),
    )


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [p for p in loc if p != "body"]
    text = ""
    for p in parts:
        if isinstance(p, int):
            text += f"[{p}]"
        elif p in ("function-after", "function-before") or str(p).startswith(("function-", "json-or-python")):
            continue
        else:
            text += f".{p}" if text else str(p)
    return text or "body"


def _too_long_limit(err: dict[str, Any]) -> int | None:
    ctx = err.get("ctx") or {}
    if err.get("type") == "too_long" and len([p for p in err.get("loc", ()) if p != "body"]) == 1:
        return ctx.get("max_length")
    return None


def _unroutable_parameter(app: APIGatewayRestResolver, method: str, path: str) -> tuple[str, str] | None:
    """(name, value) of the path parameter that kept ``method path`` from its route, else None.

    API Gateway hands ``/users/a\\b/export`` to the function (``{user_id}`` is any one segment);
    Powertools' route regex refuses some characters there and would answer "no route": this
    names the parameter instead, so the client learns which field is wrong.
    """
    for route in app._dynamic_routes:  # Powertools keeps no public list of routes
        if route.method != method.upper():
            continue
        pattern = re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", re.escape(route.path).replace(r"\<", "<").replace(r"\>", ">"))
        found = re.fullmatch(pattern, path)
        if found:
            name, value = next(iter(found.groupdict().items()))
            return name, value
    return None


def create_app() -> APIGatewayRestResolver:
    """A resolver validating bodies against the pydantic models, answering errors in one shape."""
    app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=_loads)

    def _rid() -> str:
        return request_id_of(app.current_event.raw_event)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        invalid = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if invalid is not None:
            # Say what the parser choked on (NaN, Infinity, a stray character) and where.
            reason = str((invalid.get("ctx") or {}).get("error") or "").strip()
            loc = invalid.get("loc") or ()
            # _reject_constant knows the token, not its position.
            positioned = len(loc) > 1 and isinstance(loc[1], int) and not reason.endswith("is not valid JSON")
            where = f" at character {loc[1]}" if positioned else ""
            message = f"body is not valid JSON{where}" + (f": {reason}" if reason else "")
            return error_response(400, "bad_request", message, _rid())
        details = [
            {"field": _loc_to_field(e.get("loc", ())), "message": str(e.get("msg", "")), "type": e.get("type")}
            for e in errors
        ]
        for e in errors:
            limit = _too_long_limit(e)
            if limit is not None:
                field = _loc_to_field(e["loc"])
                return error_response(
                    413, "payload_too_large", f"{field}: more than the limit of {limit} items", _rid(), details
                )
        first = details[0] if details else {"field": "body", "message": "invalid request"}
        message = first["message"]
        # pydantic prefixes messages of our own validators with "Value error, "
        message = message.removeprefix("Value error, ")
        return error_response(422, "validation_error", f"{first['field']}: {message}", _rid(), details)

    @app.exception_handler(DomainError)
    def _domain(exc: DomainError) -> Response:
        if exc.status >= 500:
            logger.warning("domain error", extra={"code": exc.code, "error_message": exc.message})
        return error_response(exc.status, exc.code, exc.message, _rid(), exc.details)

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response:
        method, path = app.current_event.http_method, app.current_event.path
        bad = _unroutable_parameter(app, method, path)
        if bad is not None:
            name, value = bad
            return error_response(422, "validation_error", f"{name}: {value!r} has characters it cannot hold", _rid())
        return error_response(404, "not_found", f"no route {method} {path}", _rid())

    @app.exception_handler(Exception)
    def _bug(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; the request id names it in the logs", _rid())

    return app


def _content_type(event: Mapping[str, Any]) -> str:
    headers = event.get("headers") or {}
    return next((str(v) for k, v in headers.items() if k.lower() == "content-type"), "").strip()


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _refusal(status: HTTPStatus, code: str, message: str, rid: str) -> dict[str, Any]:
    return {
        "statusCode": int(status),
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": error_body(int(status), code, message, rid),
    }


def lambda_entry(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler of a function: size limit, media type, request id on every response,
    then routing.

    Every body is JSON: one sent as another media type is a 415 here, before Powertools, which
    would parse a form or multipart body into something else (and raise on a multipart type
    without a boundary). No Content-Type at all is read as JSON, as Powertools does.
    """

    @logger.inject_lambda_context(clear_state=True)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        rid = request_id_of(event)
        logger.append_keys(request_id=rid)
        body = event.get("body") or ""
        content_type = _content_type(event)
        if len(body) > limits.MAX_BODY_BYTES:
            result = _refusal(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "payload_too_large",
                f"body: larger than the limit of {limits.MAX_BODY_BYTES} bytes",
                rid,
            )
        elif body and content_type and not _is_json(content_type):
            result = _refusal(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                f"body: Content-Type {content_type!r} is not supported; send application/json",
                rid,
            )
        else:
            result = app.resolve(event, context)
        result.setdefault("headers", {})
        result["headers"]["x-request-id"] = rid
        if result.get("multiValueHeaders") is not None:
            result["multiValueHeaders"]["x-request-id"] = [rid]
        return result

    return lambda_handler
