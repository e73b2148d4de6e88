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


def build_document() -> dict[str, Any]:
    from designer_ml import __version__
    from designer_ml.api import ERROR_RESPONSES
    from designer_ml.openapi import TITLE
    from designer_ml.schemas import ErrorResponse

    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for app in _api_apps():
        doc = json.loads(app.get_openapi_json_schema(title=TITLE, version=__version__))
        for path, ops in doc.get("paths", {}).items():
            for op in ops.values():
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
