"""Stage 8 validation: off-style detection, wrong-spec rejection, warm latency, ONNX parity.

- Off-style, synthetic: portfolios of planted style modes (bench/bench_profile.py); in-style
  images are held-out records of the portfolio's modes, off-style images come from other
  modes. ROC AUC of ``outlier_score``, precision / recall of ``is_outlier``, in-style
  rejection rate; the seed's way side by side (an Isolation Forest, contamination 0.1, on the
  one-hot features of the portfolio: an unseen value is an all-zero column there).
- Off-style, real (H&M): what a "style mode" is in a catalogue we do not know, so several
  constructions, each by one ground-truth field: a designer-like portfolio from some values of
  the field (catalogue sections, garment groups, product types, product groups, index groups),
  in-style images held out from the same values, off-style images from records whose value of
  the field (or of a coarser field) is not among them. Next to each, a ceiling: a supervised
  random forest that *sees labelled off-style records* (cross-validated ROC AUC), i.e. how
  much the VLT attributes can tell these modes apart at all.
- Wrong spec: images equal to the target but for one attribute: rejection rate per attribute.
- Warm latency: 20 images through the handler in process, the model loaded from moto; the
  seed's way (fit an Isolation Forest on the batch per request) as reference.
- ONNX: export time of the mixture and its max parity difference on rows it never saw.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import fixtures  # noqa: E402
from bench.bench_profile import HM_PATH, planted_portfolio  # noqa: E402
from designer_ml.validation.novelty import NoveltyScorer, fit_novelty  # noqa: E402
from designer_ml.vlt import Vocabulary, parse_record  # noqa: E402
from local.runtime import LambdaContext, load_module  # noqa: E402

PATH = "/api/ml/validate"
STRIP = ("ground_truth", "text", "source")


# Per-portfolio figures averaged in the off-style tables (ours, then the seed's way).
SPLIT_METRICS = (
    "auc",
    "auc_frequency",
    "auc_mixture",
    "precision",
    "recall",
    "in_style_rejected",
    "seed_auc",
    "seed_precision",
    "seed_recall",
    "seed_in_style_rejected",
)


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def _pr(y: np.ndarray, flag: np.ndarray) -> tuple[float, float, float]:
    tp = float(np.sum(flag & (y == 1)))
    precision = tp / max(1.0, float(np.sum(flag)))
    recall = tp / max(1.0, float(np.sum(y == 1)))
    in_rate = float(np.mean(flag[y == 0]))
    return precision, recall, in_rate


def score_split(port: list[dict], ins: list[dict], offs: list[dict], seed: int) -> dict[str, float]:
    """Ours and the seed's way on one portfolio and its in-style / off-style images."""
    from sklearn.ensemble import IsolationForest

    parsed = [parse_record(r) for r in port]
    vocab = Vocabulary.fit(parsed)
    t0 = time.perf_counter()
    artifacts = fit_novelty(vocab, parsed, random_state=seed)
    fit_s = time.perf_counter() - t0
    scorer = NoveltyScorer.from_artifacts(vocab, artifacts)
    batch = vocab.transform(ins + offs)
    y = np.r_[np.zeros(len(ins)), np.ones(len(offs))].astype(int)
    ours = scorer.score(batch)
    freq_only = scorer.surprisal.score(batch.parsed).sum(axis=1)
    mixture_only = scorer.mixture_scores(batch)
    seed_forest = IsolationForest(contamination=0.1, random_state=42).fit(vocab.transform(parsed).X)
    seed_score = -seed_forest.score_samples(batch.X)
    seed_flag = seed_forest.predict(batch.X) == -1
    p, r, fpr = _pr(y, ours.is_outlier)
    sp, sr, sfpr = _pr(y, seed_flag)
    return {
        "auc": _auc(y, ours.raw),
        "auc_frequency": _auc(y, freq_only),
        "auc_mixture": _auc(y, mixture_only),
        "precision": p,
        "recall": r,
        "in_style_rejected": fpr,
        "seed_auc": _auc(y, seed_score),
        "seed_precision": sp,
        "seed_recall": sr,
        "seed_in_style_rejected": sfpr,
        "fit_s": fit_s,
        "parity": float(artifacts.calibration["parity_max_abs_diff"]),
    }


def synthetic_split(k_in: int, k_off: int, seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    recs, modes = planted_portfolio(k_in + k_off, seed, n_records=60 * (k_in + k_off))
    rng = np.random.default_rng(seed)
    inside = [i for i in range(len(recs)) if modes[i] < k_in]
    rng.shuffle(inside)
    cut = int(len(inside) * 0.75)
    port = [recs[i] for i in inside[:cut]]
    ins = [recs[i] for i in inside[cut:]]
    offs = [recs[i] for i in range(len(recs)) if modes[i] >= k_in][: len(ins)]
    return port, ins, offs


def _hm() -> list[dict[str, Any]]:
    if not HM_PATH.exists():
        return []
    with HM_PATH.open() as fh:
        return [json.loads(line) for line in fh]


# Real-data constructions: (label, field whose values are the modes, modes in the portfolio,
# field that must differ for an off-style record, least records a mode needs).
REAL_SPLITS: tuple[tuple[str, str, int, str, int], ...] = (
    ("2 sections vs other index groups", "section_name", 2, "index_group_name", 60),
    ("2 sections vs other sections", "section_name", 2, "section_name", 60),
    ("2 garment groups vs others", "garment_group_name", 2, "garment_group_name", 60),
    ("3 product types vs others", "product_type_name", 3, "product_type_name", 60),
    ("1 product group vs others", "product_group_name", 1, "product_group_name", 100),
    ("1 index group vs others", "index_group_name", 1, "index_group_name", 100),
)
# Catalogue placeholders that name no mode.
NOT_A_MODE = frozenset({"Unknown", "Special Offers"})


def hm_split(
    records: list[dict], field: str, k_in: int, off_field: str, min_count: int, seed: int
) -> tuple[list[dict], list[dict], list[dict], list[str]]:
    """Portfolio (at most 400) and in-style images (at most 100) from ``k_in`` values of ``field``;
    as many off-style images from records whose ``off_field`` value none of those records has."""
    by_value: dict[str, list[dict]] = {}
    for r in records:
        by_value.setdefault(r["ground_truth"][field], []).append(r)
    big = sorted(v for v, rs in by_value.items() if len(rs) >= min_count and v not in NOT_A_MODE)
    rng = np.random.default_rng(seed)
    chosen = [str(v) for v in rng.choice(big, k_in, replace=False)]
    pool = [r for v in chosen for r in by_value[v]]
    pool = [pool[i] for i in rng.permutation(len(pool))]
    cut = int(len(pool) * 0.7)
    port, ins = pool[:cut][:400], pool[cut:][:100]
    taken = {r["ground_truth"][off_field] for r in pool}
    others = [r for r in records if r["ground_truth"][off_field] not in taken]
    offs = [others[i] for i in rng.choice(len(others), len(ins), replace=False)]

    def strip(rs: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in STRIP} for r in rs]

    return strip(port), strip(ins), strip(offs), chosen


def supervised_ceiling(port: list[dict], ins: list[dict], offs: list[dict], trees: int = 200) -> float:
    """Cross-validated ROC AUC of a classifier trained on labelled in-style vs off-style records."""
    recs = port + ins + offs
    y = np.r_[np.zeros(len(port) + len(ins)), np.ones(len(offs))]
    return ceiling_of(Vocabulary.fit(recs).transform(recs).X, y, trees)


def ceiling_of(X: np.ndarray, y: np.ndarray, trees: int = 200) -> float:
    """Cross-validated ROC AUC of a random forest on feature rows ``X`` with labels ``y`` (1 = off-style)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_predict

    clf = RandomForestClassifier(trees, min_samples_leaf=2, random_state=0, class_weight="balanced")
    p = cross_val_predict(clf, X, y, cv=5, method="predict_proba")[:, 1]
    return _auc(y.astype(int), p)


def _mean(rows: list[dict], key: str) -> float:
    return round(float(np.mean([r[key] for r in rows])), 3)


OFF_COLUMNS = [
    "setup",
    "runs",
    "ROC AUC (ours)",
    "AUC frequency part",
    "AUC mixture part",
    "precision",
    "recall",
    "in-style rejected",
    "ROC AUC (seed way)",
    "seed precision",
    "seed recall",
    "seed in-style rejected",
    "supervised ceiling",
]


def off_style_synthetic(quick: bool) -> tuple[dict[str, Any], list[list[Any]], list[float], list[float]]:
    seeds = range(2 if quick else 10)
    rows, figures, parity, fits = [], {}, [], []
    all_runs: list[dict] = []
    for k_in, k_off in [(3, 2), (5, 2), (2, 3)]:
        runs = [score_split(*synthetic_split(k_in, k_off, s), seed=s) for s in seeds]
        all_runs += runs
        parity += [r["parity"] for r in runs]
        fits += [r["fit_s"] for r in runs]
        rows.append(
            [f"planted: {k_in} modes in, {k_off} off", len(runs)] + [_mean(runs, k) for k in SPLIT_METRICS] + [None]
        )
    figures.update(
        {
            "synthetic_auc": _mean(all_runs, "auc"),
            "synthetic_auc_min_setup": min(row[2] for row in rows),
            "synthetic_precision": _mean(all_runs, "precision"),
            "synthetic_recall": _mean(all_runs, "recall"),
            "synthetic_in_style_rejected": _mean(all_runs, "in_style_rejected"),
            "synthetic_seed_auc": _mean(all_runs, "seed_auc"),
        }
    )
    return figures, rows, parity, fits


def off_style_real(quick: bool) -> tuple[dict[str, Any], list[list[Any]], list[float]]:
    """Every real construction: quick, one portfolio each (smaller ceiling forests); else five."""
    records = _hm()
    if not records:
        return {}, [["H&M data not found", 0] + [None] * (len(OFF_COLUMNS) - 2)], []
    rows, per_split, parity = [], [], []
    for label, field, k_in, off_field, min_count in REAL_SPLITS:
        runs = []
        for s in range(1 if quick else 5):
            port, ins, offs, _ = hm_split(records, field, k_in, off_field, min_count, s)
            r = score_split(port, ins, offs, seed=s)
            r["ceiling"] = supervised_ceiling(port, ins, offs, trees=60 if quick else 200)
            runs.append(r)
        parity += [r["parity"] for r in runs]
        split = {k: _mean(runs, k) for k in SPLIT_METRICS + ("ceiling",)}
        per_split.append(split)
        rows.append([f"H&M: {label}", len(runs)] + [split[k] for k in SPLIT_METRICS + ("ceiling",)])
    mean = {k: round(float(np.mean([sp[k] for sp in per_split])), 3) for k in SPLIT_METRICS + ("ceiling",)}
    rows.append(
        [f"H&M: mean of the {len(per_split)} constructions", len(per_split)]
        + [mean[k] for k in SPLIT_METRICS + ("ceiling",)]
    )
    figures: dict[str, Any] = {
        "hm_auc": mean["auc"],
        "hm_seed_auc": mean["seed_auc"],
        "hm_supervised_ceiling_auc": mean["ceiling"],
        "hm_precision": mean["precision"],
        "hm_recall": mean["recall"],
        "hm_in_style_rejected": mean["in_style_rejected"],
        "hm_in_style_rejected_max_split": max(sp["in_style_rejected"] for sp in per_split),
        "hm_auc_min_split": min(sp["auc"] for sp in per_split),
        "hm_auc_max_split": max(sp["auc"] for sp in per_split),
        "hm_auc_minus_ceiling": round(mean["auc"] - mean["ceiling"], 3),
    }
    return figures, rows, parity


def wrong_spec(quick: bool) -> tuple[dict[str, Any], list[list[Any]]]:
    """Targets from planted records with every main slot set; images differ in exactly one slot."""
    from bench.bench_profile import POOLS
    from designer_ml.schemas import ImageIn, VLTRecord
    from designer_ml.validation.service import validate_images

    slots = [
        "garment_type",
        "attributes.silhouette",
        "attributes.neckline",
        "attributes.sleeveLength",
        "attributes.length",
        "colors.primary",
        "colors.finish",
        "style.overall",
        "style.mood",
    ]
    rng = np.random.default_rng(0)
    n_targets = 20 if quick else 100
    rejected = {s: 0 for s in slots}
    total = {s: 0 for s in slots}
    scores: dict[str, list[float]] = {s: [] for s in slots}
    exact_pass = 0
    for _ in range(n_targets):
        target: dict[str, Any] = {"attributes": {}, "colors": {}, "style": {}}
        for slot in slots:
            group, _, key = slot.partition(".")
            value = str(rng.choice(POOLS[slot]))
            if key:
                target[group][key] = value
            else:
                target[group] = value
        images = [ImageIn(id="same", vlt=target)]
        for slot in slots:
            group, _, key = slot.partition(".")
            current = target[group][key] if key else target[group]
            other = str(rng.choice([v for v in POOLS[slot] if v != current]))
            vlt = json.loads(json.dumps(target))
            if key:
                vlt[group][key] = other
            else:
                vlt[group] = other
            images.append(ImageIn(id=slot, vlt=vlt))
        answer = validate_images(images, VLTRecord(**target))
        exact_pass += not answer.validations[0].is_rejected
        for v in answer.validations[1:]:
            total[v.image_id] += 1
            rejected[v.image_id] += v.is_rejected
            scores[v.image_id].append(v.consistency_score)
    rows = [
        [slot, total[slot], round(rejected[slot] / total[slot], 3), round(float(np.mean(scores[slot])), 3)]
        for slot in slots
    ]
    rows.append(["(no attribute changed)", n_targets, round(1 - exact_pass / n_targets, 3), 1.0])
    figures = {
        "wrong_garment_rejected": rows[0][2],
        "exact_spec_rejected": rows[-1][2],
    }
    return figures, rows


def _moto_environment(prefix: str = "designer-ml-bench") -> Any:
    from local import cloud
    from local.backend import start_moto

    server, endpoint = start_moto()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
    )
    template = cloud.load_template(REPO / "template.yaml")
    physical = cloud.create_resources(template, endpoint, prefix=prefix)
    for spec in cloud.functions(template, physical):
        if spec.logical_id == "ValidateFunction":
            os.environ.update(spec.environment)
    return server


def _install_bundle_loader_if_missing() -> str:
    """The profile stage's bundle loader, or (until it exists) a stand-in doing the same reads.

    The stand-in reads the profile item (the version pointer, once per request) and the
    bundle's objects from S3 once per version, as docs/LAYOUT.md lays them out.
    """
    try:
        importlib.import_module("designer_ml.style.bundle")
        return "designer_ml.style.bundle"
    except ImportError:
        pass
    from designer_ml.onnx_models import cached_session

    cache: dict[str, Any] = {}

    class Bundle:
        def __init__(self, storage: Any, prefix: str, version: int):
            self.storage, self.prefix, self.version = storage, prefix, version
            key = prefix + "vocabulary.json"
            if key not in cache:
                cache[key] = Vocabulary.from_dict(storage.get_json(key))
            self.vocab = cache[key]

        def session(self, name: str) -> Any:
            return cached_session(self.prefix + name, lambda: self.storage.get_bytes(self.prefix + name))

        def json(self, name: str) -> Any:
            key = self.prefix + name
            if key not in cache:
                cache[key] = self.storage.get_json(key)
            return cache[key]

    def load_style_bundle(storage: Any, user_id: str) -> Any:
        item = storage.get_item(storage.profiles, {"user_id": user_id})
        if not item or "style_model" not in item:
            return None
        return Bundle(storage, item["style_model"]["prefix"], int(item["style_model"]["version"]))

    module = types.ModuleType("designer_ml.style.bundle")
    module.load_style_bundle = load_style_bundle  # type: ignore[attr-defined]
    sys.modules["designer_ml.style.bundle"] = module
    return "bench stand-in (designer_ml.style.bundle not written yet)"


def _store_profile(user_id: str, portfolio: list[dict]) -> None:
    from designer_ml.storage import get_storage

    storage = get_storage()
    parsed = [parse_record(r) for r in portfolio]
    vocab = Vocabulary.fit(parsed)
    artifacts = fit_novelty(vocab, parsed)
    prefix = f"models/{user_id}/style/v1/"
    storage.put_json(prefix + "vocabulary.json", vocab.to_dict())
    storage.put_bytes(prefix + "novelty.onnx", artifacts.onnx_bytes)
    storage.put_json(prefix + "novelty.json", artifacts.calibration)
    storage.put_item(
        storage.profiles,
        {"user_id": user_id, "version": 1, "document": "{}", "style_model": {"version": 1, "prefix": prefix}},
    )


def _context() -> LambdaContext:
    return LambdaContext("validate", memory_limit_in_mb=1024, timeout_s=29, aws_request_id="bench")


def _event(body: dict[str, Any]) -> dict[str, Any]:
    return fixtures.api_event("POST", PATH, body)


def latency(quick: bool) -> tuple[dict[str, Any], list[list[Any]]]:
    from sklearn.ensemble import IsolationForest

    from designer_ml.storage import reset_for_tests

    server = _moto_environment()
    try:
        reset_for_tests()
        loader = _install_bundle_loader_if_missing()
        port, ins, offs = synthetic_split(3, 2, 0)
        profile_fn = REPO / "functions" / "profile" / "app.py"
        if loader == "designer_ml.style.bundle" and profile_fn.exists():
            handler = _load("bench_validate_profile_app", profile_fn)
            created = handler(
                _event_at("/api/ml/style-profile/create", {"user_id": "bench", "vlt_records": port}), _context()
            )
            assert created["statusCode"] == 201, created["body"][:500]
            stored_by = "ProfileFunction"
        else:
            _store_profile("bench", port)
            stored_by = "fit_novelty + Storage (as LAYOUT.md lays out the bundle)"
        handler = _load("bench_validate_app", REPO / "functions" / "validate" / "app.py")
        target = {k: v for k, v in ins[0].items() if k in ("garment_type", "attributes", "colors", "style")}
        images = [{"id": f"img{i}", "vlt": r, "url": f"https://cdn/{i}.png"} for i, r in enumerate((ins + offs)[:20])]
        event = _event({"generation_id": "g", "images": images, "target_vlt": target, "user_id": "bench"})
        first = handler(event, _context())
        body = json.loads(first["body"])
        assert first["statusCode"] == 200 and body["summary"]["style_checked"], first["body"][:500]
        calls = 50 if quick else 200
        for _ in range(10):
            handler(event, _context())
        wall, cpu = [], []
        for _ in range(calls):
            w, c = time.perf_counter(), time.process_time()
            handler(event, _context())
            wall.append((time.perf_counter() - w) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        no_user = _event({"generation_id": "g", "images": images, "target_vlt": target})
        plain = []
        for _ in range(calls):
            w = time.perf_counter()
            handler(no_user, _context())
            plain.append((time.perf_counter() - w) * 1000)
        # The seed's way: encode the batch and fit an Isolation Forest on it, per request.
        vocab = Vocabulary.fit([parse_record(r) for r in port])
        seed_ms = []
        for _ in range(5 if quick else 20):
            w = time.perf_counter()
            X = vocab.transform([parse_record(i["vlt"]) for i in images]).X
            IsolationForest(contamination=0.1, random_state=42).fit_predict(np.vstack([X[:1], X]))
            seed_ms.append((time.perf_counter() - w) * 1000)
    finally:
        server.stop()
        reset_for_tests()

    def pct(values: list[float], q: float) -> float:
        return round(float(np.percentile(values, q)), 2)

    rows = [
        ["ours, through the handler, user with profile (wall)", calls, pct(wall, 50), pct(wall, 99)],
        ["ours, through the handler, user with profile (CPU)", calls, pct(cpu, 50), pct(cpu, 99)],
        ["ours, through the handler, no user_id (consistency only)", calls, pct(plain, 50), pct(plain, 99)],
        [
            "seed way: Isolation Forest fitted per request, library only",
            len(seed_ms),
            pct(seed_ms, 50),
            pct(seed_ms, 99),
        ],
        [f"bundle loader: {loader}; profile stored by {stored_by}", None, None, None],
    ]
    figures = {
        "warm_20_images_p50_ms": rows[0][2],
        "warm_20_images_p99_ms": rows[0][3],
        "warm_20_images_cpu_p50_ms": rows[1][2],
        "warm_20_images_no_user_p50_ms": rows[2][2],
        "seed_way_20_images_p50_ms": rows[3][2],
    }
    return figures, rows


def _load(name: str, path: Path) -> Any:
    return load_module(path.parent, path.stem, name).lambda_handler


def _event_at(path: str, body: dict[str, Any]) -> dict[str, Any]:
    event = _event(body)
    event.update(path=path, resource=path)
    event["requestContext"]["resourcePath"] = path
    return event


def export(quick: bool) -> tuple[dict[str, Any], list[list[Any]]]:
    """Export time of the mixture and its parity on rows the portfolio never held."""
    from designer_ml.onnx_models import check_parity
    from designer_ml.validation.novelty import MixtureLayout, fit_mixture, mixture_to_onnx, n_components

    port, ins, offs = synthetic_split(3, 2, 1)
    vocab = Vocabulary.fit(port)
    layout = MixtureLayout(vocab)
    train = layout.features([parse_record(r) for r in port])
    rows_new = layout.features([parse_record(r) for r in ins + offs])
    k = n_components(len(port))
    t = time.perf_counter()
    mixture = fit_mixture(layout, train, k, seed=0)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    ours = mixture_to_onnx(mixture)
    ours_s = time.perf_counter() - t
    ours_diff = check_parity(ours, rows_new, mixture.neg_log_likelihood(rows_new), output="scores")
    rows = [
        [
            f"mixture, {k} components, {layout.width} columns",
            len(port),
            round(fit_s, 3),
            round(ours_s, 4),
            f"{ours_diff:.2e}",
        ]
    ]
    figures = {
        "export_s": round(ours_s, 4),
        "mixture_fit_s": round(fit_s, 3),
        "parity_max_abs_diff_new_rows": ours_diff,
    }
    return figures, rows


def run(quick: bool = False) -> dict[str, Any]:
    tables: list[dict[str, Any]] = []
    figures: dict[str, Any] = {}
    syn_figures, syn_rows, parity, fits = off_style_synthetic(quick)
    real_figures, real_rows, real_parity = off_style_real(quick)
    figures.update(syn_figures)
    figures.update(real_figures)
    tables.append(
        {
            "title": "Off-style detection (outlier_score ROC AUC; is_outlier precision / recall)",
            "columns": OFF_COLUMNS,
            "rows": syn_rows + real_rows,
        }
    )
    spec_figures, spec_rows = wrong_spec(quick)
    figures.update(spec_figures)
    tables.append(
        {
            "title": "Wrong spec: images differing from the target in one attribute (threshold 0.6)",
            "columns": ["changed attribute", "images", "rejection rate", "mean consistency_score"],
            "rows": spec_rows,
        }
    )
    lat_figures, lat_rows = latency(quick)
    figures.update(lat_figures)
    tables.append(
        {
            "title": "Warm latency, 20 images, in process (ms)",
            "columns": ["path", "calls", "p50", "p99"],
            "rows": lat_rows,
        }
    )
    exp_figures, exp_rows = export(quick)
    figures.update(exp_figures)
    figures["parity_max_abs_diff"] = max(parity + real_parity + [exp_figures["parity_max_abs_diff_new_rows"]])
    figures["fit_novelty_median_s"] = round(float(np.median(fits)), 3)
    tables.append(
        {
            "title": "ONNX export of the off-style mixture",
            "columns": ["model", "portfolio records", "EM fit s", "export s", "max abs diff vs numpy (new rows)"],
            "rows": exp_rows,
        }
    )
    return {"name": "validate", "tables": tables, "figures": figures}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
