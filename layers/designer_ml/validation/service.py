"""Stage 8: check generated images against the target spec and the designer's style.

One call per request, :func:`validate`: load the user's off-style model when there is one
(the profile function fits and stores it; this only loads ONNX), then
:func:`validate_images` (pure: no storage). Per image:

- ``consistency_score`` / ``attribute_matches``: slot-by-slot comparison with ``target_vlt``
  (:mod:`.consistency`); a different ``garment_type`` always rejects;
- ``outlier_score`` / ``is_outlier``: the off-style model (:mod:`.novelty`); when there is no
  ``user_id``, no profile or no usable model, ``outlier_score`` is null, ``is_outlier`` false
  (the seed's clients read a boolean), ``summary.style_checked`` false and a ``warnings``
  entry says why;
- ``is_rejected``: wrong garment, consistency under ``consistency_threshold``, or off-style;
- ``reasons``: sentences a designer can act on, the spec's first, then the style's.

Response fields besides API.md's: ``warnings``, ``summary.outliers``,
``summary.wrong_garment``, ``summary.style_checked`` and ``style_model`` (the profile version
the images were scored against, or null).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from designer_ml.embedding import embedding_matrix, embedding_of
from designer_ml.errors import ModelIntegrityError, Unprocessable
from designer_ml.observability import logger
from designer_ml.schemas import (
    ImageIn,
    ImageValidation,
    ValidateRequest,
    ValidateResponse,
    ValidationSummary,
    VLTRecord,
)
from designer_ml.validation.consistency import DEFAULT_THRESHOLD, compare
from designer_ml.validation.novelty import NoveltyMismatch, NoveltyScorer
from designer_ml.vlt import parse_record

NOVELTY_MODEL = "novelty.onnx"
NOVELTY_CALIBRATION = "novelty.json"
NOVELTY_EMBEDDING_MODEL = "novelty_embedding.onnx"
_SCORERS: OrderedDict[tuple[str, int], tuple[Any, NoveltyScorer]] = OrderedDict()
_SCORER_CACHE_SIZE = 64


def _unusable(field: str, what: str) -> Unprocessable:
    return Unprocessable(
        f"{field}: {what} has no usable attributes",
        [{"field": field, "message": "no usable attributes", "type": "value_error"}],
    )


def validate_images(
    images: Sequence[ImageIn],
    target_vlt: VLTRecord,
    scorer: NoveltyScorer | None = None,
    consistency_threshold: float = DEFAULT_THRESHOLD,
    warnings: Sequence[str] = (),
    style_model: dict[str, Any] | None = None,
) -> ValidateResponse:
    """Validate images against the target and, with a scorer, the designer's style.

    Parameters
    ----------
    images : sequence of ImageIn, length n >= 1
    target_vlt : VLTRecord
        The spec the images were generated from.
    scorer : NoveltyScorer or None
        The user's off-style model; None: consistency only, outlier fields null.
    consistency_threshold : float in [0, 1]
    warnings : sequence of str
        Carried into the response.
    style_model : dict or None
        What to report as the model the images were scored against.
    """
    warnings = list(warnings)
    target = parse_record(target_vlt.raw())
    if not target.categorical:
        raise _unusable("target_vlt", "the target")
    parsed = []
    for i, image in enumerate(images):
        rec = parse_record(image.vlt.raw())
        if not rec.usable:
            raise _unusable(f"images[{i}].vlt", f"image {image.id!r}")
        parsed.append(rec)

    novelty = None
    if scorer is not None:
        novelty = scorer.score(scorer.vocab.transform(parsed), _embeddings(images, scorer, warnings))

    validations: list[ImageValidation] = []
    wrong_garment = 0
    for i, (image, rec) in enumerate(zip(images, parsed, strict=True)):
        check = compare(target, rec)
        wrong_garment += check.wrong_garment
        reasons = list(check.reasons)
        below = check.score < consistency_threshold
        if below:
            reasons.append(f"consistency {check.score:.2f} below the threshold {consistency_threshold:.2f}")
        is_outlier, outlier_score = False, None
        if novelty is not None:
            is_outlier = bool(novelty.is_outlier[i])
            outlier_score = round(float(novelty.outlier_score[i]), 4)
            reasons.extend(novelty.reasons[i])
        validations.append(
            ImageValidation(
                image_id=image.id,
                consistency_score=round(check.score, 4),
                is_outlier=is_outlier,
                outlier_score=outlier_score,
                is_rejected=bool(check.wrong_garment or below or is_outlier),
                reasons=reasons,
                attribute_matches=check.matches,
                vlt_analysis=image.vlt.model_dump(exclude_unset=True),
                wrong_garment=check.wrong_garment,
            )
        )
    rejected = sum(v.is_rejected for v in validations)
    outliers = [v for v in validations if v.is_outlier]
    summary = ValidationSummary(
        total=len(validations),
        passed=len(validations) - rejected,
        rejected=rejected,
        avg_consistency=round(float(np.mean([v.consistency_score for v in validations])), 4),
        outliers=len(outliers),
        wrong_garment=wrong_garment,
        style_checked=novelty is not None,
    )
    return ValidateResponse(
        validations=validations, summary=summary, outliers=outliers, warnings=list(warnings), style_model=style_model
    )


def _embeddings(images: Sequence[ImageIn], scorer: NoveltyScorer, warnings: list[str]) -> Any:
    """The images' embeddings for a scorer with an embedding part (else None); 422 on a wrong dimension."""
    dim = scorer.embedding_dim
    if dim is None:
        return None
    missing = 0
    for i, image in enumerate(images):
        embedding = embedding_of(image)
        if embedding is None:
            missing += 1
        elif len(embedding) != dim:
            message = f"{len(embedding)} dimensions, but the style profile's embeddings have {dim}"
            raise Unprocessable(
                f"images[{i}].embedding: {message}",
                [{"field": f"images[{i}].embedding", "message": message, "type": "value_error"}],
            )
    if missing:
        warnings.append(
            f"{missing} of {len(images)} images have no embedding: their style is checked on attributes alone"
        )
    return embedding_matrix(images, dim)


def _scorer_for(bundle: Any, user_id: str) -> NoveltyScorer | None:
    """The bundle's off-style scorer, built once per loaded ONNX session."""
    session = bundle.session(NOVELTY_MODEL)
    calibration = bundle.json(NOVELTY_CALIBRATION)
    if session is None or calibration is None:
        return None
    key = (user_id, id(session))
    cached = _SCORERS.get(key)
    if cached is not None and cached[0] is session:
        return cached[1]
    # Read only when the model has an embedding part (a profile without embeddings has no such file).
    embedding_session = bundle.session(NOVELTY_EMBEDDING_MODEL) if calibration.get("embedding") else None
    scorer = NoveltyScorer(bundle.vocab, session, calibration, embedding_session)
    _SCORERS[key] = (session, scorer)
    while len(_SCORERS) > _SCORER_CACHE_SIZE:
        _SCORERS.popitem(last=False)
    return scorer


def load_scorer(storage: Any, user_id: str, warnings: list[str]) -> tuple[NoveltyScorer | None, dict[str, Any] | None]:
    """The user's off-style scorer and a description of its model, or (None, None) with a warning."""
    try:
        from designer_ml.style.bundle import load_style_bundle
    except ImportError:  # a build without the profile stage's bundle loader
        warnings.append("style check skipped: this build has no style profiles; consistency only")
        return None, None
    # The off-style model only: the style model itself is not read.
    bundle = load_style_bundle(storage, user_id, artifacts=(NOVELTY_MODEL, NOVELTY_CALIBRATION))
    if bundle is None:
        warnings.append(f"no style profile for user {user_id!r}: style check skipped, consistency only")
        return None, None
    try:
        scorer = _scorer_for(bundle, user_id)
    except (NoveltyMismatch, ModelIntegrityError, KeyError, TypeError, ValueError) as exc:
        # A bad artifact must not fail the request: the spec check still answers.
        logger.warning("off-style model unusable", extra={"user_id": user_id, "error": str(exc)})
        warnings.append(f"the style model of user {user_id!r} could not be used: style check skipped")
        return None, None
    if scorer is None:
        warnings.append(
            f"the style profile of user {user_id!r} has no off-style model yet (update the profile): "
            "style check skipped"
        )
        return None, None
    return scorer, {"version": getattr(bundle, "version", None)}


def validate(request: ValidateRequest, storage: Any = None) -> ValidateResponse:
    """POST /api/ml/validate: one request, one response (see the module docstring)."""
    warnings: list[str] = []
    scorer = style_model = None
    if request.user_id is None:
        warnings.append("no user_id: style check skipped, consistency only")
    else:
        if storage is None:
            from designer_ml.storage import get_storage

            storage = get_storage()
        scorer, style_model = load_scorer(storage, request.user_id, warnings)
    return validate_images(
        request.images,
        request.target_vlt,
        scorer=scorer,
        consistency_threshold=request.consistency_threshold,
        warnings=warnings,
        style_model=style_model,
    )
