"""Image embeddings beside the VLT attributes: style modes, off-style detection, diverse selection.

Real catalogue data (the H&M records of ../shared/data) with a **stand-in embedding**: the
records' free-text product descriptions embedded by TF-IDF + truncated SVD (scikit-learn,
64 dimensions, fitted here on all the descriptions, unsupervised; rows unit-normalised). It is
not an image embedding: it stands in for one because it carries what the sparse keyword
attributes miss (the attributes were extracted from the same text, so it also repeats them).
No figure here says how a real image embedding would do.

Side by side, on the same portfolios and images: attributes only (the service without
embeddings), embedding only, and fused (the service with embeddings):

- style modes: ARI against ``section_name`` on 3-5-section portfolios (as bench_profile), and
  against ``product_type_name`` where the attributes already work;
- off-style: ROC AUC on every real construction of bench_validate, each beside the supervised
  ceiling (a random forest, cross-validated) of the same feature set;
- selection: 20 of 200, coverage of the pool's attribute values and of its sections and product
  types, against random subsets of the same size.

    python -m bench.run --only embedding [--quick]
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from bench.bench_profile import HM_PATH, hm_portfolios, hm_records  # noqa: E402
from bench.bench_validate import REAL_SPLITS, _auc, ceiling_of, hm_split  # noqa: E402
from designer_ml.embedding import embedding_matrix, unit_rows  # noqa: E402
from designer_ml.selection import coverage  # noqa: E402
from designer_ml.selection.dpp import greedy_rounds  # noqa: E402
from designer_ml.selection.kernel import DiversityKernel, build_kernel, quality_alpha  # noqa: E402
from designer_ml.validation.novelty import NoveltyScorer, fit_novelty  # noqa: E402
from designer_ml.vlt import Vocabulary, parse_record  # noqa: E402

DIM = 64


def text_embeddings(records: list[dict[str, Any]], dim: int = DIM) -> dict[str, list[float]]:
    """id -> the stand-in embedding of the record's description (TF-IDF + truncated SVD, unit rows)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [r.get("text") or "" for r in records]
    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2, stop_words="english").fit_transform(texts)
    Z = TruncatedSVD(dim, random_state=0).fit_transform(tfidf)
    Z /= np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
    return {str(r["id"]): [float(v) for v in row] for r, row in zip(records, Z, strict=True)}


def _with(records: list[dict[str, Any]], table: dict[str, list[float]]) -> list[dict[str, Any]]:
    return [dict(r, embedding=table[str(r["id"])]) for r in records]


# --- style modes ------------------------------------------------------------------------------


def embedding_only_modes(E: np.ndarray) -> np.ndarray:
    """The style model's recipe (parallel-analysis PCA, diagonal mixture, k by BIC over 3..7) on E alone."""
    from designer_ml.style.fit import K_MAX, K_MIN, REG_COVAR_SHARE, choose_pca, gaussian_mixture

    pca = choose_pca(E)
    Z = pca.transform(E)
    reg = REG_COVAR_SHARE * max(float(np.mean(np.var(Z, axis=0))), 1e-6)
    fits = [gaussian_mixture(Z, k, reg, 0) for k in range(K_MIN, K_MAX + 1)]
    return min(fits, key=lambda g: g.bic(Z)).predict(Z)


def style_modes(table: dict[str, list[float]], n_portfolios: int) -> tuple[dict[str, Any], list[list[Any]]]:
    from sklearn.metrics import adjusted_rand_score

    from designer_ml.style.fit import fit_style

    rows, figures = [], {}
    for field, label in (("section_name", "sections"), ("product_type_name", "product types")):
        scores: dict[str, list[float]] = {"attributes": [], "embedding": [], "fused": []}
        for records, truth in hm_portfolios(n_portfolios, seed=0, field=field):
            parsed = [parse_record(r) for r in records]
            E = embedding_matrix(_with(records, table))
            scores["attributes"].append(adjusted_rand_score(truth, fit_style(parsed).components))
            scores["embedding"].append(adjusted_rand_score(truth, embedding_only_modes(E)))
            scores["fused"].append(adjusted_rand_score(truth, fit_style(parsed, embeddings=E).components))
        mean = {k: round(float(np.mean(v)), 3) for k, v in scores.items()}
        wins = float(np.mean(np.array(scores["fused"]) > np.array(scores["attributes"])))
        rows.append([label, n_portfolios, mean["attributes"], mean["embedding"], mean["fused"], round(wins, 3)])
        for k, v in mean.items():
            figures[f"ari_{field}_{k}"] = v
    return figures, rows


# --- off-style --------------------------------------------------------------------------------


def off_style_split(port: list[dict], ins: list[dict], offs: list[dict], seed: int, trees: int) -> dict[str, float]:
    parsed = [parse_record(r) for r in port]
    vocab = Vocabulary.fit(parsed)
    images = ins + offs
    y = np.r_[np.zeros(len(ins)), np.ones(len(offs))].astype(int)
    batch = vocab.transform(images)
    E_port, E_img = embedding_matrix(port), embedding_matrix(images)
    attributes = NoveltyScorer.from_artifacts(vocab, fit_novelty(vocab, parsed, random_state=seed))
    fused = NoveltyScorer.from_artifacts(vocab, fit_novelty(vocab, parsed, random_state=seed, embeddings=E_port))
    recs = port + images
    labels = np.r_[np.zeros(len(port) + len(ins)), np.ones(len(offs))]
    X_attr = Vocabulary.fit(recs).transform(recs).X
    E_all = embedding_matrix(recs)
    return {
        "attributes": _auc(y, attributes.score(batch).raw),
        "embedding": _auc(y, fused.embedding_z(E_img, len(images))),
        "fused": _auc(y, fused.score(batch, E_img).raw),
        "ceiling_attributes": ceiling_of(X_attr, labels, trees),
        "ceiling_embedding": ceiling_of(E_all, labels, trees),
        "ceiling_fused": ceiling_of(np.hstack([X_attr, E_all]), labels, trees),
        "in_style_rejected_fused": float(np.mean(fused.score(batch, E_img).is_outlier[y == 0])),
        "parity": float(fused.cal["embedding"]["parity_max_abs_diff"]),
    }


OFF_KEYS = (
    "attributes",
    "embedding",
    "fused",
    "ceiling_attributes",
    "ceiling_embedding",
    "ceiling_fused",
    "in_style_rejected_fused",
)


def off_style(
    table: dict[str, list[float]], records: list[dict], quick: bool
) -> tuple[dict[str, Any], list[list[Any]]]:
    rows, figures, per_split = [], {}, []
    for label, field, k_in, off_field, min_count in REAL_SPLITS:
        runs = []
        for s in range(1 if quick else 5):
            port, ins, offs, _ = hm_split(records, field, k_in, off_field, min_count, s)
            runs.append(
                off_style_split(_with(port, table), _with(ins, table), _with(offs, table), s, 60 if quick else 200)
            )
        mean = {k: round(float(np.mean([r[k] for r in runs])), 3) for k in OFF_KEYS}
        per_split.append(mean)
        rows.append([label, len(runs)] + [mean[k] for k in OFF_KEYS])
        figures[f"parity_max_{field}_{k_in}"] = max(r["parity"] for r in runs)
    overall = {k: round(float(np.mean([sp[k] for sp in per_split])), 3) for k in OFF_KEYS}
    rows.append([f"mean of the {len(per_split)} constructions", len(per_split)] + [overall[k] for k in OFF_KEYS])
    figures.update({f"off_style_{k}": v for k, v in overall.items()})
    figures["off_style_fused_minus_attributes_min_split"] = round(
        min(sp["fused"] - sp["attributes"] for sp in per_split), 3
    )
    return figures, rows


# --- selection --------------------------------------------------------------------------------


def _cover(pool: list[dict], parsed: list[Any], chosen: list[int], measure: str) -> float:
    """Share of the pool's attribute values, or of its distinct ground-truth ``measure`` values, in ``chosen``."""
    if measure == "attribute values":
        return coverage.attribute_coverage(parsed, chosen)
    return len({pool[i]["ground_truth"][measure] for i in chosen}) / len({r["ground_truth"][measure] for r in pool})


def selection(
    table: dict[str, list[float]], records: list[dict], quick: bool
) -> tuple[dict[str, Any], list[list[Any]]]:
    rng = np.random.default_rng(1)
    n_pools, n_random = (4, 200) if quick else (20, 1000)
    measures = ("attribute values", "section_name", "product_type_name")
    results: dict[str, dict[str, list[float]]] = {}
    random_means: dict[str, list[float]] = {m: [] for m in measures}
    for _ in range(n_pools):
        pool = [records[i] for i in rng.choice(len(records), 200, replace=False)]
        parsed = [parse_record(r) for r in pool]
        quality = rng.random(200)
        E = embedding_matrix(_with(pool, table))
        attr = build_kernel(parsed, quality, 0.7, 0.3)
        fused = build_kernel(parsed, quality, 0.7, 0.3, embeddings=E)
        emb = DiversityKernel(unit_rows(E), attr.quality, quality_alpha(0.7, 0.3), [], attr.vocabulary)
        subsets = [rng.choice(200, 20, replace=False).tolist() for _ in range(n_random)]
        for measure in measures:
            random_means[measure].append(float(np.mean([_cover(pool, parsed, c, measure) for c in subsets])))
            for name, kernel in (("attributes", attr), ("embedding", emb), ("fused", fused)):
                chosen = greedy_rounds(kernel.features, kernel.log_quality, 20).order.tolist()
                results.setdefault(measure, {}).setdefault(name, []).append(_cover(pool, parsed, chosen, measure))
    rows, figures = [], {}
    for measure in measures:
        mean = {k: round(float(np.mean(v)), 4) for k, v in results[measure].items()}
        rnd = round(float(np.mean(random_means[measure])), 4)
        rows.append([measure, n_pools, rnd, mean["attributes"], mean["embedding"], mean["fused"]])
        figures.update({f"coverage_{measure.replace(' ', '_')}_{k}": v for k, v in mean.items()})
        figures[f"coverage_{measure.replace(' ', '_')}_random"] = rnd
    return figures, rows


def run(quick: bool = False) -> dict[str, Any]:
    if not HM_PATH.exists():
        # A checkout without ../shared/data (the other benchmarks skip their real-data parts too).
        note = f"no H&M records at {HM_PATH}: nothing measured"
        return {
            "name": "embedding",
            "tables": [{"title": "Not run", "columns": ["note"], "rows": [[note]]}],
            "figures": {"hm_records": 0},
        }
    records = hm_records()
    table = text_embeddings(records)
    tables, figures = [], {"embedding_dim": DIM, "embedding": "stand-in: TF-IDF + truncated SVD of the descriptions"}
    f, rows = style_modes(table, 4 if quick else 20)
    figures.update(f)
    tables.append(
        {
            "title": (
                f"Style modes on H&M portfolios (300 records of 3-5 values), mean ARI; stand-in embedding: "
                f"TF-IDF + SVD({DIM}) of the descriptions"
            ),
            "columns": [
                "portfolio of",
                "portfolios",
                "attributes only",
                "embedding only",
                "fused",
                "fused > attributes",
            ],
            "rows": rows,
        }
    )
    f, rows = off_style(table, records, quick)
    figures.update(f)
    tables.append(
        {
            "title": "Off-style ROC AUC on the real constructions of bench_validate, with each feature set's supervised ceiling",
            "columns": [
                "split",
                "runs",
                "attributes only",
                "embedding only",
                "fused",
                "ceiling attributes",
                "ceiling embedding",
                "ceiling fused",
                "fused: in-style rejected",
            ],
            "rows": rows,
        }
    )
    f, rows = selection(table, records, quick)
    figures.update(f)
    tables.append(
        {
            "title": "Selection, 20 of 200 H&M records (greedy MAP, weights 0.7 / 0.3): share of the pool covered",
            "columns": ["coverage of", "pools", "random subsets (mean)", "attributes only", "embedding only", "fused"],
            "rows": rows,
        }
    )
    return {"name": "embedding", "tables": tables, "figures": figures}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv)["figures"], indent=2))
