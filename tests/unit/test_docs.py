"""docs/API.md is generated from the OpenAPI document (docs/gen_api.py) and must not drift from it."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _gen_api():
    spec = importlib.util.spec_from_file_location("gen_api", ROOT / "docs" / "gen_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_reference_matches_the_openapi_document():
    # Given the committed OpenAPI document and API reference
    gen_api = _gen_api()
    document = json.loads(gen_api.DOCUMENT.read_text())

    # When the reference is rendered from the document
    rendered = gen_api.render(document)

    # Then the committed reference is exactly that (else: make openapi)
    assert gen_api.OUTPUT.read_text() == rendered, "docs/API.md drifted from openapi.json: run make openapi"


def test_every_operation_and_schema_is_documented_with_working_links():
    # Given the OpenAPI document
    gen_api = _gen_api()
    document = json.loads(gen_api.DOCUMENT.read_text())

    # When it is rendered
    text = gen_api.render(document)

    # Then every operation has a section, every schema a heading, and every in-page link a target
    headings = {gen_api.slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    for path, ops in document["paths"].items():
        for method in ops:
            assert f"### `{method.upper()} {path}`" in text
    for name in document["components"]["schemas"]:
        assert gen_api.slug(name) in headings
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert anchor in headings, anchor


def test_a_changed_document_renders_a_different_reference():
    # Given the document with one field description changed
    gen_api = _gen_api()
    document = json.loads(gen_api.DOCUMENT.read_text())
    before = gen_api.render(document)
    schema = next(iter(s for s in document["components"]["schemas"].values() if s.get("properties")))
    field = next(iter(schema["properties"].values()))
    field["description"] = "a | description that changed"

    # When it is rendered again
    after = gen_api.render(document)

    # Then the reference changes, with the pipe escaped so the table survives
    assert after != before
    assert "a \\| description that changed" in after
