"""The committed OpenAPI document is generated from the models: it must not drift."""

import json

from local.openapi import DOCUMENT, build_document


def test_committed_openapi_matches_the_models():
    # Given the document built from every function's resolver now
    fresh = build_document()
    # When compared with the committed one
    committed = json.loads(DOCUMENT.read_text())
    # Then they are the same (run `make openapi` after changing a model or a route)
    assert committed == fresh, "openapi.json drifted from the models: run `make openapi`"


def test_every_operation_documents_the_error_shape():
    doc = build_document()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "422" in op["responses"] and "404" in op["responses"], f"{method} {path}"
    assert "ErrorResponse" in doc["components"]["schemas"]
