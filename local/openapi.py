"""Build the OpenAPI document of the whole API from every function's resolver.

Each function has its own resolver (one Lambda each); this merges their documents into one,
written to layers/designer_ml/openapi.json (`make openapi`). tests/test_openapi.py fails when the
committed document drifts from the models.
"""

from __future__ import annotations

import json
from typing import Any

from local import cloud
from local.runtime import load_module

ROOT = cloud.REPO_ROOT
DOCUMENT = ROOT / "layers" / "designer_ml" / "openapi.json"


def _api_apps() -> list[Any]:
    """The resolver of every function of template.yaml that serves Api routes."""
    apps = []
    for spec in cloud.functions(cloud.load_template()):
        # A handler not written yet is reported by tests/infra; the document covers what exists.
        if spec.api_routes and (spec.code_dir / f"{spec.handler_module}.py").exists():
            module = load_module(spec.code_dir, spec.handler_module, f"_openapi_{spec.logical_id}")
            apps.append(module.app)
    return apps


# API Gateway's answer (the template's GatewayResponses, in the one error shape) without the key.
FORBIDDEN_RESPONSE = {
    "description": "Missing or wrong API key (x-api-key)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def _keyed_routes() -> dict[tuple[str, str], bool]:
    """(method, path) -> whether API Gateway asks for the key there (template.yaml's Auth)."""
    return {
        (route.method.lower(), route.path): route.api_key_required
        for spec in cloud.functions(cloud.load_template())
        for route in spec.api_routes
    }


def _keep_success_answers(app: Any) -> None:
    """Give every route with ``responses=`` but no 2xx entry a 200 entry without content.

    Powertools documents the return model only when a route passes no ``responses`` or a 2xx
    entry without ``content``; ``responses=ERROR_RESPONSES`` alone would leave the operation
    with no success answer in the document (clients and schemathesis then reject every 200).
    """
    for route in app._static_routes + app._dynamic_routes:  # no public list of routes
        if route.responses and not any(200 <= int(code) < 300 for code in route.responses):
            route.responses = {200: {"description": "Successful Response"}, **route.responses}


def build_document() -> dict[str, Any]:
    from designer_ml import __version__
    from designer_ml.api import ERROR_RESPONSES
    from designer_ml.openapi import TITLE
    from designer_ml.schemas import ErrorResponse

    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    keyed = _keyed_routes()
    for app in _api_apps():
        _keep_success_answers(app)
        doc = json.loads(app.get_openapi_json_schema(title=TITLE, version=__version__))
        for path, ops in doc.get("paths", {}).items():
            for method, op in ops.items():
                # Which operations need x-api-key, so that clients and fuzzers know (/health does not).
                if keyed.get((method, path), True):
                    op["security"] = [{"api_key": []}]
                    op.setdefault("responses", {}).setdefault("403", FORBIDDEN_RESPONSE)
                else:
                    op["security"] = []
                responses = op.setdefault("responses", {})
                # Powertools' own validation shapes; ours replace them
                for status in ("422", "500"):
                    if "ValidationError" in json.dumps(responses.get(status, {})):
                        responses.pop(status)
                for status, spec in ERROR_RESPONSES.items():
                    responses.setdefault(str(status), spec)
            paths.setdefault(path, {}).update(ops)
        schemas.update(doc.get("components", {}).get("schemas", {}))
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error_schema.pop("$defs", {}))
    schemas["ErrorResponse"] = error_schema
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": __version__},
        "servers": [{"url": "/"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {"api_key": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
        },
    }


def render() -> str:
    return json.dumps(build_document(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    DOCUMENT.write_text(render())
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")
