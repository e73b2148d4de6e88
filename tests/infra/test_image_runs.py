"""Each image's handler runs from what the image holds, and nothing else.

A function's requirements are installed into an empty folder (``pip install --target``, cached
by content under the temp dir: bench/bench_images.py), then the handler is imported and answers
one request against moto in ``python -I -S``: no site-packages, only the function's folder, the
shared package, that folder and, when the image does not install boto3, the boto3 stack the
Lambda base image provides. An import that works only because the development venv has the
package fails here. Needs the package index (skipped when it cannot be reached).
"""

from __future__ import annotations

import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from bench import bench_images
from local import cloud

SPECS = {spec.logical_id: spec for spec in cloud.functions(cloud.load_template())}
# RetrainFunction runs from FeedbackFunction's image; its SQS event is covered by the feedback tests.
FUNCTIONS = sorted(lid for lid in SPECS if lid in bench_images.REQUESTS)
BUDGET_BYTES = bench_images.BUDGET_MB * 1024 * 1024


@lru_cache(maxsize=1)
def _index_unreachable() -> str | None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "--timeout",
            "10",
            "--retries",
            "0",
            "--dest",
            str(bench_images.CACHE / "probe"),
            "six==1.17.0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return None if done.returncode == 0 else f"package index unreachable: {done.stderr[-300:]}"


@pytest.fixture(scope="session")
def installed() -> Any:
    """``installed(spec) -> folder``: the function's requirements in an empty folder, once per content."""
    reason = _index_unreachable()
    if reason:
        pytest.skip(reason)
    return lambda spec: bench_images.install_target(spec.code_dir)


@pytest.mark.network
@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_runs_from_its_image_alone(
    function: str, installed: Any, aws_env: Any, api_event: Any, tmp_path: Path
) -> None:
    # Given a function of the template, its requirements installed into an empty folder
    spec = aws_env.specs[function]
    handler = spec.code_dir.joinpath(*spec.handler_module.split(".")).with_suffix(".py")
    if not handler.is_file():
        pytest.skip(f"{function}: {handler} does not exist yet")
    target = installed(spec)
    method, path, body = bench_images.REQUESTS[function]
    env = {**os.environ, **spec.environment}

    # When the handler is imported and answers one request with only the image's folders on sys.path
    answer = bench_images.run_alone(spec, target, api_event(method, path, body), env, tmp_path)

    # Then it answers without a server error and loads nothing from outside the image
    assert answer.get("status") is not None, answer.get("error")
    assert answer["status"] < 500, answer
    assert not answer["forbidden"], answer["forbidden"]
    assert not answer["outside"], f"{function} imported from outside the image: {answer['outside']}"


@pytest.mark.network
@pytest.mark.parametrize("function", [f for f in FUNCTIONS if f != "ProfileFunction"])
def test_serving_image_holds_no_training_package_and_fits_the_budget(function: str, installed: Any) -> None:
    # Given a serving function's requirements installed into an empty folder
    spec = SPECS[function]
    target = installed(spec)

    # When its contents are listed and measured
    names = {p.name for p in target.iterdir()}
    apparent, _ = bench_images.size_of(target)

    # Then no training library is in it and it stays under 200 MB (QUALITY.md)
    assert not bench_images.FORBIDDEN & names, sorted(bench_images.FORBIDDEN & names)
    assert apparent < BUDGET_BYTES, f"{function}: {apparent / 2**20:.0f} MB installed"
