"""Writes no_embedding_baseline.json: what the style model, the off-style model and the DPP
selection give on fixed inputs without embeddings. Generated once on main (commit f69f9a4,
before embeddings existed); test_no_embedding_unchanged.py checks the code still gives exactly this.

    .venv/bin/python -m tests.embedding.make_baseline
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.fixtures import TARGET, images, portfolio
from designer_ml.selection.dpp import greedy_rounds
from designer_ml.selection.kernel import build_kernel
from designer_ml.style.fit import export_onnx, fit_style
from designer_ml.validation.novelty import NoveltyScorer, fit_novelty
from designer_ml.vlt import Vocabulary, parse_record

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "no_embedding_baseline.json"


def inputs() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return portfolio(80, seed=3, modes=4), images(40, seed=5)


def compute() -> dict[str, Any]:
    records, pool = inputs()
    parsed = [parse_record(r) for r in records]
    model = fit_style(parsed)
    onnx_bytes, _ = export_onnx(model, {"user_id": "baseline"})
    from designer_ml.onnx_models import make_session, run

    onnx_probabilities = run(make_session(onnx_bytes), model.X, "probabilities")
    vocab = Vocabulary.fit(parsed)
    scorer = NoveltyScorer.from_artifacts(vocab, fit_novelty(vocab, parsed, random_state=0))
    novelty = scorer.score(vocab.transform([parse_record(i["vlt"]) for i in pool] + [parse_record(TARGET)]))
    kernel = build_kernel(
        [parse_record(i["vlt"]) for i in pool], np.array([i["quality_score"] for i in pool]), 0.7, 0.3
    )
    chosen = greedy_rounds(kernel.features, kernel.log_quality, 10)
    return {
        "style": {
            "n_clusters": model.n_clusters,
            "components": model.components.tolist(),
            "probabilities": np.round(model.probabilities, 6).tolist(),
            "onnx_probabilities": np.round(onnx_probabilities.astype(np.float64), 5).tolist(),
            "n_features": int(model.X.shape[1]),
            "pca_components": int(model.pca.n_components_),
        },
        "novelty": {"raw": np.round(novelty.raw, 6).tolist(), "is_outlier": novelty.is_outlier.tolist()},
        "select": {
            "order": chosen.order.tolist(),
            "novelty": np.round(chosen.novelty, 6).tolist(),
            "n_features": int(kernel.features.shape[1]),
        },
    }


if __name__ == "__main__":
    BASELINE.write_text(json.dumps(compute(), indent=1) + "\n")
    print(f"wrote {BASELINE}")
