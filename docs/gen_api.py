"""Write docs/API.md, the API reference, from the OpenAPI document (layers/designer_ml/openapi.json).

``python docs/gen_api.py`` rewrites docs/API.md (``make openapi`` runs it after regenerating the
document); ``python docs/gen_api.py --check`` exits 1 when docs/API.md differs from what the
document gives. Standard library only: the output must not depend on a Markdown package's version.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "layers" / "designer_ml" / "openapi.json"
OUTPUT = ROOT / "docs" / "API.md"
METHODS = ("get", "post", "put", "patch", "delete")
# Used only when an operation declares no ``security``: the routes template.yaml leaves open.
NO_API_KEY = {("get", "/health")}
CONSTRAINTS = (
    ("minLength", "min length {}"),
    ("maxLength", "max length {}"),
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minItems", "min items {}"),
    ("maxItems", "max items {}"),
    ("pattern", "pattern `{}`"),
)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def cell(text: Any) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return re.sub(r"\s+", " ", str(text)).replace("|", "\\|").strip()


def number(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(schema: dict[str, Any]) -> str:
    """A schema's type in one line: "string", "array of [ImageIn](#imagein)", "integer | null"."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = ref_name(schema["$ref"])
        return f"[{name}](#{slug(name)})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [type_of(option) for option in schema[key]]
            return " \\| ".join(dict.fromkeys(options))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return type_of(schema["allOf"][0])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " \\| ".join(kind)
    if kind == "array":
        return f"array of {type_of(schema.get('items') or {})}"
    if kind == "object" or "additionalProperties" in schema:
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"object of {type_of(extra)}"
        return "object"
    return kind or "any"


def constraints(schema: dict[str, Any]) -> list[str]:
    """The schema's limits, including those of its non-null ``anyOf`` branch."""
    out = []
    branches = [schema] + [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    for branch in branches:
        for key, template in CONSTRAINTS:
            if key in branch:
                out.append(template.format(number(branch[key])))
    if "default" in schema:
        out.append(f"default `{json.dumps(schema['default'])}`")
    return list(dict.fromkeys(out))


def fields_table(schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties") or {}
    if not properties:
        return []
    required = set(schema.get("required") or [])
    lines = ["| field | type | required | constraints | description |", "|---|---|---|---|---|"]
    for name, prop in properties.items():
        lines.append(
            f"| `{name}` | {type_of(prop)} | {'yes' if name in required else ''} | "
            f"{cell('; '.join(constraints(prop)))} | {cell(prop.get('description', ''))} |"
        )
    return lines


def operation_heading(method: str, path: str) -> str:
    return f"`{method.upper()} {path}`"


def body_schema(content: dict[str, Any] | None) -> dict[str, Any] | None:
    if not content:
        return None
    return (content.get("application/json") or {}).get("schema")


def render_operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### {operation_heading(method, path)}", ""]
    if op.get("summary"):
        lines += [op["summary"].rstrip(".") + ".", ""]
    if op.get("description"):
        lines += [op["description"].strip(), ""]
    security = op.get("security")
    keyed = bool(security) if security is not None else (method, path) not in NO_API_KEY
    lines += [f"API key: {'required (`x-api-key`) in AWS' if keyed else 'not required'}.", ""]
    parameters = op.get("parameters") or []
    if parameters:
        lines += ["| parameter | in | type | required | constraints |", "|---|---|---|---|---|"]
        for parameter in parameters:
            schema = parameter.get("schema") or {}
            lines.append(
                f"| `{parameter['name']}` | {parameter.get('in', '')} | {type_of(schema)} | "
                f"{'yes' if parameter.get('required') else ''} | {cell('; '.join(constraints(schema)))} |"
            )
        lines.append("")
    request = body_schema((op.get("requestBody") or {}).get("content"))
    if request:
        lines += [f"Request body: {type_of(request)}.", ""]
    responses = op.get("responses") or {}
    successes = sorted(status for status in responses if status[:1] in "123")
    if not successes:
        lines += ["Success response: not declared in the OpenAPI document.", ""]
    for status in successes:
        response = responses[status]
        schema = body_schema(response.get("content"))
        answer = f"{type_of(schema)}" if schema else "no body"
        lines += [f"Answer {status}: {answer}.", ""]
    errors = sorted(status for status in responses if status[:1] not in "123")
    if errors:
        lines += [f"Errors: {', '.join(errors)} ([ErrorResponse](#errorresponse); see [Errors](#errors)).", ""]
    return lines


def render_schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [schema["description"].strip(), ""]
    table = fields_table(schema)
    if table:
        lines += table + [""]
    elif schema.get("type") or schema.get("enum") or schema.get("anyOf"):
        lines += [f"Type: {type_of(schema)}.", ""]
    if schema.get("additionalProperties") not in (None, False) and schema.get("properties"):
        lines += ["Other fields are allowed.", ""]
    for example in schema.get("examples") or []:
        lines += ["Example:", "", "```json", json.dumps(example, indent=2), "```", ""]
    return lines


def render_errors(operations: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """One table of the error statuses the operations declare, with the document's meaning of each."""
    meanings: dict[str, str] = {}
    for _, _, op in operations:
        for status, response in (op.get("responses") or {}).items():
            if status[:1] not in "123":
                meanings.setdefault(status, response.get("description", ""))
    if not meanings:
        return []
    lines = ["## Errors", "", "| status | when |", "|---|---|"]
    lines += [f"| {status} | {cell(meanings[status])} |" for status in sorted(meanings)]
    return lines + [""]


def render(document: dict[str, Any]) -> str:
    info = document.get("info") or {}
    paths = document.get("paths") or {}
    schemas = (document.get("components") or {}).get("schemas") or {}
    operations = [
        (method, path, ops[method]) for path, ops in paths.items() for method in METHODS if method in (ops or {})
    ]
    lines = [
        f"# {info.get('title', 'API')} {info.get('version', '')}".rstrip(),
        "",
        "<!-- Generated by docs/gen_api.py from layers/designer_ml/openapi.json (make openapi). Do not edit. -->",
        "",
        "Every body is JSON with snake_case fields; every answer carries an `x-request-id` header (send",
        "your own to tie a call to your logs). In AWS, API Gateway requires the API key in the",
        "`x-api-key` header on every route but `GET /health`; the local server does when `API_KEY` is set.",
        "Errors, from any route, have one shape: [ErrorResponse](#errorresponse).",
        "",
        *render_errors(operations),
        "## Endpoints",
        "",
        "| method | path | what |",
        "|---|---|---|",
    ]
    for method, path, op in operations:
        anchor = slug(operation_heading(method, path))
        lines.append(f"| {method.upper()} | [`{path}`](#{anchor}) | {cell(op.get('summary', ''))} |")
    lines.append("")
    tags: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for method, path, op in operations:
        tags.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    for tag, ops in tags.items():
        lines += [f"## {tag}", ""]
        for method, path, op in ops:
            lines += render_operation(method, path, op)
    lines += ["## Schemas", ""]
    for name, schema in schemas.items():
        lines += render_schema(name, schema)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/API.md is out of date")
    args = parser.parse_args(argv)
    text = render(json.loads(DOCUMENT.read_text()))
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run make openapi", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
