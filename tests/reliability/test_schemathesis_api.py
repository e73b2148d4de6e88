"""Property-based API testing: schemathesis against the local server's own OpenAPI document.

Every operation of ``GET /api/ml/openapi.json`` gets schema-valid (positive) and schema-breaking
(negative) requests over HTTP, at least 1,000 in all: no 5xx, every status documented, every
body (errors included) matching its documented schema, schema-breaking data refused with a 4xx,
keyed routes refusing requests without the key, and an ``x-request-id`` on every answer.
Deterministic: hypothesis is derandomized, with no example database.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from reliability_helpers import API_KEY, served_routes
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

# The bar is 1,000; aim well over it (about a minute on 2 cores): hypothesis may stop early on a
# small input space, and more requests find rarer bugs.
TARGET_REQUESTS = 2_000
MIN_REQUESTS = 1_000
# Operations whose only input space is tiny still get this many tries per mode.
MIN_EXAMPLES = 20


def _has_request_id(ctx: Any, response: Any, case: Any) -> bool | None:
    # API.md: every response carries the request id.
    if not response.headers.get("x-request-id"):
        raise AssertionError(f"{case.method} {case.path}: no x-request-id header (status {response.status_code})")
    return None


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.ignored_auth,
    _has_request_id,
]


# API.md: a list over a documented limit (maxItems) is a 413 naming the limit, not a 422.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            }
        }
    }
)


def _takes_input(operation: Any) -> bool:
    return bool(list(operation.iter_parameters())) or bool(operation.body)


def _runner(operation: Any, mode: GenerationMode, examples: int, base_url: str, session: Any) -> tuple[Any, list[int]]:
    """A hypothesis test sending ``examples`` generated requests of one operation; and its counter."""
    made = [0]

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        made[0] += 1
        case.call_and_validate(base_url=base_url, session=session, headers={"x-api-key": API_KEY}, checks=CHECKS)

    return run, made


@pytest.fixture
def document(local_service: Any) -> dict[str, Any]:
    response = requests.get(f"{local_service.url}/api/ml/openapi.json", headers={"x-api-key": API_KEY}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def test_every_served_route_is_in_the_openapi_document(document: dict[str, Any]) -> None:
    # Given the routes of template.yaml whose handler exists
    expected = {(method.lower(), path) for method, path in served_routes()}
    # When the served document's operations are listed
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    # Then every one is documented (and so fuzzed below), with a success answer and the error shape
    assert expected <= documented, f"not in the OpenAPI document (run `make openapi`): {expected - documented}"
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            assert any(code.startswith("2") for code in codes), f"{method.upper()} {path} documents no 2xx answer"
            assert {"400", "404", "413", "422"} <= codes, f"{method.upper()} {path}: {sorted(codes)}"


def test_generated_requests_get_documented_answers_and_never_a_5xx(
    local_service: Any, document: dict[str, Any], quiet_logs: None
) -> None:
    # Given the local server's OpenAPI document, every operation in it, both generation modes
    schema = schemathesis.openapi.from_dict(document, config=CONFIG)
    operations = [result.ok() for result in schema.get_all_operations()]
    with_input = [op for op in operations if _takes_input(op)]
    per_run = max(MIN_EXAMPLES, math.ceil(TARGET_REQUESTS / max(1, 2 * len(with_input))))
    session = requests.Session()
    counts: dict[str, int] = {}
    failures: dict[str, str] = {}
    started = time.monotonic()

    # When each operation gets its share of generated requests over HTTP
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.label} [{mode.value}]"
            if mode is GenerationMode.NEGATIVE and not _takes_input(operation):
                continue
            run, made = _runner(operation, mode, per_run if _takes_input(operation) else 1, local_service.url, session)
            try:
                run()
            except Unsatisfiable:
                pass
            except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - all operations are reported at once
                failures[label] = str(failure)[:3000]
            counts[label] = made[0]

    # Then nothing failed, every operation was exercised, and the total reaches the bar
    total = sum(counts.values())
    print(
        f"schemathesis: {total} requests over {len(operations)} operations in "
        f"{time.monotonic() - started:.1f} s; per run: {counts}"
    )
    assert not failures, "\n\n".join(f"== {label}\n{text}" for label, text in failures.items())
    assert {op.label for op in operations} == {label.rsplit(" [", 1)[0] for label in counts}
    assert total >= MIN_REQUESTS, counts


# The schemathesis CLI's checks for the phases below: no 5xx, answers as documented, and
# schema-breaking requests refused (the coverage phase's integer ids, accepted while the document
# said string only, were found by this one). Its "schema-valid data accepted" does not hold for
# this API: a schema-valid record may still have no usable attributes, a documented 422.
CLI_CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
    "response_headers_conformance,unsupported_method,ignored_auth,negative_data_rejection"
)
# API.md: a list over a documented limit (maxItems) is a 413 naming the limit, not a 422.
CLI_CONFIG = """
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
"""
# The fuzzing phase's share per operation: the test above already fuzzes with about 2,000.
CLI_FUZZ_EXAMPLES = 25


def test_every_phase_of_the_cli_gets_no_5xx_and_documented_answers(
    local_service: Any, quiet_logs: None, tmp_path: Path
) -> None:
    # Given schemathesis's own runner with every phase but the stateful one: the documented
    # examples, the coverage phase (boundary values, every unsupported method of every path,
    # undeclared media types, missing headers) and its own fuzzing, deterministic by its seed
    st = Path(sys.executable).with_name("st")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CLI_CONFIG)
    command = [
        str(st),
        "--config-file",
        str(config),
        "run",
        f"{local_service.url}/api/ml/openapi.json",
        "-H",
        f"x-api-key: {API_KEY}",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(CLI_FUZZ_EXAMPLES),
        "--checks",
        CLI_CHECKS,
        "--seed",
        "1",
        # A profile of a few hundred generated records takes seconds on a loaded CI machine.
        "--request-timeout",
        "60",
    ]

    # When it runs over every operation
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"}
    )

    # Then it finds nothing, over at least 1,000 requests
    assert result.returncode == 0, result.stdout[-6000:]
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated and int(generated.group(1)) >= MIN_REQUESTS, result.stdout[-2000:]
    assert re.search(r"Tested: (\d+)", result.stdout).group(1) == re.search(r"Selected: (\d+)/", result.stdout).group(1)
