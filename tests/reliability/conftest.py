"""Fixtures of the reliability tests: the local server in process, calls through the handlers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reliability_helpers import API_KEY

from designer_ml.storage import reset_for_tests
from local.server import LocalService


@pytest.fixture
def fresh_storage() -> Iterator[None]:
    """Handlers read settings and build clients once per process: start and end with none cached."""
    reset_for_tests()
    yield
    reset_for_tests()


@pytest.fixture
def call(aws_env: Any, api_event: Any, invoke: Any, fresh_storage: None) -> Callable[..., tuple[int, Any]]:
    """``call(function_logical_id, method, path, body=None, raw=None, content_type=...) -> (status, answer)``.

    ``raw`` is sent as the body text as is (not JSON-encoded), with ``content_type``; the answer
    is the decoded JSON.
    """

    def send(
        function: str,
        method: str,
        path: str,
        body: Any = None,
        raw: str | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        if raw is not None:
            event = api_event(method, path, raw, headers={"Content-Type": content_type})
        else:
            event = api_event(method, path, body)
        result = invoke(function, event)
        return result["statusCode"], json.loads(result["body"]) if result.get("body") else None

    return send


@pytest.fixture
def local_service(aws_env: Any, fresh_storage: None) -> Iterator[LocalService]:
    """``python -m local.server`` in process, on this worker's moto and the tests' resource names,
    with an API key and the SQS pollers (failed messages come back after 1 s)."""
    service = LocalService(
        port=0, endpoint=aws_env.endpoint, api_key=API_KEY, prefix=aws_env.physical.stack_name, visibility_timeout_s=1
    )
    with service:
        yield service


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    # A thousand generated requests each log an access line and moto a werkzeug line.
    names = ("local", "local.server", "werkzeug")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
