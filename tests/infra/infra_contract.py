"""What the infra tests check against: docs/LAYOUT.md's function table and template.yaml.

The function table in docs/LAYOUT.md is the contract (logical id, folder, handler, routes);
the tests read it rather than repeating it, so the doc and the template cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from local.cfn_yaml import load_file as load_template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"
LAYOUT_PATH = REPO / "docs" / "LAYOUT.md"
LOCK_PATH = REPO / "requirements-dev.lock"

_ROUTE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/\S*)$")


@dataclass(frozen=True)
class LayoutFunction:
    """One row of LAYOUT.md's function table."""

    logical_id: str
    folder: str  # e.g. "functions/feedback"
    handler: str  # e.g. "retrain.lambda_handler"
    routes: frozenset[tuple[str, str]]  # {(method, path)}; empty for queue-triggered functions

    @property
    def module_path(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return REPO / self.folder / (module.replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]


def _cell(text: str) -> str:
    return text.strip().strip("`").strip()


@lru_cache(maxsize=1)
def layout_functions() -> tuple[LayoutFunction, ...]:
    """The rows of the function table in docs/LAYOUT.md."""
    rows = []
    for line in LAYOUT_PATH.read_text(encoding="utf-8").splitlines():
        cells = [c for c in line.strip().split("|")]
        if len(cells) != 6 or not cells[1].strip().endswith("Function"):
            continue
        logical_id, folder, handler, routes = (_cell(c) for c in cells[1:5])
        parsed = set()
        for route in (r.strip() for r in routes.split(",")):
            match = _ROUTE.match(route)
            if match:
                parsed.add((match.group(1), match.group(2)))
        rows.append(
            LayoutFunction(
                logical_id=logical_id,
                folder=folder.split()[0].rstrip("/"),
                handler=handler,
                routes=frozenset(parsed),
            )
        )
    if not rows:
        raise AssertionError(f"no function table found in {LAYOUT_PATH}")
    return tuple(rows)


@lru_cache(maxsize=1)
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def resources(type_name: str | None = None) -> dict[str, dict[str, Any]]:
    found = template()["Resources"]
    return {k: v for k, v in found.items() if type_name is None or v["Type"] == type_name}


def functions() -> dict[str, dict[str, Any]]:
    return resources("AWS::Serverless::Function")


def function_setting(logical_id: str, name: str) -> Any:
    """A function property, falling back to Globals.Function as SAM does."""
    props = functions()[logical_id].get("Properties", {})
    if name in props:
        return props[name]
    return template().get("Globals", {}).get("Function", {}).get(name)


def events(logical_id: str, event_type: str) -> dict[str, dict[str, Any]]:
    found = functions()[logical_id].get("Properties", {}).get("Events", {})
    return {k: v.get("Properties", {}) for k, v in found.items() if v.get("Type") == event_type}


def api_routes(logical_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """{(METHOD, path): event properties} of one function's Api events."""
    return {(p["Method"].upper(), p["Path"]): p for p in events(logical_id, "Api").values()}


@lru_cache(maxsize=1)
def lock_versions() -> dict[str, str]:
    """{normalised name: version} pinned in requirements-dev.lock."""
    pins = {}
    for line in LOCK_PATH.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            pins[normalise(name)] = version.strip()
    return pins


def normalise(name: str) -> str:
    """PEP 503 name normalisation (``PyYAML`` == ``pyyaml``, ``typing_extensions`` == ``typing-extensions``)."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()
