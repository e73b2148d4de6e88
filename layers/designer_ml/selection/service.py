"""Stage 9: choose a diverse, high-quality subset of generated images (POST /api/ml/select/diverse).

One call, :func:`select_diverse`: parse the images' VLT analyses, build the DPP kernel
(:mod:`.kernel`: attribute similarity × quality, with the designer's learned reward when there
is one), choose ``target_count`` images by greedy MAP (default, deterministic) or an exact k-DPP
sample (:mod:`.dpp`), report coverage (:mod:`.coverage`) and, with ``user_id``, store the
style-mode values the selection misses on the profile for the next ``optimize``.

Response fields besides API.md's: each selected image gets ``rank`` (1-based), ``novelty`` (the
squared share of its attribute vector that the images ranked before it do not explain, in
[0, 1]) and ``score = exp(2·alpha·(u − 1)) · novelty`` in [0, 1], its factor in ``det L`` relative
to a perfect-quality image unlike all before it (greedy scores do not increase with rank).
``diversity_score = det(S_Y)^(1/k)`` in [0, 1]: the geometric mean of the novelties, a
size-free monotone transform of the log-det of the selection's attribute similarity (1: no two
selected images share an attribute value; 0: two are identical). ``metadata`` carries the
log-dets themselves.

Identical images: the greedy stops when every remaining image repeats the chosen ones; the
selection then continues with new rounds over the images not chosen yet, so ``target_count``
images are returned (distinct generated pictures can share one VLT analysis) and every distinct
mode appears once before any appears twice; a warning says how many were distinct.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from designer_ml.embedding import embedding_matrix
from designer_ml.errors import StorageUnavailable, Unprocessable
from designer_ml.observability import logger
from designer_ml.reward import POINTER_ATTRIBUTES
from designer_ml.schemas import Coverage, SelectRequest, SelectResponse
from designer_ml.selection import coverage
from designer_ml.selection.dpp import NOVELTY_EPS, Selection, greedy_rounds, sample_rounds
from designer_ml.selection.kernel import DEFAULT_QUALITY, DiversityKernel, build_kernel
from designer_ml.vlt import ParsedRecord, parse_record


def _raw_images(request: SelectRequest, raw_images: Sequence[Any] | None) -> list[dict[str, Any]]:
    """The images exactly as the client sent them (falls back on the parsed models)."""
    n = len(request.images)
    if isinstance(raw_images, list) and len(raw_images) == n and all(isinstance(r, dict) for r in raw_images):
        return raw_images
    return [image.model_dump(exclude_unset=True) for image in request.images]


def _parse(request: SelectRequest, raw: list[dict[str, Any]]) -> list[ParsedRecord]:
    parsed: list[ParsedRecord] = []
    for i, (image, sent) in enumerate(zip(request.images, raw, strict=True)):
        vlt = sent.get("vlt") if isinstance(sent.get("vlt"), dict) else image.vlt.raw()
        rec = parse_record(vlt)
        if not rec.usable:
            raise Unprocessable(
                f"images[{i}] (id {image.id!r}): vlt has no usable attributes",
                [{"field": f"images[{i}].vlt", "message": "no usable attributes", "type": "value_error"}],
            )
        parsed.append(rec)
    return parsed


def _reward_scores(
    storage: Any,
    user_id: str,
    item: Mapping[str, Any] | None,
    vlts: list[dict[str, Any]],
    parsed: list[ParsedRecord],
    warnings: list[str],
) -> np.ndarray | None:
    """The designer's learned reward of each image (N,) in [0, 1], or None without a model.

    ``item``: the designer's profile item, as read for this request; ``parsed``: ``vlts`` parsed.
    """
    from designer_ml.reward import load_reward_scorer

    try:
        scorer = load_reward_scorer(storage, user_id, item or {})
        if scorer is None:
            return None
        # The records parsed for the kernel are scored as they are (the scorer would parse every
        # VLT again); a scorer that only takes raw VLTs gets those.
        score_records = getattr(scorer, "score_records", None)
        scores = score_records(parsed) if score_records is not None else scorer.score_vlts(vlts)
        scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    except Exception:
        # The reward only refines quality; a selection without it beats no selection.
        logger.exception("reward model unavailable for selection", extra={"user_id": user_id})
        warnings.append("the designer's reward model could not be used; quality is quality_score alone")
        return None
    if scores.shape != (len(vlts),) or not np.all(np.isfinite(scores)):
        logger.warning("reward scores of the wrong shape or not finite", extra={"user_id": user_id})
        warnings.append("the designer's reward model gave unusable scores; quality is quality_score alone")
        return None
    return np.clip(scores, 0.0, 1.0)


# What select reads of the profile item: the reward pointer, the style modes (the document's
# clusters) and the coverage gaps it last stored.
PROFILE_ATTRIBUTES = (*POINTER_ATTRIBUTES, "document", "coverage_gaps")


def _style_document(item: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The designer's style modes: the profile document of their profile item.

    Its ``clusters`` are the ones the style bundle's manifest copies (both are written by one
    conditional write of the profile), so the selection reads no S3 object for them.
    """
    document = (item or {}).get("document")
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return None
    return document if isinstance(document, Mapping) else None


def quality_of(request: SelectRequest, rewards: np.ndarray | None) -> np.ndarray:
    """``u_i`` (N,): quality_score (0.5 when absent), averaged with the learned reward when given."""
    scores = np.array(
        [DEFAULT_QUALITY if image.quality_score is None else image.quality_score for image in request.images],
        dtype=np.float64,
    )
    return scores if rewards is None else 0.5 * (scores + rewards)


def _choose(kernel: DiversityKernel, k: int, method: str, seed: int | None) -> Selection:
    if method == "sample":
        return sample_rounds(kernel.features, kernel.log_quality, k, np.random.default_rng(seed))
    return greedy_rounds(kernel.features, kernel.log_quality, k)


def _with_rank(image: dict[str, Any], rank: int, score: float, novelty: float) -> dict[str, Any]:
    return {**image, "rank": rank, "score": round(score, 6), "novelty": round(novelty, 6)}


def select_diverse(
    request: SelectRequest, raw_images: Sequence[Any] | None = None, storage: Any = None
) -> SelectResponse:
    """Select ``request.target_count`` images; see the module docstring for the fields.

    Parameters
    ----------
    request : SelectRequest
        The validated request.
    raw_images : list of dict, optional
        ``request.images`` as sent (same order): returned untouched plus the added fields.
    storage : Storage, optional
        Used only with ``user_id`` (default: :func:`designer_ml.storage.get_storage`).
    """
    raw = _raw_images(request, raw_images)
    parsed = _parse(request, raw)
    n = len(parsed)
    warnings: list[str] = []
    k = request.target_count
    if k > n:
        warnings.append(f"target_count {k} is more than the {n} images sent: all are selected, ranked")
        k = n
    if request.user_id is not None and storage is None:
        from designer_ml.storage import get_storage

        storage = get_storage()
    rewards = item = None
    profile_read = False
    if request.user_id is not None:
        try:
            item = storage.get_item(storage.profiles, {"user_id": request.user_id}, attributes=PROFILE_ATTRIBUTES)
            profile_read = True
        except StorageUnavailable:
            # The profile only refines the selection (reward, gaps); the selection still answers.
            logger.warning("profile unavailable for selection", extra={"user_id": request.user_id})
            warnings.append("the designer's profile could not be read: no reward model, coverage gaps not stored")
    if profile_read:
        vlts = [
            sent["vlt"] if isinstance(sent.get("vlt"), dict) else image.vlt.raw()
            for sent, image in zip(raw, request.images, strict=True)
        ]
        rewards = _reward_scores(storage, request.user_id, item, vlts, parsed, warnings)
    embeddings = embedding_matrix(request.images)
    kernel = build_kernel(
        parsed, quality_of(request, rewards), request.diversity_weight, request.quality_weight, embeddings=embeddings
    )
    seed = None
    if request.method == "sample":
        # Only sampling draws: the greedy path never imports numpy.random (~15 ms of a cold start).
        seed = request.seed if request.seed is not None else int(np.random.SeedSequence().entropy % 2**32)
    chosen = _choose(kernel, k, request.method, seed)
    order = chosen.order.tolist()
    if chosen.first_round < len(order):
        warnings.append(
            f"only {chosen.first_round} of the {len(order)} selected images differ in attributes from the "
            "ones before them; the others repeat attribute combinations already selected (identical or "
            "dependent VLT analyses), chosen by further rounds over the images left"
        )

    chosen_records = [parsed[i] for i in order]
    per_attribute, overall = coverage.per_attribute(kernel.vocabulary.categories, chosen_records)
    gaps: list[dict[str, Any]] = []
    if profile_read:
        modes = coverage.style_modes(_style_document(item))
        if modes:
            gaps = coverage.gaps(modes, kernel.vocabulary.categories, chosen_records)
        if modes and (item or {}).get("coverage_gaps") != gaps:
            # Written only when they change: a write rewrites the whole profile item (its write
            # units, and a DynamoDB round trip of every select otherwise).
            stored = storage.set_attributes(
                storage.profiles,
                {"user_id": request.user_id},
                {"coverage_gaps": gaps, "coverage_updated_at": datetime.now(UTC).isoformat()},
                must_exist="user_id",
            )
            if not stored:
                warnings.append(f"no profile for user {request.user_id!r}: coverage gaps not stored")
        elif not modes:
            warnings.append(f"no style profile for user {request.user_id!r}: coverage gaps not computed or stored")

    novelty = chosen.novelty
    distinct = bool(np.all(novelty > NOVELTY_EPS))
    log_det_s = float(np.log(novelty).sum()) if distinct else -math.inf
    quality_factor = np.exp(2.0 * kernel.alpha * (kernel.quality[chosen.order] - 1.0))
    selected = [
        _with_rank(raw[i], rank, float(quality_factor[r] * novelty[r]), float(novelty[r]))
        for r, (rank, i) in enumerate(zip(range(1, len(order) + 1), order, strict=True))
    ]
    taken = set(order)
    return SelectResponse(
        selected=selected,
        rejected=[raw[i] for i in range(n) if i not in taken],
        diversity_score=round(math.exp(log_det_s / len(order)), 6) if order and distinct else 0.0,
        coverage=Coverage(per_attribute=per_attribute, gaps=gaps, overall=round(overall, 4)),
        warnings=warnings,
        metadata={
            "method": request.method,
            "seed": seed,
            "alpha": round(kernel.alpha, 6),
            "quality_source": "quality_score" if rewards is None else "quality_score+reward",
            "distinct_modes_selected": chosen.first_round,
            "log_det_similarity": round(log_det_s, 6) if distinct else None,
            "log_det_kernel": round(log_det_s + 2.0 * float(kernel.log_quality[chosen.order].sum()), 6)
            if distinct
            else None,
            "n_features": int(kernel.features.shape[1]),
        }
        | ({"images_with_embedding": int((~np.isnan(embeddings).any(axis=1)).sum())} if embeddings is not None else {}),
    )
