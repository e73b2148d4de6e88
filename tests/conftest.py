"""Fixtures shared by every test: AWS on moto, Lambda contexts, API Gateway events, handlers.

- ``aws_env``: dummy credentials, us-east-1, ``AWS_ENDPOINT_URL`` pointing at a moto server
  (one per test session, i.e. per xdist worker, on a free loopback port), reset before each
  test and holding template.yaml's tables, bucket and queues (``local.cloud``, so keys and
  queues are defined once, in the template); the functions' environment variables
  (``PROFILES_TABLE``, ``FEEDBACK_TABLE``, ``ARTIFACTS_BUCKET``, ``RETRAIN_QUEUE_URL``, ...) set.
- ``lambda_context``: a Lambda context object.
- ``api_event(method, path, body=None, headers=None)``: the API Gateway proxy event the
  local server (and API Gateway) would build for that request to the template's routes.
- ``invoke(function_logical_id, event)``: imports the handler the template names for that
  function (a fresh cold start per test) and calls it.

Resource names are the same in every test (``designer-ml-test-profiles-table``...): state is
isolated by the reset, not by names, so code that reads its settings once per process still
finds its tables. Do not mix ``moto.mock_aws`` with ``aws_env`` in one test: both use moto's
in-process state.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from local import cloud
from local.events import build_api_event
from local.runtime import LambdaContext, LambdaFunction

TEST_PREFIX = "designer-ml-test"
TEST_REGION = "us-east-1"
_fresh_module_ids = itertools.count()


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """template.yaml, parsed. Override this fixture to run the fixtures on another template."""
    path = cloud.REPO_ROOT / "template.yaml"
    if not path.exists():
        pytest.fail(f"{path} is missing: the fixtures create their resources from it")
    return cloud.load_template(path)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server for this test session (this xdist worker), on a free loopback port."""
    from local.backend import start_moto

    server, endpoint = start_moto()
    yield endpoint
    server.stop()


@dataclass
class AwsEnv:
    """What ``aws_env`` set up: the endpoint, the created resources, the functions' environment."""

    endpoint: str
    region: str
    physical: cloud.Physical
    environment: Mapping[str, str]
    specs: Mapping[str, cloud.FunctionSpec] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint)

    def resource(self, service: str) -> Any:
        return boto3.resource(service, region_name=self.region, endpoint_url=self.endpoint)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str, template: dict[str, Any], tmp_path: Path) -> AwsEnv:
    """No real AWS: moto, reset, with the template's resources and the functions' environment."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL_") or name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            monkeypatch.delenv(name, raising=False)
    # No shared config either: a developer's ~/.aws must not change regions or endpoints.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", TEST_REGION)
    monkeypatch.setenv("AWS_REGION", TEST_REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    physical = cloud.create_resources(template, moto_endpoint, prefix=TEST_PREFIX)
    specs = {spec.logical_id: spec for spec in cloud.functions(template, physical)}
    environment: dict[str, str] = {}
    for spec in specs.values():
        environment.update(spec.environment)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return AwsEnv(moto_endpoint, TEST_REGION, physical, environment, specs)


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext("designer-ml-test-function", memory_limit_in_mb=1024, timeout_s=29)


@pytest.fixture
def api_routes(template: dict[str, Any]) -> list[cloud.ApiRoute]:
    return [route for spec in cloud.functions(template) for route in spec.api_routes]


@pytest.fixture
def api_event(api_routes: list[cloud.ApiRoute]) -> Callable[..., dict[str, Any]]:
    """``api_event(method, path, body=None, headers=None)``: the proxy event of that request.

    ``path`` may carry a query string; a dict or list ``body`` is sent as JSON. Extra keyword
    arguments (``source_ip``, ``request_id``, ``api_key``) go to ``local.events.build_api_event``.
    """

    def build(
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        if isinstance(body, dict | list):
            body = json.dumps(body)
            headers = {"Content-Type": "application/json", **(headers or {})}
        _, event = build_api_event(api_routes, method, path, headers=headers, body=body, **options)
        return event

    return build


@pytest.fixture
def invoke(aws_env: AwsEnv, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``invoke(function_logical_id, event, context=None)``: the handler's return value.

    The handler is imported from the code folder the template names, once per test (a cold
    start), with that function's own environment variables set.
    """
    loaded: dict[str, LambdaFunction] = {}

    def call(function_logical_id: str, event: dict[str, Any], context: Any = None) -> Any:
        if function_logical_id not in aws_env.specs:
            raise KeyError(f"{function_logical_id} is not a function of the template: {sorted(aws_env.specs)}")
        spec = aws_env.specs[function_logical_id]
        for name, value in spec.environment.items():
            monkeypatch.setenv(name, value)
        if function_logical_id not in loaded:
            loaded[function_logical_id] = LambdaFunction(
                spec,
                region=aws_env.region,
                account_id=aws_env.physical.account_id,
                function_name=cloud.physical_name(TEST_PREFIX, function_logical_id),
                module_name=f"_test_lambda_{function_logical_id}_{next(_fresh_module_ids)}",
            )
        function = loaded[function_logical_id]
        return function.handler(event, context if context is not None else function.context())

    return call


@pytest.fixture(autouse=True)
def _fresh_model_cache() -> Iterator[None]:
    """Each test starts cold: moto is reset between tests, so a cached ONNX session keyed by an
    S3 key could otherwise outlive the object it was loaded from."""
    from designer_ml import onnx_models

    onnx_models.clear_cache()
    yield
    onnx_models.clear_cache()


@pytest.fixture
def s3_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The S3 keys the service reads from now on, in any thread (``Storage.get_bytes`` spied)."""
    from designer_ml.storage import Storage

    reads: list[str] = []
    real = Storage.get_bytes
    monkeypatch.setattr(Storage, "get_bytes", lambda self, key: reads.append(key) or real(self, key))
    return reads


@pytest.fixture
def store_without_documents() -> Callable[[Any, str], None]:
    """``store_without_documents(storage, key)``: rewrite the ONNX model at ``key`` as models were
    stored before they carried their documents (``onnx_models.with_documents``)."""
    import onnx

    from designer_ml import onnx_models

    def rewrite(storage: Any, key: str) -> None:
        model = onnx.load_from_string(storage.get_bytes(key))
        kept = [p for p in model.metadata_props if p.key != onnx_models.DOCUMENTS_KEY]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        storage.put_bytes(key, model.SerializeToString())

    return rewrite
