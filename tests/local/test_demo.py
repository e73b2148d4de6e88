"""make demo: one designer's journey against a local server the demo starts, written up as HTML."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "demo" / "run.py"


def _demo_module():
    spec = importlib.util.spec_from_file_location("demo_run", RUN)
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_run"] = module
    spec.loader.exec_module(module)
    return module


def test_a_short_demo_writes_a_self_contained_report(tmp_path: Path):
    # Given no ML_SERVICE_URL: the demo starts (and stops) a local server itself, as make demo does
    env = {k: v for k, v in os.environ.items() if k not in ("ML_SERVICE_URL", "ML_API_KEY", "API_KEY")}
    env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    report = tmp_path / "report.html"

    # When a four-round journey runs, retraining every two rounds
    done = subprocess.run(
        [
            sys.executable,
            str(RUN),
            "--rounds",
            "4",
            "--retrain-every",
            "2",
            "--retrain-timeout",
            "20",
            "--out",
            str(report),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    demo = _demo_module()
    if done.returncode == demo.EXIT_ROUTES_MISSING:
        pytest.skip(done.stderr.strip().splitlines()[-1])

    # Then it succeeds and the report holds every section, with its pictures, inline
    assert done.returncode == 0, done.stderr[-3000:]
    text = report.read_text()
    for section in ("style-modes", "learning-curve", "validation", "selection", "calls"):
        assert f'<section id="{section}">' in text
    assert 'aria-label="portfolio projection"' in text and 'aria-label="like rate by round"' in text
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", text)
    assert "random prompts" in text
    assert "wrote" in done.stderr


def test_the_baseline_scores_style_phrases_not_the_garment_description():
    # Given a prompt whose garment description shares no keyword with the hidden preference
    demo = _demo_module()
    spec = {"garment_type": "dress", "attributes": {"silhouette": "A-line"}, "colors": {"primary": "black"}}
    prompt = "8k resolution, full body, black a-line dress, soft natural window light, gentle shadows"

    # When the prompt's style phrases are taken out and scored
    phrases = demo.phrase_segments(prompt, spec)

    # Then the description is left out and the liked and disliked phrases count once each
    assert phrases == ["8k resolution", "full body", "soft natural window light", "gentle shadows"]
    expected = demo.HIDDEN_PREFERENCE["8k resolution"] + demo.HIDDEN_PREFERENCE["soft natural window light"]
    expected += demo.HIDDEN_PREFERENCE["gentle shadows"]
    assert demo.utility(phrases) == pytest.approx(expected)
    assert demo.like_probability(phrases, on_target=False) < demo.like_probability(phrases, on_target=True)


def test_simulated_images_keep_their_truth_client_side_and_are_reproducible():
    # Given a spec and the records of its style mode
    demo = _demo_module()
    portfolio = demo.load_portfolio(demo.DEFAULT_PORTFOLIO)
    spec = demo.make_spec(portfolio[0], 1)

    # When two generators with one seed make a round of images
    first = demo.generate_images(spec, portfolio[:10], 1, 60, demo.random.Random(3))
    second = demo.generate_images(spec, portfolio[:10], 1, 60, demo.random.Random(3))

    # Then they agree, every image has an id, a VLT and a quality, and some miss the spec or style
    assert first == second
    assert {image["_kind"] for image in first} == {"on", "wrong_garment", "wrong_colour", "off_style"}
    for image in first:
        assert image["vlt"] and 0 <= image["quality_score"] <= 1
    assert len({image["id"] for image in first}) == 60
