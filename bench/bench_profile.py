"""Style profiles (stage 2): planted modes recovered, ids kept on update, time by size, real data.

Planted-mode portfolios (3 to 7 modes, 20 seeds) are as messy as real analyser output: a mode is
a prototype (one or two typical values per slot), a record takes each slot from it most of the
time and from the whole pool otherwise; slots and whole groups missing or null at rates like the
H&M analyser output, case/hyphen/spacing variants, list values, extra keys with no style signal
(``confidence`` numbers, ``source``), modes of unequal size that may share values. The service
never reads this generator. Every figure is set beside "the seed's way" (plain one-hot, PCA(10),
GaussianMixture, no weighting; k by BIC over the same range) on the same data, in the same run.

    python bench/bench_profile.py [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

# The service logs one line per stored profile; keep the JSON on stdout readable.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
POOLS: dict[str, list[str]] = {
    "garment_type": [
        "dress",
        "top",
        "blouse",
        "shirt",
        "pants",
        "jeans",
        "skirt",
        "jacket",
        "coat",
        "blazer",
        "knitwear",
        "jumpsuit",
        "shorts",
        "t-shirt",
    ],
    "attributes.silhouette": [
        "A-line",
        "fitted",
        "oversized",
        "straight",
        "wrap",
        "bodycon",
        "relaxed",
        "boxy",
        "flared",
        "slim",
        "wide leg",
        "tapered",
        "empire",
        "shift",
    ],
    "attributes.neckline": [
        "V-neck",
        "crew neck",
        "scoop",
        "square",
        "halter",
        "boat neck",
        "turtleneck",
        "off-shoulder",
        "collared",
        "sweetheart",
        "cowl",
    ],
    "attributes.sleeveLength": ["sleeveless", "short", "long", "three-quarter", "cap", "puff"],
    "attributes.length": ["mini", "midi", "maxi", "knee", "cropped", "ankle", "hip"],
    "colors.primary": [
        "black",
        "white",
        "Navy Blue",
        "red",
        "burgundy",
        "beige",
        "camel",
        "olive",
        "pink",
        "emerald",
        "grey",
        "cream",
        "mustard",
        "lavender",
        "cobalt",
    ],
    "colors.finish": ["matte", "satin", "glossy", "metallic", "sheer", "textured", "velvet"],
    "style.overall": [
        "elegant",
        "minimalist",
        "romantic",
        "edgy",
        "bohemian",
        "streetwear",
        "classic",
        "sporty",
        "avant-garde",
        "preppy",
        "casual",
    ],
    "style.mood": ["sophisticated", "playful", "bold", "serene", "dramatic", "relaxed", "confident", "whimsical"],
    "fabric": ["silk", "cotton", "linen", "denim", "wool", "leather", "chiffon", "jersey", "tweed"],
    "pattern": ["solid", "floral", "striped", "plaid", "polka dot", "animal print"],
}
DETAILS = ["pleats", "belt", "buttons", "ruffles", "embroidery", "pockets", "lace", "zipper", "sequins", "bow"]
# Share of records where the analyser left a slot out (real output is sparse: see data/README.md).
MISSING = {
    "garment_type": 0.05,
    "attributes.silhouette": 0.45,
    "attributes.neckline": 0.45,
    "attributes.sleeveLength": 0.4,
    "attributes.length": 0.6,
    "colors.primary": 0.1,
    "colors.finish": 0.6,
    "style.overall": 0.25,
    "style.mood": 0.45,
    "fabric": 0.6,
    "pattern": 0.6,
}
# Share of a mode's records whose slot value comes from the mode's prototype (else: any value).
FIDELITY = 0.8
# The real catalogue lies beside every checkout (../shared/data), never inside it.
HM_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "hm_garments.jsonl"


def _variant(value: str, rng: np.random.Generator) -> str:
    """A spelling the analyser might emit for ``value`` (case, hyphens, spaces)."""
    roll = rng.random()
    if roll < 0.15:
        return value.upper()
    if roll < 0.3:
        return value.title()
    if roll < 0.4:
        return value.replace("-", " ").replace(" ", "-") if " " in value or "-" in value else f" {value} "
    return value


def _prototype(rng: np.random.Generator) -> dict[str, list[str]]:
    proto: dict[str, list[str]] = {}
    for slot, pool in POOLS.items():
        n_typical = 1 if rng.random() < 0.6 else 2
        proto[slot] = list(rng.choice(pool, size=n_typical, replace=False))
    proto["details"] = list(rng.choice(DETAILS, size=2, replace=False))
    return proto


def _set(record: dict[str, Any], slot: str, value: Any) -> None:
    if "." in slot:
        group, key = slot.split(".", 1)
        if not isinstance(record.get(group), dict):
            record[group] = {}
        record[group][key] = value
    else:
        record[slot] = value


def _record(rid: str, proto: dict[str, list[str]], rng: np.random.Generator) -> dict[str, Any]:
    record: dict[str, Any] = {"id": rid, "garment_type": None, "attributes": {}, "colors": {}, "style": {}}
    for slot, pool in POOLS.items():
        if rng.random() < MISSING[slot]:
            if rng.random() < 0.5:
                _set(record, slot, rng.choice([None, "", "unknown"]))
            continue
        if rng.random() < FIDELITY:
            value = str(rng.choice(proto[slot]))
        else:
            value = str(rng.choice(pool))
        _set(record, slot, _variant(value, rng))
    if rng.random() < 0.4:
        pool = proto["details"] if rng.random() < FIDELITY else DETAILS
        record["details"] = [str(v) for v in rng.choice(pool, size=int(rng.integers(1, 3)), replace=False)]
    if rng.random() < 0.7:
        record["confidence"] = round(float(rng.uniform(0.4, 1.0)), 2)
    if rng.random() < 0.2:
        record["source"] = str(rng.choice(["upload", "instagram", "lookbook"]))
    for group in ("attributes", "colors", "style"):
        if rng.random() < 0.05:
            record[group] = None
        elif rng.random() < 0.05:
            record.pop(group, None)
    return record


def planted_portfolio(n_modes: int, seed: int, n_records: int | None = None) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Records of ``n_modes`` planted modes and the planted mode of each (shape (n,))."""
    rng = np.random.default_rng(seed)
    n = int(n_records if n_records is not None else rng.integers(40, 70) * n_modes)
    shares = rng.dirichlet(np.full(n_modes, 4.0))
    shares = np.maximum(shares, 0.5 / n_modes)
    shares /= shares.sum()
    protos = [_prototype(rng) for _ in range(n_modes)]
    modes = rng.choice(n_modes, size=n, p=shares)
    records = [_record(f"r{seed}-{i}", protos[m], rng) for i, m in enumerate(modes)]
    return records, modes


def more_records(n_modes: int, seed: int, n_new: int, start: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``n_new`` further records from the same planted modes as ``planted_portfolio(n_modes, seed)``."""
    rng = np.random.default_rng(seed)
    rng.integers(40, 70)
    shares = rng.dirichlet(np.full(n_modes, 4.0))
    shares = np.maximum(shares, 0.5 / n_modes)
    shares /= shares.sum()
    protos = [_prototype(rng) for _ in range(n_modes)]
    extra = np.random.default_rng(seed + 10_000)
    modes = extra.choice(n_modes, size=n_new, p=shares)
    records = [_record(f"r{seed}-{start + i}", protos[m], extra) for i, m in enumerate(modes)]
    return records, modes


def hm_records() -> list[dict[str, Any]]:
    """The H&M analyser output (read from the shared data folder, never copied)."""
    with HM_PATH.open() as handle:
        return [json.loads(line) for line in handle]


def hm_portfolios(
    n_portfolios: int, seed: int = 0, size: int = 300, field: str = "section_name"
) -> Iterator[tuple[list[dict[str, Any]], np.ndarray]]:
    """Designer-like portfolios from the H&M records: ``size`` records of 3 to 5 sections
    (or values of another ground-truth ``field``).

    Yields the records (``ground_truth`` and ``text`` stripped, as the service would see them)
    and each record's section index.
    """
    records = hm_records()
    by_section: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_section.setdefault(r["ground_truth"][field], []).append(r)
    big = sorted(s for s, rs in by_section.items() if len(rs) >= 60)
    rng = np.random.default_rng(seed)
    for _ in range(n_portfolios):
        n_sections = int(rng.integers(3, 6))
        chosen = list(rng.choice(big, size=n_sections, replace=False))
        per = size // n_sections
        picked: list[dict[str, Any]] = []
        truth: list[int] = []
        for j, section in enumerate(chosen):
            rows = by_section[section]
            for i in rng.choice(len(rows), size=min(per, len(rows)), replace=False):
                raw = {k: v for k, v in rows[int(i)].items() if k not in ("ground_truth", "text", "source")}
                picked.append(raw)
                truth.append(j)
        yield picked, np.asarray(truth)


# --- the seed's way ---------------------------------------------------------------------------


def seed_way(records: list[dict[str, Any]], k_range: range = range(3, 8)) -> tuple[int, np.ndarray]:
    """The seed sketch's fit: plain one-hot, PCA(10), GaussianMixture (full), k by BIC."""
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    from designer_ml.vlt import Vocabulary, parse_record

    parsed = [parse_record(r) for r in records]
    X = Vocabulary.fit(parsed, {}).transform(parsed).X.astype(np.float64)
    Z = PCA(n_components=min(10, X.shape[0] - 1, X.shape[1]), random_state=42).fit_transform(X)
    best = None
    for k in k_range:
        if k > len(Z):
            break
        gmm = GaussianMixture(n_components=k, random_state=42).fit(Z)
        bic = gmm.bic(Z)
        if best is None or bic < best[0]:
            best = (bic, k, gmm.predict(Z))
    assert best is not None
    return best[1], best[2]


def ours(records: list[dict[str, Any]], **kwargs: Any) -> Any:
    from designer_ml.style.fit import fit_style
    from designer_ml.vlt import parse_record

    return fit_style([parse_record(r) for r in records], **kwargs)


# --- measures ---------------------------------------------------------------------------------


def planted_modes(seeds: int) -> tuple[dict[str, Any], list[list[Any]]]:
    from sklearn.metrics import adjusted_rand_score

    rows, ari_o, ari_s, hit_o, hit_s = [], [], [], [], []
    for n_modes in range(3, 8):
        a_o, a_s, h_o, h_s = [], [], [], []
        for seed in range(seeds):
            records, truth = planted_portfolio(n_modes, 1000 * n_modes + seed)
            fit = ours(records)
            k_s, labels_s = seed_way(records)
            a_o.append(adjusted_rand_score(truth, fit.components))
            a_s.append(adjusted_rand_score(truth, labels_s))
            h_o.append(fit.n_clusters == n_modes)
            h_s.append(k_s == n_modes)
        rows.append(
            [
                n_modes,
                seeds,
                round(float(np.mean(a_o)), 3),
                round(float(np.mean(h_o)), 2),
                round(float(np.mean(a_s)), 3),
                round(float(np.mean(h_s)), 2),
            ]
        )
        ari_o += a_o
        ari_s += a_s
        hit_o += h_o
        hit_s += h_s
    figures = {
        "planted_mean_ari": round(float(np.mean(ari_o)), 3),
        "planted_k_hit_rate": round(float(np.mean(hit_o)), 3),
        "seed_way_planted_mean_ari": round(float(np.mean(ari_s)), 3),
        "seed_way_planted_k_hit_rate": round(float(np.mean(hit_s)), 3),
    }
    return figures, rows


def stability(seeds: int, modes: range = range(3, 8)) -> tuple[dict[str, Any], list[list[Any]]]:
    """Update with 10% more records of the same modes: share of old records keeping their id."""
    from designer_ml.style.features import style_matrix
    from designer_ml.style.fit import WarmStart, stable_ids

    kept_o, kept_s = [], []
    for n_modes in modes:
        for seed in range(seeds):
            records, _ = planted_portfolio(n_modes, 1000 * n_modes + seed)
            extra, _ = more_records(n_modes, 1000 * n_modes + seed, max(1, len(records) // 10), len(records))
            first = ours(records)
            ids = np.asarray(stable_ids(np.zeros(0, int), np.zeros(0, int), first.n_clusters, 0))
            old = ids[first.components]
            # The update places new records with the current model, as the service does (ONNX there).
            X_new = style_matrix(first.vocab, first.vocab.transform(extra).X).astype(np.float64)
            placed = np.concatenate([old, ids[first.gmm.predict(first.pca.transform(X_new))]])
            second = ours(records + extra, warm=WarmStart(labels=placed))
            shared = np.arange(len(records))
            new_ids = np.asarray(stable_ids(old, second.components[shared], second.n_clusters, int(ids.max()) + 1))
            kept_o.append(float(np.mean(new_ids[second.components[shared]] == old)))
            _, s1 = seed_way(records)
            _, s2 = seed_way(records + extra)
            kept_s.append(float(np.mean(s2[: len(records)] == s1)))
    figures = {
        "update_ids_kept_mean": round(float(np.mean(kept_o)), 3),
        "update_ids_kept_min": round(float(np.min(kept_o)), 3),
        "seed_way_update_ids_kept_mean": round(float(np.mean(kept_s)), 3),
    }
    rows = [
        ["ours (warm start + Hungarian ids)", figures["update_ids_kept_mean"], figures["update_ids_kept_min"]],
        [
            "seed way (refit, component index as id)",
            figures["seed_way_update_ids_kept_mean"],
            round(float(np.min(kept_s)), 3),
        ],
    ]
    return figures, rows


def timing(sizes: list[int], repeats: int) -> tuple[dict[str, Any], list[list[Any]]]:
    """Create a profile end to end (validation, fit, ONNX export + parity, novelty model,
    storage on in-process moto), against the seed way's fit alone, medians."""
    from moto import mock_aws

    os.environ.update(
        PROFILES_TABLE="bench-profiles",
        FEEDBACK_TABLE="bench-feedback",
        ARTIFACTS_BUCKET="bench-artifacts",
        RETRAIN_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3

    from designer_ml.storage import get_storage, reset_for_tests
    from designer_ml.style.profile import create_profile

    rows, figures = [], {}
    with mock_aws():
        reset_for_tests()
        boto3.client("dynamodb").create_table(
            TableName="bench-profiles",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
        )
        boto3.client("s3").create_bucket(Bucket="bench-artifacts")
        for size in sizes:
            records, _ = planted_portfolio(5, 42, n_records=size)
            ours_t, seed_t = [], []
            for r in range(repeats if size <= 5000 else 1):
                start = time.perf_counter()
                create_profile(get_storage(), f"bench-{size}-{r}", records)
                ours_t.append(time.perf_counter() - start)
                start = time.perf_counter()
                seed_way(records)
                seed_t.append(time.perf_counter() - start)
            o, s = statistics.median(ours_t), statistics.median(seed_t)
            rows.append([size, round(o, 3), round(s, 3), round(o / s, 2) if s else None])
            figures[f"create_seconds_{size}"] = round(o, 3)
            figures[f"seed_way_fit_seconds_{size}"] = round(s, 3)
        reset_for_tests()
    return figures, rows


def real_data(n_portfolios: int) -> tuple[dict[str, Any], list[list[Any]]]:
    """H&M portfolios of 3 to 5 sections: ARI of the modes against section_name."""
    from sklearn.metrics import adjusted_rand_score

    if not HM_PATH.exists():
        return {}, []
    a_o, a_s = [], []
    for records, truth in hm_portfolios(n_portfolios, seed=0):
        a_o.append(adjusted_rand_score(truth, ours(records).components))
        a_s.append(adjusted_rand_score(truth, seed_way(records)[1]))
    figures = {"hm_mean_ari": round(float(np.mean(a_o)), 3), "seed_way_hm_mean_ari": round(float(np.mean(a_s)), 3)}
    return figures, [[n_portfolios, figures["hm_mean_ari"], figures["seed_way_hm_mean_ari"]]]


def weighting(seeds: int, n_hm: int) -> list[list[Any]]:
    """Group weights of the encoder: uniform (the style model's) against vlt.DEFAULT_GROUP_WEIGHTS."""
    from sklearn.metrics import adjusted_rand_score

    from designer_ml.vlt import DEFAULT_GROUP_WEIGHTS

    rows = []
    for name, weights in (("uniform", {}), ("vlt.DEFAULT_GROUP_WEIGHTS", dict(DEFAULT_GROUP_WEIGHTS))):
        planted = [
            adjusted_rand_score(t, ours(r, group_weights=weights).components)
            for m in range(3, 8)
            for s in range(seeds)
            for r, t in [planted_portfolio(m, 1000 * m + s)]
        ]
        hm = [adjusted_rand_score(t, ours(r, group_weights=weights).components) for r, t in hm_portfolios(n_hm, seed=0)]
        rows.append([name, round(float(np.mean(planted)), 3), round(float(np.mean(hm)), 3)])
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    seeds = 1 if quick else 20
    tables, figures = [], {}
    f, rows = planted_modes(seeds)
    figures.update(f)
    tables.append(
        {
            "title": f"Planted modes ({seeds} seeds per k): mean ARI and share of portfolios where BIC picks the planted k",
            "columns": ["planted k", "portfolios", "ARI ours", "k hit ours", "ARI seed way", "k hit seed way"],
            "rows": rows,
        }
    )
    f, rows = stability(1 if quick else 4, range(3, 5) if quick else range(3, 8))
    figures.update(f)
    tables.append(
        {
            "title": "Update with 10% more records of the same modes: share of records keeping their cluster id",
            "columns": ["method", "mean", "min"],
            "rows": rows,
        }
    )
    f, rows = timing([50, 500] if quick else [50, 500, 5000, 20000], 1 if quick else 3)
    figures.update(f)
    tables.append(
        {
            "title": "Create a profile, median seconds (ours end to end incl. ONNX + novelty + moto storage; seed way: fit only)",
            "columns": ["records", "ours (s)", "seed way fit (s)", "ratio"],
            "rows": rows,
        }
    )
    f, rows = real_data(2 if quick else 20)
    figures.update(f)
    tables.append(
        {
            "title": "H&M portfolios (300 records from 3-5 sections): ARI against section_name",
            "columns": ["portfolios", "ARI ours", "ARI seed way"],
            "rows": rows,
        }
    )
    if not quick:
        tables.append(
            {
                "title": "Encoder group weights in the style model: mean ARI",
                "columns": ["weights", "planted modes", "H&M sections"],
                "rows": weighting(4, 10),
            }
        )
    return {"name": "profile", "tables": tables, "figures": figures}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
