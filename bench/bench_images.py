"""What each image holds: its requirements installed into an empty folder, measured, and run alone.

For every code folder of the template: ``pip install --only-binary=:all: --target DIR -r
requirements.txt`` (this machine's Python; the images run 3.12, so sizes differ by a few MB),
cached under the temp dir by the hash of the requirements and the lock. Sizes: apparent (sum of
file sizes) and ``du`` (blocks), as installed and after the Dockerfile's own pruning (its
``rm -rf`` paths under /opt/deps, applied to a copy). Then the handler is imported and answers
one request in ``python -I -S`` (no site-packages at all) with only: the function's folder, the
shared package, the installed folder and, for images that do not install boto3, the boto3 stack
the Lambda base image provides (taken from this environment). Only profile may hold
scikit-learn (QUALITY.md); serving images must stay under 200 MB installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import fixtures

CACHE = Path(tempfile.gettempdir()) / "designer-ml-images"
BUDGET_MB = 200
TRAINING_FOLDERS = {"profile"}
FORBIDDEN = {"sklearn", "scipy", "skl2onnx", "dppy", "matplotlib"}
# What public.ecr.aws/lambda/python:3.12 carries besides the standard library (import names).
RUNTIME_BOTO = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six")
REQUESTS = {
    "MetaFunction": ("GET", "/health", None),
    "ValidateFunction": (
        "POST",
        "/api/ml/validate",
        {"images": [{"id": "a", "vlt": fixtures.TARGET}], "target_vlt": fixtures.TARGET},
    ),
    "SelectFunction": ("POST", "/api/ml/select/diverse", {"images": fixtures.images(6), "target_count": 2}),
    "OptimizeFunction": ("POST", "/api/ml/prompt/optimize", fixtures.request_body("OptimizeFunction", "nobody")),
    "FeedbackFunction": ("POST", "/api/ml/feedback/submit", fixtures.request_body("FeedbackFunction", "nobody")),
    "ProfileFunction": ("GET", "/api/ml/style-profile/nobody", None),
    "UsersFunction": ("GET", "/api/ml/users/nobody/export", None),
}
RUN_ALONE = r"""
import sys
sys.path[:0] = sys.argv[1].split("\x1f")
import importlib, json
module, attr, event_path = sys.argv[2:5]
handler = getattr(importlib.import_module(module), attr)

class Context:
    function_name = "image-run"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:image-run"
    aws_request_id = "image-run-1"
    def get_remaining_time_in_millis(self):
        return 29000

with open(event_path) as fh:
    result = handler(json.load(fh), Context())
outside = [m for m, mod in sys.modules.items() if getattr(mod, "__file__", None) and not any(
    str(mod.__file__).startswith(p) for p in sys.path[:len(sys.argv[1].split("\x1f"))] + [sys.base_prefix])]
print("IMAGE_RUN " + json.dumps({"status": result.get("statusCode"), "body": str(result.get("body"))[:300],
      "forbidden": sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "scipy", "skl2onnx", "dppy", "matplotlib"}),
      "outside": sorted(outside)[:10]}), flush=True)
"""


def requirements_of(folder: Path) -> str:
    return (folder / "requirements.txt").read_text(encoding="utf-8")


def install_target(folder: Path, cache: Path = CACHE) -> Path:
    """The folder's requirements installed into an empty directory (cached by content)."""
    digest = hashlib.sha256(
        (requirements_of(folder) + (fixtures.REPO / "requirements-dev.lock").read_text(encoding="utf-8")).encode()
    ).hexdigest()[:16]
    target = cache / f"{sys.version_info.major}{sys.version_info.minor}-{digest}"
    if (target / ".complete").exists():
        return target
    partial = Path(tempfile.mkdtemp(prefix="install-", dir=cache.mkdir(parents=True, exist_ok=True) or cache))
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--only-binary=:all:",
        "--target",
        str(partial),
        "-r",
        "requirements.txt",
    ]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(f"pip install for {folder.name} failed: {done.stderr[-2000:]}")
    (partial / ".complete").touch()
    try:
        partial.rename(target)
    except OSError:  # another process installed it meanwhile
        shutil.rmtree(partial, ignore_errors=True)
    return target


def size_of(root: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of every file under ``root``."""
    apparent = blocks = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            apparent += st.st_size
            blocks += st.st_blocks * 512
    return apparent, blocks


def pruned_paths(folder: Path) -> list[str]:
    """The ``rm -rf`` arguments under /opt/deps in the folder's Dockerfile (globs relative to it)."""
    text = (folder / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    paths: list[str] = []
    for match in re.finditer(r"rm -rf ([^&\n]+)", text):
        paths += [p.removeprefix("/opt/deps/") for p in match.group(1).split() if p.startswith("/opt/deps/")]
    return paths


def pruned_size(target: Path, patterns: list[str]) -> tuple[int, int]:
    apparent, blocks = size_of(target)
    seen: set[Path] = set()
    for pattern in patterns:
        for path in target.glob(pattern):
            if path in seen or not path.exists():
                continue
            seen.add(path)
            a, b = size_of(path) if path.is_dir() else (path.stat().st_size, path.stat().st_blocks * 512)
            apparent -= a
            blocks -= b
    return apparent, blocks


def runtime_boto(cache: Path = CACHE) -> Path:
    """A folder holding only what the Lambda base image adds: boto3 and its dependencies (links)."""
    import importlib

    folder = cache / f"runtime-boto-{sys.version_info.major}{sys.version_info.minor}"
    if folder.exists():
        return folder
    partial = Path(tempfile.mkdtemp(prefix="runtime-", dir=cache.mkdir(parents=True, exist_ok=True) or cache))
    for name in RUNTIME_BOTO:
        module = importlib.import_module(name)
        source = Path(module.__file__)
        source = source.parent if source.name == "__init__.py" else source
        (partial / source.name).symlink_to(source)
    try:
        partial.rename(folder)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def run_alone(spec: Any, target: Path, event: dict[str, Any], env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """Import the handler and answer ``event`` with only the image's folders on ``sys.path``."""
    paths = [str(spec.code_dir), str(target), str(fixtures.REPO / "layers")]
    if not (target / "boto3").exists():
        paths.append(str(runtime_boto()))
    event_path = workdir / f"{spec.logical_id}-event.json"
    event_path.write_text(json.dumps(event))
    command = [
        sys.executable,
        "-I",
        "-S",
        "-c",
        RUN_ALONE,
        "\x1f".join(paths),
        spec.handler_module,
        spec.handler_attr,
        str(event_path),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=workdir)
    for line in done.stdout.splitlines():
        if line.startswith("IMAGE_RUN "):
            return json.loads(line[len("IMAGE_RUN ") :])
    return {"status": None, "error": done.stderr[-1500:]}


def folders(be: fixtures.Backend) -> dict[str, Any]:
    """{code folder name: the spec of the function the folder's Dockerfile CMD serves}."""
    chosen: dict[str, Any] = {}
    for spec in be.specs.values():
        if spec.logical_id not in REQUESTS or not be.handler_exists(spec.logical_id):
            continue
        chosen.setdefault(spec.code_dir.name, spec)
    return chosen


def run(quick: bool = False) -> dict[str, Any]:
    rows: list[list[Any]] = []
    figures: dict[str, Any] = {}
    mb = 1024 * 1024
    with fixtures.backend() as be, tempfile.TemporaryDirectory() as tmp:
        for name, spec in sorted(folders(be).items()):
            if quick and name in TRAINING_FOLDERS:
                continue
            target = install_target(spec.code_dir)
            apparent, blocks = size_of(target)
            pruned_apparent, pruned_blocks = pruned_size(target, pruned_paths(spec.code_dir))
            carried = sorted(p.name for p in target.iterdir() if p.name in FORBIDDEN)
            method, path, body = REQUESTS[spec.logical_id]
            env = {**be.function_env(spec.logical_id), "PATH": os.environ.get("PATH", "")}
            answer = run_alone(spec, target, be.event(method, path, body), env, Path(tmp))
            serving = name not in TRAINING_FOLDERS
            rows.append(
                [
                    name,
                    round(apparent / mb, 1),
                    round(blocks / mb, 1),
                    round(pruned_apparent / mb, 1),
                    "yes" if (target / "boto3").exists() else "runtime's",
                    ", ".join(carried) or "none",
                    answer.get("status"),
                    ", ".join(answer.get("forbidden", [])) or "none",
                    f"< {BUDGET_MB}" if serving else "training",
                ]
            )
            figures[f"{name}_installed_mb"] = round(apparent / mb, 1)
            figures[f"{name}_du_mb"] = round(blocks / mb, 1)
            figures[f"{name}_pruned_mb"] = round(pruned_apparent / mb, 1)
            figures[f"{name}_run_status"] = answer.get("status")
            if answer.get("error"):
                be.notes.append(f"{name}: {answer['error'][-300:]}")
        serving_sizes = [r[1] for r in rows if r[0] not in TRAINING_FOLDERS]
        if serving_sizes:
            figures["max_serving_installed_mb"] = max(serving_sizes)
    return {
        "name": "images",
        "tables": [
            {
                "title": f"Image dependencies: pip install --target, Python {sys.version_info.major}.{sys.version_info.minor} "
                "(MB; pruned = after the Dockerfile's rm -rf), handler run alone from the folder",
                "columns": [
                    "function",
                    "installed (apparent)",
                    "installed (du)",
                    "pruned (apparent)",
                    "boto3",
                    "training packages",
                    "run status",
                    "forbidden modules loaded",
                    "bar",
                ],
                "rows": rows,
            },
            {"title": "Notes", "columns": ["note"], "rows": [[n] for n in be.notes] or [["none"]]},
        ],
        "figures": figures,
    }


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
