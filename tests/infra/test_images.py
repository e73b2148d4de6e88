"""What goes into each container image: Dockerfile shape, pinned requirements, resolved packages.

QUALITY.md: serving functions import numpy and onnxruntime, never scikit-learn, scipy, skl2onnx,
dppy or matplotlib, and their dependencies stay under 200 MB; only the training image (profile)
carries scikit-learn. The resolution tests ask pip what each requirements.txt would install for
the image's own Python, glibc and architecture (`pip install --dry-run --report`); they need the
package index and are skipped when it cannot be reached.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path

import pytest
from infra_contract import REPO, function_setting, layout_functions, lock_versions, normalise

FOLDERS = sorted({row.folder for row in layout_functions()})
TRAINING_FOLDERS = {"functions/profile"}
SERVING_FOLDERS = [f for f in FOLDERS if f not in TRAINING_FOLDERS]
FORBIDDEN_ON_SERVING = {"scikit-learn", "scipy", "skl2onnx", "dppy", "matplotlib"}
SERVING_TOP_LEVEL = {"aws-lambda-powertools", "aws-xray-sdk", "boto3", "numpy", "onnxruntime", "pydantic"}
# The feedback image also runs the retrain handler, which writes the reward model with onnx.helper
# (designer_ml.reward.model.export_onnx).
EXTRA_TOP_LEVEL = {"functions/feedback": {"onnx"}}
SERVING_BUDGET_BYTES = 200 * 1024 * 1024
# The Lambda Python base image ships boto3 (and botocore): serving images do not install it again
# (tests/infra/test_image_runs.py runs each handler with only that beside its installed folder).
RUNTIME_PROVIDED = {"boto3"}
LOCK_CONSTRAINT = "-c ../../requirements-dev.lock"
# One resolution takes a few seconds on an idle machine; past this the machine is the problem.
RESOLVE_TIMEOUT_S = 120

# glibc of the Lambda base images: Python <= 3.11 run on Amazon Linux 2, >= 3.12 on AL2023.
AL2_GLIBC, AL2023_GLIBC = 26, 34
BASE_IMAGE = re.compile(r"^public\.ecr\.aws/lambda/python:(3\.\d+)$")
FROM_LINE = re.compile(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE | re.MULTILINE)


def _name(folder: str) -> str:
    return folder.rsplit("/", 1)[1]


def _dockerfile(folder: str) -> str:
    return (REPO / folder / "Dockerfile").read_text(encoding="utf-8")


def _requirements(folder: str) -> list[str]:
    lines = (REPO / folder / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def _pins(folder: str) -> dict[str, str]:
    pins = {}
    for line in _requirements(folder):
        if line.startswith("-"):
            continue
        name, sep, version = line.partition("==")
        assert sep and re.fullmatch(r"[A-Za-z0-9._-]+", name.strip()), f"{folder}: {line!r} is not pinned with =="
        pins[normalise(name)] = version.strip()
    return pins


def _python_version(folder: str) -> str:
    stages = FROM_LINE.findall(_dockerfile(folder))
    images = {image for image, _ in stages}
    assert len(images) == 1, f"{folder}: builder and final stage must share one base image, got {images}"
    match = BASE_IMAGE.match(images.pop())
    assert match, f"{folder}: base image is not a Lambda Python image"
    return match.group(1)


def _architecture(folder: str) -> str:
    logical_id = next(row.logical_id for row in layout_functions() if row.folder == folder)
    architectures = function_setting(logical_id, "Architectures") or ["x86_64"]
    return "aarch64" if architectures == ["arm64"] else "x86_64"


# Offline checks


@pytest.mark.parametrize("folder", FOLDERS)
def test_dockerfile_builds_dependencies_first_and_code_last(folder: str):
    # Given a function's Dockerfile
    text = _dockerfile(folder)
    stages = FROM_LINE.findall(text)
    builder_text, final_text = re.split(r"^FROM\s", text, flags=re.MULTILINE | re.IGNORECASE)[-2:]

    # When its two stages are read
    # Then the builder installs the pinned requirements into a target directory and the shared
    # package without dependencies, and the final stage copies them, then the function's own
    # folder, then compiles bytecode
    assert [alias.lower() for _, alias in stages] == ["builder", ""], f"{folder}: two stages, builder first"
    assert re.search(rf"pip install[^\n]*--target \S+[^\n]*-r {folder}/requirements\.txt", builder_text)
    assert re.search(r"pip install[^\n]*--no-deps[^\n]*--target \S+ \.?/?layers", builder_text)
    if LOCK_CONSTRAINT in _requirements(folder):
        assert "COPY requirements-dev.lock" in builder_text
    # and decodes botocore's data files into the shared package's cache (read-only at run time)
    assert re.search(r"PYTHONPATH=/opt/deps\S*[^\n]*\n[^\n]*build_data_cache\(\)", builder_text)
    copy_deps = final_text.index("COPY --from=builder")
    copy_code = final_text.index(f"COPY {folder}/ ")
    compile_code = final_text.index("compileall")
    assert copy_deps < copy_code < compile_code
    assert "${LAMBDA_TASK_ROOT}" in final_text[copy_deps:copy_code]


@pytest.mark.parametrize("folder", FOLDERS)
def test_dockerfile_command_is_the_folders_api_handler(folder: str):
    # Given the functions built from a folder (feedback's image also serves RetrainFunction)
    rows = [row for row in layout_functions() if row.folder == folder]
    default = next((row for row in rows if row.routes), rows[0])

    # When the Dockerfile's CMD is read
    command = re.findall(r"^CMD\s+(.+)$", _dockerfile(folder), flags=re.MULTILINE)

    # Then it is the handler of the folder's API function; the template overrides it for others
    assert command and json.loads(command[-1]) == [default.handler]


@pytest.mark.parametrize("folder", FOLDERS)
def test_requirements_are_pinned_to_the_lock(folder: str):
    # Given a function's requirements and the development lock
    pins, lock = _pins(folder), lock_versions()

    # When each pin is compared with the lock
    drift = {name: (version, lock.get(name)) for name, version in pins.items() if lock.get(name) != version}

    # Then they agree, and the lock constrains every transitive version as well
    assert not drift, f"{folder}: pins differ from requirements-dev.lock: {drift}"
    assert LOCK_CONSTRAINT in _requirements(folder)


@pytest.mark.parametrize("folder", SERVING_FOLDERS)
def test_serving_requirements_name_only_serving_packages(folder: str):
    # Given a serving function's requirements
    # When their top-level packages are listed
    names = set(_pins(folder))
    allowed = SERVING_TOP_LEVEL | EXTRA_TOP_LEVEL.get(folder, set())

    # Then they are among powertools, X-Ray, pydantic, boto3, numpy and onnxruntime (+ onnx to
    # export the reward model in the retrain image)
    assert names <= allowed, f"{folder}: {sorted(names - allowed)}"


@pytest.mark.parametrize("folder", FOLDERS)
def test_image_carries_what_the_shared_package_needs(folder: str):
    # Given the shared package's declared dependencies (it is installed with --no-deps)
    project = tomllib.loads((REPO / "layers" / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    needed = {normalise(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in project["dependencies"]}
    if folder in TRAINING_FOLDERS:
        extras = project.get("optional-dependencies", {}).get("train", [])
        needed |= {normalise(re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0]) for d in extras}

    # When the function's requirements are read
    names = set(_pins(folder))

    # Then they provide them, or the Lambda runtime does (boto3, for the serving images)
    provided = names | (RUNTIME_PROVIDED if folder in SERVING_FOLDERS else set())
    assert needed <= provided, f"{folder} lacks {sorted(needed - provided)}"


# Resolution (network)


@lru_cache(maxsize=1)
def _index_unreachable_reason() -> str | None:
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/").rstrip("/")
    try:
        with urllib.request.urlopen(f"{index}/pip/", timeout=5) as answer:  # noqa: S310 - fixed scheme
            answer.read(1)
    except OSError as exc:
        return f"package index {index} unreachable: {exc}"
    return None


@pytest.fixture
def package_index():
    reason = _index_unreachable_reason()
    if reason:
        pytest.skip(reason)


def _platform_args(glibc_minor: int, arch: str) -> list[str]:
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(glibc_minor, 4, -1)]
    tags += [f"manylinux2014_{arch}"] + ([f"manylinux2010_{arch}", f"manylinux1_{arch}"] if arch == "x86_64" else [])
    return [arg for tag in tags for arg in ("--platform", tag)]


@cache
def _resolve(folder: str) -> dict[str, str] | str | None:
    """{normalised name: version} that pip would install for the image (wheels only), why not,
    or None when pip did not answer in time."""
    python = _python_version(folder)
    glibc = AL2_GLIBC if tuple(map(int, python.split("."))) <= (3, 11) else AL2023_GLIBC
    abi = "cp" + python.replace(".", "")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [
            sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
            "--only-binary=:all:", "--python-version", python, "--implementation", "cp", "--abi", abi,
            *_platform_args(glibc, _architecture(folder)),
            "--timeout", "20", "--retries", "1", "--report", str(report),
            "-r", f"{folder}/requirements.txt",
        ]  # fmt: skip
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        try:
            result = subprocess.run(
                command, cwd=REPO, capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_S, env=env
            )
        except subprocess.TimeoutExpired:
            return None
        if result.returncode != 0:
            errors = "\n".join(line for line in result.stderr.splitlines() if "is ignored" not in line)
            return f"{folder}: no wheel set for Python {python}, glibc 2.{glibc} ({_architecture(folder)}):\n{errors}"
        installs = json.loads(report.read_text(encoding="utf-8"))["install"]
    return {normalise(item["metadata"]["name"]): item["metadata"]["version"] for item in installs}


def resolve(folder: str) -> dict[str, str]:
    """{normalised name: version} that pip would install in the image of ``folder``."""
    resolved = _resolve(folder)
    if resolved is None:
        pytest.skip(f"{folder}: pip took over {RESOLVE_TIMEOUT_S} s to resolve (machine or index too slow)")
    assert isinstance(resolved, dict), resolved
    return resolved


@pytest.mark.network
@pytest.mark.parametrize("folder", SERVING_FOLDERS)
def test_serving_image_carries_no_training_package(package_index, folder: str):
    # Given a serving function's requirements
    # When pip resolves them for the image's platform
    resolved = resolve(folder)

    # Then nothing pulls in scikit-learn, scipy, skl2onnx, dppy or matplotlib
    assert not FORBIDDEN_ON_SERVING & set(resolved), sorted(FORBIDDEN_ON_SERVING & set(resolved))
    assert {"numpy", "onnxruntime"} <= set(resolved)


@pytest.mark.network
def test_profile_image_carries_the_training_stack(package_index):
    # Given the profile function's requirements
    # When pip resolves them for the image's platform
    resolved = resolve("functions/profile")

    # Then scikit-learn and the ONNX exporter are in it
    assert {"scikit-learn", "skl2onnx", "onnx", "onnxruntime"} <= set(resolved)


@pytest.mark.network
@pytest.mark.parametrize("folder", FOLDERS)
def test_image_resolves_to_the_locked_versions(package_index, folder: str):
    # Given what pip would install in the image
    resolved = resolve(folder)
    lock = lock_versions()

    # When each version is compared with the development lock
    drift = {
        name: (version, lock[name]) for name, version in resolved.items() if name in lock and lock[name] != version
    }
    unlocked = sorted(name for name in resolved if name not in lock)

    # Then the image runs exactly what the tests ran
    assert not drift and not unlocked, f"{folder}: drift {drift}, not in the lock {unlocked}"


def _installed_size(name: str, version: str) -> int | None:
    """Bytes the distribution takes in this environment, if the same version is installed here."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    if normalise(dist.version) != normalise(version):
        return None
    total = 0
    for file in dist.files or []:
        if file.size is not None:
            total += file.size
        else:
            path = Path(str(dist.locate_file(file)))
            total += path.stat().st_size if path.is_file() else 0
    return total


@pytest.mark.network
@pytest.mark.parametrize("folder", SERVING_FOLDERS)
def test_serving_image_dependencies_fit_the_size_budget(package_index, folder: str):
    # Given what pip would install in a serving image
    resolved = resolve(folder)

    # When their sizes are estimated from the same versions installed in this environment
    sizes = {name: _installed_size(name, version) for name, version in resolved.items()}
    unknown = sorted(name for name, size in sizes.items() if size is None)
    if unknown:
        pytest.skip(f"cannot estimate, not installed here at the image's version: {unknown}")
    total = sum(size for size in sizes.values() if size)

    # Then they stay under 200 MB (QUALITY.md)
    largest = sorted(sizes.items(), key=lambda item: -(item[1] or 0))[:5]
    breakdown = ", ".join(f"{name} {size / 2**20:.0f} MB" for name, size in largest if size)
    assert total < SERVING_BUDGET_BYTES, f"{folder}: {total / 2**20:.0f} MB ({breakdown}, ...)"
