"""Cold start of each serving function, against the seed's way, with the import breakdown.

Cold start: a fresh Python process imports the handler the template names (code folder first on
``sys.path``, as ``LAMBDA_TASK_ROOT`` is in Lambda), loads the designer's models from the moto
backend and answers the function's typical request (bench/fixtures.py: optimize 128 candidates,
validate 20 images, select 20 of 200, feedback submit, all for a designer with a stored profile
and reward model). Timed from ``Popen`` to the answer, interpreter start included; median of 5
(quick: 2). Also reported: the import and first-request parts, measured inside the process.

Reference, in the same run: a fresh process answering the same request the seed's way (sketch
000): its monolith's imports (scikit-learn, dppy; torch left out, which flatters it), its
models unpickled from the same backend, per-candidate ``predict``, an IsolationForest fitted per
request, dppy on a dense kernel, ``partial_fit`` on feedback.

Import breakdown: ``python -X importtime`` of the same cold process, self time summed by
top-level package; any of scikit-learn, scipy, skl2onnx, dppy or matplotlib in ``sys.modules``
after the request is reported (tests/infra/test_import_tree.py fails on it).

Both sides run from bytecode, as the images do (their Dockerfiles run ``compileall``; ours
also reads botocore's data from the marshal cache its Dockerfiles build, which the floor and the
seed's way, being stock libraries, do not have): the
repository's code is compiled first, since with ``PYTHONDONTWRITEBYTECODE`` set (as in this
environment) a module edited since its last ``.pyc`` would be compiled again in every measured
process (~30 ms for schemas.py alone). An untimed run of each side warms the file cache (not
in the quick version, which times 2 runs of each). The feedback request is a new event in every
run (a repeated one is answered early as a duplicate).

The floor table: a fresh process that imports only the libraries every serving handler needs
(numpy, onnxruntime, pydantic, botocore, Powertools' event handler) and creates the DynamoDB and
S3 clients, with none of our code: what no change to this repository can go under. It is spawned
beside every timed run of ours; "ours / floor (paired)" is the median of those runs' ratios (the
bar: within 10%).
"""

from __future__ import annotations

import compileall
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import fixtures

RESULT = "BENCH_RESULT "
# The measured process: stdlib only before the handler's own import.
DRIVER = r"""
import sys, time
t0 = time.perf_counter()
code_dir, module, attr, event_path = sys.argv[1:5]
sys.path.insert(0, code_dir)
import importlib, json
handler = getattr(importlib.import_module(module), attr)
t1 = time.perf_counter()

class Context:
    function_name = "bench-cold"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-cold"
    aws_request_id = "cold-start-1"
    log_group_name = log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 29000

with open(event_path) as fh:
    event = json.load(fh)
result = handler(event, Context())
t2 = time.perf_counter()
forbidden = sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "scipy", "skl2onnx", "dppy", "matplotlib"})
print("BENCH_RESULT " + json.dumps({"import_s": t1 - t0, "request_s": t2 - t1, "status": result.get("statusCode"),
      "forbidden": forbidden, "body": str(result.get("body"))[:300]}), flush=True)
"""
REFERENCE = r"""
import sys, time
t0 = time.perf_counter()
repo, function, event_path = sys.argv[1:4]
sys.path.insert(0, repo)
import json
from bench import fixtures
fixtures.seed_way_imports()
import boto3
t1 = time.perf_counter()
with open(event_path) as fh:
    body = json.loads(json.load(fh)["body"])
models = fixtures.seed_way_models(body.get("user_id") or fixtures.USER)
table = None
if function == "FeedbackFunction":
    import os
    table = boto3.resource("dynamodb").Table(os.environ["FEEDBACK_TABLE"])
answer = fixtures.seed_way(function, body, models, table)
t2 = time.perf_counter()
print("BENCH_RESULT " + json.dumps({"import_s": t1 - t0, "request_s": t2 - t1, "status": 200, "forbidden": [],
      "body": json.dumps(answer, default=str)[:300]}), flush=True)
"""
# The floor: what the serving stack costs before any of our code runs (the same interpreter, the
# libraries every serving handler imports, and the two clients a model-loading request needs).
FLOOR = r"""
import sys, time
t0 = time.perf_counter()
import json
import numpy, onnxruntime, pydantic
t1 = time.perf_counter()
import botocore.session
t2 = time.perf_counter()
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
import aws_lambda_powertools.event_handler.openapi.params
t3 = time.perf_counter()
session = botocore.session.get_session()
session.create_client("dynamodb"), session.create_client("s3")
t4 = time.perf_counter()
print("BENCH_RESULT " + json.dumps({"numpy_onnxruntime_pydantic_s": t1 - t0, "botocore_s": t2 - t1,
      "powertools_s": t3 - t2, "clients_s": t4 - t3}), flush=True)
"""
_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def _spawn(argv: list[str], env: dict[str, str], timeout: float = 120) -> tuple[float, dict[str, Any], str]:
    """Run one fresh process; (seconds from spawn to answer, its result, its stderr)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=fixtures.REPO)
    answer: dict[str, Any] | None = None
    elapsed = 0.0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(RESULT):
            elapsed = time.perf_counter() - started
            answer = json.loads(line[len(RESULT) :])
            break
    _, stderr = proc.communicate(timeout=timeout)
    if answer is None:
        raise RuntimeError(f"{argv[:4]} gave no answer (exit {proc.returncode}): {stderr[-2000:]}")
    return elapsed, answer, stderr


def _env(be: fixtures.Backend, function: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {**keep, **be.function_env(function)}
    env.pop("PYTHONPATH", None)
    # One intra-op thread as in Lambda (~1 vCPU at 1 GB), for both sides.
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    return env


def importtime_breakdown(stderr: str, top: int = 6) -> tuple[float, list[tuple[str, float]]]:
    """(total import ms, [(top-level package, self ms)] largest first) from ``-X importtime`` output."""
    by_package: dict[str, float] = {}
    total = 0.0
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if not match:
            continue
        self_us, _, _, name = match.groups()
        package = name.split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(self_us) / 1000
        total += int(self_us) / 1000
    ranked = sorted(by_package.items(), key=lambda item: -item[1])[:top]
    return total, ranked


def compile_bytecode() -> None:
    """Do what the images' build does before our code runs: compile the repository's code
    (timestamp-checked ``.pyc``, safe to edit afterwards) and decode botocore's data files into
    the shared package's cache (``storage.build_data_cache``, a RUN step of every Dockerfile)."""
    for folder in ("layers", "functions", "bench", "local"):
        compileall.compile_dir(fixtures.REPO / folder, quiet=1)
    # In a child, as the image's RUN step: importing the package here would bind its logger to
    # this process's stdout before the benchmark quiets it.
    subprocess.run(
        [sys.executable, "-c", "from designer_ml.storage import build_data_cache; build_data_cache()"],
        check=True,
        cwd=fixtures.REPO,
        env={**os.environ, "AWS_DEFAULT_REGION": fixtures.REGION},
    )


def _event_files(be: fixtures.Backend, function: str, folder: Path, count: int) -> list[Path]:
    """``count`` event files of the function's typical request: a new feedback event each, else one request."""
    method, path = fixtures.ROUTES[function]
    paths = []
    for k in range(count):
        i = 1000 + k if function == "FeedbackFunction" else 1000
        event_path = folder / f"{function}-{i}.json"
        event_path.write_text(json.dumps(be.event(method, path, fixtures.request_body(function, i=i))))
        paths.append(event_path)
    return paths


def run(quick: bool = False) -> dict[str, Any]:
    runs = 2 if quick else 5
    compile_bytecode()
    cold_rows: list[list[Any]] = []
    import_rows: list[list[Any]] = []
    figures: dict[str, Any] = {}
    with fixtures.backend() as be, tempfile.TemporaryDirectory() as tmp:
        with fixtures.quiet():
            stored = fixtures.seed_user(be)
        functions = [f for f in fixtures.SERVING if be.handler_exists(f)]
        missing = [f for f in fixtures.SERVING if f not in functions]
        floor_argv, floor_env = [sys.executable, "-c", FLOOR], _env(be, fixtures.SERVING[0])
        floors: list[tuple[float, dict[str, Any], str]] = []
        for function in functions:
            spec = be.specs[function]
            # Events: a warm-up, the timed runs (ours and the reference answer the same ones), importtime.
            events = [str(p) for p in _event_files(be, function, Path(tmp), runs + 2)]
            env = _env(be, function)
            ours_argv = [sys.executable, "-c", DRIVER, str(spec.code_dir), spec.handler_module, spec.handler_attr]
            ref_argv = [sys.executable, "-c", REFERENCE, str(fixtures.REPO), function]
            if not quick:
                _spawn([*ours_argv, events[0]], env)
                _spawn([*ref_argv, events[0]], env)
            ours, refs, paired = [], [], []
            # Interleaved, so that a burst of load on this shared machine hits both sides alike;
            # the floor too (measured once at the end, its ratio to ours moved 1.04-1.32 between
            # runs of the same code): the ratio is the median of each run's own ratio.
            for event in events[1 : runs + 1]:
                ours.append(_spawn([*ours_argv, event], env)[:2])
                refs.append(_spawn([*ref_argv, event], env)[:2])
                floors.append(_spawn(floor_argv, floor_env))
                paired.append(ours[-1][0] / floors[-1][0])
            _, answer, stderr = _spawn([sys.executable, "-X", "importtime", *ours_argv[1:], events[-1]], env)
            total_ms, ranked = importtime_breakdown(stderr)
            cold = statistics.median(t for t, _ in ours)
            ref = statistics.median(t for t, _ in refs)
            status = ours[-1][1]["status"]
            forbidden = sorted({m for _, a in ours for m in a["forbidden"]} | set(answer["forbidden"]))
            name = function.removesuffix("Function").lower()
            cold_rows.append(
                [
                    name,
                    round(cold, 3),
                    round(statistics.median(a["import_s"] for _, a in ours), 3),
                    round(statistics.median(a["request_s"] for _, a in ours), 3),
                    round(ref, 3),
                    round(statistics.median(a["import_s"] for _, a in refs), 3),
                    round(ref / cold, 2),
                    round(statistics.median(paired), 2),
                    status,
                ]
            )
            import_rows.append(
                [name, round(total_ms), ", ".join(f"{p} {ms:.0f}" for p, ms in ranked), ", ".join(forbidden) or "none"]
            )
            figures[f"{name}_cold_s"] = round(cold, 3)
            figures[f"{name}_reference_s"] = round(ref, 3)
            figures[f"{name}_ratio"] = round(ref / cold, 2)
            figures[f"{name}_over_floor"] = round(statistics.median(paired), 2)
            figures[f"{name}_status"] = status
            figures[f"{name}_forbidden_modules"] = len(forbidden)
    floor_s = statistics.median(t for t, _, _ in floors)
    floor_rows = [["total, spawn to done", round(floor_s, 3)]] + [
        [
            part.removesuffix("_s").replace("_", ", ") + (" (import)" if part != "clients_s" else " (DynamoDB + S3)"),
            round(statistics.median(a[part] for _, a, _ in floors), 3),
        ]
        for part in ("numpy_onnxruntime_pydantic_s", "botocore_s", "powertools_s", "clients_s")
    ]
    figures["floor_s"] = round(floor_s, 3)
    if cold_rows:
        figures["max_cold_s"] = max(row[1] for row in cold_rows)
        figures["min_ratio"] = min(row[6] for row in cold_rows)
        figures["max_over_floor"] = max(row[7] for row in cold_rows)
    figures["functions_measured"] = len(cold_rows)
    notes = be.notes + [f"{f}: no handler yet, not measured" for f in missing]
    setup = [
        ["profile create status", stored.get("profile")],
        ["feedback events stored", stored.get("feedback")],
        ["reward model trained", stored.get("reward_model") is not None],
        ["model artifacts in S3", len(stored.get("model_keys", []))],
    ] + [["note", n] for n in notes]
    return {
        "name": "coldstart",
        "tables": [
            {
                "title": f"Cold start, fresh process, median of {runs} (seconds; reference = the seed's way, same request)",
                "columns": [
                    "function",
                    "ours total",
                    "ours import",
                    "ours first request",
                    "reference total",
                    "reference import",
                    "reference / ours",
                    "ours / floor (paired)",
                    "status",
                ],
                "rows": cold_rows,
            },
            {
                "title": "Import breakdown of each serving handler (python -X importtime, self ms by top-level package)",
                "columns": ["function", "import total ms", "largest packages (ms)", "forbidden modules loaded"],
                "rows": import_rows,
            },
            {
                "title": f"The floor: the serving libraries alone, fresh process, median of {len(floors)} (seconds); "
                "4x the reference needs each function under reference / 4",
                "columns": ["part", "seconds"],
                "rows": floor_rows,
            },
            {"title": "Setup: the designer's stored state", "columns": ["what", "value"], "rows": setup},
        ],
        "figures": figures,
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
