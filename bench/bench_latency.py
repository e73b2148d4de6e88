"""Warm latency of the serving handlers, in process, against the seed's way on the same requests.

Each handler the template names is imported once (a warm container, ``local.runtime``), called
once to warm up, then timed over 200 calls (quick: 50): p50 and p99 of wall time per call, on a
moto backend on loopback (every DynamoDB/S3/SQS call a real HTTP round trip, as to AWS but
faster). Requests (bench/fixtures.py), all for a designer with a stored profile and reward
model: optimize with 128 candidates, validate 20 images, select 20 of 200, feedback submit
(a new asset each call), profile get. The reference answers the same bodies the seed's way
(per-candidate scikit-learn ``predict``, IsolationForest fitted per request, dppy on a dense
kernel, ``partial_fit`` plus the same DynamoDB write), models already in memory.

Bars (QUALITY.md): p50 under 15 ms for optimize, validate and select; under 10 ms for feedback.

Steady state, as deployed: between timed feedback calls (untimed) the retrain queue is handed to
RetrainFunction, as Lambda's event source mapping does, so that the designer's pending events are
folded into a model as in production (a flush retrain every ``FLUSH_EVERY`` events) instead of
piling up to the cap; and profile get runs before the feedback burst. Why it matters here: moto
serialises and deep-copies a whole item on every read and write of it, so without a consumer
every call that touches the designer's feedback state item (submit, optimize) slows down with
each pending event before it (AWS bills the same growth in capacity units, not milliseconds).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench import fixtures

BARS_MS = {"optimize": 15.0, "validate": 15.0, "select": 15.0, "feedback submit": 10.0}


def _timed(call: Callable[[int], Any], n: int, between: Callable[[], Any] | None = None) -> list[float]:
    """ms of ``call(i)`` for i in range(n), after one warm-up call; ``between`` runs untimed after each."""
    call(-1)
    times = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
        if between is not None:
            between()
    return times


def _p(times: list[float], q: float) -> float:
    return round(float(np.percentile(times, q)), 2) if times else float("nan")


def run(quick: bool = False) -> dict[str, Any]:
    n = 50 if quick else 200
    # The seed's way takes 0.1-1 s a call: fewer calls give its median well enough.
    n_ref = 10 if quick else 50
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {}
    statuses: dict[str, set[int]] = {}
    with fixtures.backend() as be, fixtures.quiet():
        stored = fixtures.seed_user(be)
        invoke = fixtures.Invoker(be)
        models = fixtures.seed_way_models(fixtures.USER)
        import boto3

        table = boto3.resource("dynamodb").Table(os.environ["FEEDBACK_TABLE"])
        queue = fixtures.RetrainQueue(be) if be.handler_exists("RetrainFunction") else None
        if be.handler_exists("ProfileFunction"):
            get = be.event("GET", f"/api/ml/style-profile/{fixtures.USER}")
            seen: set[int] = set()

            def profile_get(i: int) -> None:
                status, _ = invoke("ProfileFunction", get)
                seen.add(status)

            profile_times = _timed(profile_get, n)
            profile_statuses = seen
        cases = [
            ("optimize", "OptimizeFunction"),
            ("validate", "ValidateFunction"),
            ("select", "SelectFunction"),
            ("feedback submit", "FeedbackFunction"),
        ]
        for label, function in cases:
            if not be.handler_exists(function):
                rows.append([label, "no handler yet", "", "", "", "", ""])
                continue
            method, path = fixtures.ROUTES[function]
            varies = function == "FeedbackFunction"
            fixed = be.event(method, path, fixtures.request_body(function, i=0))
            events = (
                {i: be.event(method, path, fixtures.request_body(function, i=10_000 + i)) for i in range(-1, n)}
                if varies
                else {}
            )
            seen = set()

            def ours(
                i: int,
                function: str = function,
                fixed: dict[str, Any] = fixed,
                events: dict[int, Any] = events,
                seen: set[int] = seen,
            ) -> None:
                status, _ = invoke(function, events[i] if events else fixed)
                seen.add(status)

            between = queue.drain if varies and queue is not None else None

            bodies = {i: fixtures.request_body(function, i=20_000 + i) for i in range(-1, n)} if varies else {}
            fixed_body = fixtures.request_body(function, i=0)

            def reference(
                i: int,
                function: str = function,
                bodies: dict[int, Any] = bodies,
                fixed_body: dict[str, Any] = fixed_body,
            ) -> None:
                fixtures.seed_way(function, bodies[i] if bodies else fixed_body, models, table)

            mine = _timed(ours, n, between)
            theirs = _timed(reference, n_ref)
            statuses[label] = seen
            name = label.replace(" ", "_")
            bar = BARS_MS.get(label)
            rows.append(
                [
                    label,
                    _p(mine, 50),
                    _p(mine, 99),
                    _p(theirs, 50),
                    _p(theirs, 99),
                    round(_p(theirs, 50) / _p(mine, 50), 1),
                    f"< {bar:g}" if bar else "",
                    ",".join(map(str, sorted(seen))),
                ]
            )
            figures[f"{name}_p50_ms"] = _p(mine, 50)
            figures[f"{name}_p99_ms"] = _p(mine, 99)
            figures[f"{name}_reference_p50_ms"] = _p(theirs, 50)
        if be.handler_exists("ProfileFunction"):
            rows.append(
                [
                    "profile get",
                    _p(profile_times, 50),
                    _p(profile_times, 99),
                    "",
                    "",
                    "",
                    "",
                    ",".join(map(str, sorted(profile_statuses))),
                ]
            )
            figures["profile_get_p50_ms"] = _p(profile_times, 50)
            figures["profile_get_p99_ms"] = _p(profile_times, 99)
        else:
            rows.append(["profile get", "no handler yet", "", "", "", "", "", ""])
    notes = [["note", note] for note in be.notes] + [["model artifacts in S3", len(stored.get("model_keys", []))]]
    figures["calls"] = n
    return {
        "name": "latency",
        "tables": [
            {
                "title": f"Warm latency in process, {n} calls (ms; reference = the seed's way, models in memory, {n_ref} calls)",
                "columns": [
                    "request",
                    "p50",
                    "p99",
                    "reference p50",
                    "reference p99",
                    "reference / ours (p50)",
                    "bar p50",
                    "statuses",
                ],
                "rows": [r if len(r) == 8 else [*r, ""] for r in rows],
            },
            {"title": "Setup", "columns": ["what", "value"], "rows": notes},
        ],
        "figures": figures,
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
