"""No training library on a serving function's request path, not even transitively.

Each serving handler the template names is imported in a fresh process, answers one request
against moto, and then ``sys.modules`` must hold none of scikit-learn, scipy, skl2onnx, dppy or
matplotlib (QUALITY.md). Functions whose handler file does not exist yet are skipped, so each
stage is checked as soon as it lands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.bench_coldstart import DRIVER, RESULT
from bench.bench_images import REQUESTS
from local import cloud
from local.events import build_api_event

TRAINING = {"ProfileFunction"}
FORBIDDEN = {"sklearn", "scipy", "skl2onnx", "dppy", "matplotlib"}
SPECS = {spec.logical_id: spec for spec in cloud.functions(cloud.load_template())}
SERVING = sorted(lid for lid, spec in SPECS.items() if spec.api_routes and lid not in TRAINING)


def _handler_file(spec: cloud.FunctionSpec) -> Path:
    return spec.code_dir.joinpath(*spec.handler_module.split(".")).with_suffix(".py")


@pytest.mark.parametrize("function", SERVING)
def test_serving_handler_imports_no_training_library(function: str, aws_env: Any, tmp_path: Path) -> None:
    # Given a serving function of the template and its typical request
    spec = aws_env.specs[function]
    if not _handler_file(spec).is_file():
        pytest.skip(f"{function}: {_handler_file(spec)} does not exist yet")
    if function not in REQUESTS:
        pytest.skip(f"{function}: no request defined in bench/bench_images.py REQUESTS")
    method, path, body = REQUESTS[function]
    routes = [route for s in aws_env.specs.values() for route in s.api_routes]
    headers = {"Content-Type": "application/json"} if body is not None else None
    _, event = build_api_event(routes, method, path, headers=headers, body=None if body is None else json.dumps(body))
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event))
    env = {**os.environ, **spec.environment}

    # When a fresh process imports the handler and answers it
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(spec.code_dir), spec.handler_module, spec.handler_attr, str(event_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    assert lines, f"{function} gave no answer: {done.stderr[-2000:]}"
    answer = json.loads(lines[-1][len(RESULT) :])

    # Then it answered without a server error, and no training library was imported
    assert answer["status"] is not None and answer["status"] < 500, answer
    assert not FORBIDDEN & set(answer["forbidden"]), f"{function} imported {answer['forbidden']}"


# The same cold process, then a second submit (the first one sets the retrain marker and queues
# a message; the second takes the common path), and whether numpy was ever loaded.
_SUBMIT_TWICE = (
    DRIVER
    + """
with open(sys.argv[5]) as fh:
    second = json.load(fh)
status = handler(second, Context()).get("statusCode")
print("SUBMIT_RESULT " + json.dumps({"status": status, "numpy": "numpy" in sys.modules}), flush=True)
"""
)


def test_feedback_submit_path_loads_no_numpy(aws_env: Any, tmp_path: Path) -> None:
    # Given the feedback function and two new feedback events of one designer
    spec = aws_env.specs["FeedbackFunction"]
    routes = [route for s in aws_env.specs.values() for route in s.api_routes]
    paths = []
    for asset in ("a1", "a2"):
        body = {
            "user_id": "no-numpy",
            "generation_id": "g",
            "asset_id": asset,
            "feedback_type": "like",
            "prompt_used": "high fashion photography, full body, soft dramatic lighting",
            "vlt_spec": {
                "garment_type": "dress",
                "attributes": {"silhouette": "A-line"},
                "colors": {"primary": "black"},
            },
        }
        _, event = build_api_event(
            routes,
            "POST",
            "/api/ml/feedback/submit",
            headers={"Content-Type": "application/json"},
            body=json.dumps(body),
        )
        paths.append(tmp_path / f"{asset}.json")
        paths[-1].write_text(json.dumps(event))

    # When a fresh process imports the handler and answers both
    done = subprocess.run(
        [sys.executable, "-c", _SUBMIT_TWICE, str(spec.code_dir), spec.handler_module, spec.handler_attr]
        + [str(p) for p in paths],
        env={**os.environ, **spec.environment},
        capture_output=True,
        text=True,
        timeout=120,
    )
    first = [json.loads(line[len(RESULT) :]) for line in done.stdout.splitlines() if line.startswith(RESULT)]
    second = [json.loads(line[14:]) for line in done.stdout.splitlines() if line.startswith("SUBMIT_RESULT ")]
    assert first and second, done.stderr[-2000:]

    # Then both were accepted, and numpy was never imported (the submit path needs none of it)
    assert first[0]["status"] == 202 and second[0]["status"] == 202, (first, second)
    assert second[0]["numpy"] is False
