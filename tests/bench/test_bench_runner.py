"""The benchmark runner cannot rot: `python -m bench.run --quick` gives every benchmark its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import run as runner

REPO = Path(__file__).resolve().parents[2]


def test_quick_run_writes_every_benchmarks_results_and_tables(tmp_path: Path) -> None:
    # Given every bench/bench_*.py and an empty results folder and README
    names = runner.discover()
    results, readme = tmp_path / "results", tmp_path / "README.md"

    # When the runner's quick version runs
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--results", str(results), "--readme", str(readme)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )

    # Then each benchmark wrote a stamped result with figures and tables, and the README shows them
    assert done.returncode == 0, done.stderr[-3000:]
    text = readme.read_text()
    for name in names:
        path = results / f"{name}.json"
        assert path.exists(), f"{name}: no result; {done.stderr[-2000:]}"
        result = json.loads(path.read_text())
        assert result["figures"], f"{name}: no figures"
        # A table may be empty where its data is absent (the real catalogue beside the checkout)
        assert result["tables"] and any(t["rows"] for t in result["tables"]), f"{name}: empty tables"
        assert result["quick"] is True and result["commit"] and result["date"] and result["machine"]["cpus"]
        assert f"### {name}" in text
