"""Stage 10, retrain side: fit a designer's reward model, gate it, publish it, update the population.

One retrain of one designer (:func:`retrain_user`):

1. Clear the ``retrain_requested_at`` marker on the designer's feedback state item (events
   arriving from now on queue the next retrain) and note the start time (coalescing window).
2. Read all the designer's feedback. Its fingerprint (event keys, types, scores, times and the
   feature schema) names the training data: when the serving model (or the last refused
   candidate) has the same fingerprint there is nothing to do. So the same message twice, or
   two messages for one burst, make one model version.
3. Prior: the population model with this designer's own contribution taken out.
4. Gate: the newest of the events the serving model has not seen (newer than its
   ``trained_through``) are held out; a candidate fitted with the new prior on all older
   events must not predict them worse (log loss) than the serving model does. Neither has
   seen them, and the candidate has seen everything the serving model saw and more. With
   fewer than ``MIN_HOLDOUT`` unseen events there is no evidence of "worse" and the
   candidate goes through.
5. Publish: fit on all events, export ONNX, parity check, store artifacts, move the pointer
   with a conditional write on ``reward_version`` (a lost race re-reads and starts over).
   A refused candidate is recorded in ``reward_last_retrain`` with its metrics and reason.
6. Drop the pending entries the published model has seen from the feedback state item (by
   event key and time, under a condition on the list's revision), then update the population
   model with the designer's new sufficient statistics.

Pending lists left on profile items by earlier versions of the service (``pending_feedback``
on the profile item) are ignored: optimize no longer reads them and the next retrain learns
their events from the feedback table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from designer_ml.errors import ModelIntegrityError, StorageUnavailable, VersionConflict
from designer_ml.observability import logger
from designer_ml.onnx_models import check_parity
from designer_ml.reward import features as F
from designer_ml.reward import model as M
from designer_ml.reward import ope, report_of, report_text, store
from designer_ml.reward.belief import NumpyScorer, Scorer
from designer_ml.reward.context import match_profile
from designer_ml.reward.events import decode_entry, now_ms, pending_of, read_feedback, state_key
from designer_ml.reward.vocabulary import PHRASES
from designer_ml.vlt import parse_record

MIN_HOLDOUT = 5
# Below this many held-out events the comparison is recorded but cannot refuse: a paired
# log-loss difference over 5-9 events (and its standard error) is noise, and in the handler-path
# simulation such refusals kept a stale model serving on ~6% of retrains for no measurable gain
# (the candidate is the Bayesian posterior on strictly more data).
MIN_CONCLUSIVE_HOLDOUT = 10
# Share of the events the serving model has not seen that is held out (the newest ones); the
# candidate procedure trains on everything older, so it has more data than the serving model.
HOLDOUT_SHARE = 0.3
# A candidate is "worse" when its held-out log loss exceeds the serving model's by more than
# this many nats per event and by more than two standard errors of the paired difference.
PROMOTION_TOLERANCE = 0.02
_ATTEMPTS = 4
TOP_PHRASES = 5
# Designers whose statistics feed the between-designer covariance at each population update
# (the most recently retrained): bounds the work and the reads of one retrain however many
# designers there are.
EB_MAX_DESIGNERS = 32


@dataclass
class RetrainResult:
    """What one retrain did: ``promoted``, ``refused``, ``unchanged`` or ``no_feedback``."""

    user_id: str
    status: str
    version: int | None = None
    reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Events:
    """A designer's feedback as training data: X (n, D), y (n,), weights (n,), times (n,)."""

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray
    updated: np.ndarray
    signatures: list[str]
    fingerprint: str
    seen: dict[str, int] = field(default_factory=dict)  # event key -> updated_at of each event
    # Logged decisions (None where the client sent none): the chosen prompt's probability and
    # whether it was the base prompt or the model's choice.
    propensity: list[float | None] = field(default_factory=list)
    served: list[str | None] = field(default_factory=list)
    n_decisions: int = 0  # distinct generations (prompts) among the events


def _style_probs(
    storage: Any, user_id: str, specs: Sequence[Mapping[str, Any] | None], item: Mapping[str, Any]
) -> list[dict[int, float]]:
    """Style-mode probabilities of each event's spec (empty dicts without a style model)."""
    empty: list[dict[int, float]] = [{} for _ in specs]
    indexed = [(i, s) for i, s in enumerate(specs) if s]
    if not indexed:
        return empty
    try:
        from designer_ml.style.bundle import load_style_bundle
    except ImportError:
        load_style_bundle = None
    try:
        if load_style_bundle is not None:
            bundle = load_style_bundle(storage, user_id, item=item)
            if bundle is not None:
                ids, probs = bundle.place([spec for _, spec in indexed])
                columns = [int(c) for c in np.asarray(bundle.cluster_ids).reshape(-1)]
                for (i, _), row in zip(indexed, np.asarray(probs, dtype=float), strict=True):
                    empty[i] = dict(zip(columns, (float(p) for p in row), strict=True))
                return empty
        document = item.get("document")
        document = json.loads(document) if isinstance(document, str) else document
        if document:
            for i, spec in indexed:
                empty[i] = match_profile(document, parse_record(spec), "profile").probs
    except Exception as exc:  # style columns are a refinement; train without them
        logger.warning("style modes unavailable for retrain", extra={"user_id": user_id, "error": str(exc)})
        return [{} for _ in specs]
    return empty


def load_events(
    storage: Any, user_id: str, item: Mapping[str, Any], feedback: Sequence[Mapping[str, Any]]
) -> Events | None:
    """The designer's events (``feedback``: their feedback-table events) as training data."""
    items = [e for e in feedback if e.get("feedback_type") in ("like", "dislike", "outlier")]
    if not items:
        return None
    items.sort(key=lambda e: (int(e.get("updated_at") or 0), str(e["event_key"])))
    specs: list[Mapping[str, Any] | None] = []
    for e in items:
        try:
            spec = json.loads(e["vlt_spec"]) if isinstance(e.get("vlt_spec"), str) else None
        except ValueError:
            spec = None
        specs.append(spec if isinstance(spec, Mapping) else None)
    probs = _style_probs(storage, user_id, specs, item)
    rows, ys, ws = [], [], []
    for e, p in zip(items, probs, strict=True):
        y, w = M.reward_of(e["feedback_type"], e.get("quality_score"))
        rows.append(store.row_of(e.get("phrases") or [], e.get("spec_tokens") or [], p))
        ys.append(y)
        ws.append(w)
    fingerprint = M.fingerprint(
        [F.FEATURE_SCHEMA]
        + [f"{e['event_key']}|{e['feedback_type']}|{e.get('quality_score')}|{e.get('updated_at')}" for e in items]
    )
    return Events(
        X=np.vstack(rows),
        y=np.asarray(ys),
        weights=np.asarray(ws),
        updated=np.asarray([int(e.get("updated_at") or 0) for e in items]),
        signatures=[str(e.get("signature")) for e in items],
        fingerprint=fingerprint,
        seen={str(e["event_key"]): int(e.get("updated_at") or 0) for e in items},
        propensity=[float(e["propensity"]) if e.get("propensity") is not None else None for e in items],
        served=[str(e["served"]) if e.get("served") else None for e in items],
        n_decisions=len({str(e.get("generation_id") or e["event_key"]) for e in items}),
    )


# -- population ----------------------------------------------------------------------------------


@dataclass
class PopulationState:
    precision: np.ndarray | None
    information: np.ndarray | None
    contributors: dict[str, str]
    version: int | None
    n_designers: int = 0
    between: np.ndarray | None = None  # the learned between-designer covariance (None: built-in)


def load_population(storage: Any) -> PopulationState:
    item = storage.get_item(storage.profiles, {"user_id": store.POPULATION_ID}) or {}
    pointer = item.get("reward_model") if isinstance(item.get("reward_model"), Mapping) else None
    version = item.get("reward_version")
    state = storage.get_json(pointer["meta_key"]) if pointer and pointer.get("meta_key") else None
    if not isinstance(state, Mapping) or state.get("schema") != F.FEATURE_SCHEMA:
        return PopulationState(None, None, {}, int(version) if version else None)
    return PopulationState(
        precision=M.decode_symmetric(state["agg_precision"]),
        information=M.decode_array(state["agg_information"]),
        contributors=dict(state.get("contributors") or {}),
        version=int(version) if version else None,
        n_designers=len(state.get("contributors") or {}),
        between=M.decode_symmetric(state["between"]) if isinstance(state.get("between"), Mapping) else None,
    )


def _stats_of(storage: Any, meta_key: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    """A designer's sufficient statistics (S, b) on the shared columns, from their model document."""
    # Model documents never change under their key: the serving cache is safe here too.
    meta = store.cached_meta(storage, meta_key) if meta_key else None
    if not isinstance(meta, Mapping) or meta.get("schema") != F.FEATURE_SCHEMA or "stats" not in meta:
        return None
    return M.decode_symmetric(meta["stats"]["S"]), M.decode_array(meta["stats"]["b"])


def _message_of(storage: Any, meta_key: str | None) -> tuple[np.ndarray, np.ndarray] | None:
    stats = _stats_of(storage, meta_key)
    return M.population_message(*stats) if stats is not None else None


def _between(
    storage: Any,
    state: PopulationState,
    population_mean: np.ndarray,
    contributors: Mapping[str, str],
    fresh: tuple[str, np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """The between-designer covariance, continued by a few EM steps over the most recently
    updated contributors (at most EB_MAX_DESIGNERS; ``fresh``: a designer's statistics not yet
    readable from storage)."""
    stats: list[tuple[np.ndarray, np.ndarray]] = []
    for uid, key in list(contributors.items())[-EB_MAX_DESIGNERS:]:
        found = (fresh[1], fresh[2]) if fresh is not None and uid == fresh[0] else _stats_of(storage, key)
        if found is not None:
            stats.append(found)
    return M.between_covariance(population_mean, stats, start=state.between)


def _without(state: PopulationState, message: tuple[np.ndarray, np.ndarray] | None) -> M.Posterior:
    if state.precision is None or state.information is None:
        return M.population_posterior(None, None)
    if message is None:
        return M.population_posterior(state.precision, state.information)
    return M.population_posterior(state.precision - message[0], state.information - message[1])


def update_population(
    storage: Any,
    user_id: str,
    meta_key: str | None,
    S: np.ndarray | None,
    b: np.ndarray | None,
    known: tuple[PopulationState, tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> int | None:
    """Replace the designer's contribution to the population model and publish it.

    ``meta_key``/``S``/``b`` None: take the designer's contribution out (erasure).
    ``known``: the population state and the designer's old message as the caller read them
    (saves reading them again; a lost race re-reads).
    """
    new_message = M.population_message(S, b) if S is not None and b is not None else None
    for _ in range(_ATTEMPTS):
        if known is not None:
            state, old = known
            known = None
        else:
            state = load_population(storage)
            old = _message_of(storage, state.contributors.get(user_id))
        if state.contributors.get(user_id) == meta_key:
            return state.version
        if meta_key is None and old is None and user_id not in state.contributors:
            return state.version
        precision = np.zeros((F.SHARED_D, F.SHARED_D)) if state.precision is None else state.precision.copy()
        information = np.zeros(F.SHARED_D) if state.information is None else state.information.copy()
        if old is not None:
            precision -= old[0]
            information -= old[1]
        contributors = {k: v for k, v in state.contributors.items() if k != user_id}
        if new_message is not None and meta_key is not None:
            precision += new_message[0]
            information += new_message[1]
            contributors[user_id] = meta_key
        posterior = M.population_posterior(precision, information)
        fresh = None
        if S is not None and b is not None and meta_key is not None:
            fresh = (user_id, S[: F.SHARED_D, : F.SHARED_D], b[: F.SHARED_D])
        between = _between(storage, state, posterior.mean, contributors, fresh)
        mean, prior_precision = M.designer_prior(posterior, between)
        version = (state.version or 0) + 1
        fp = M.fingerprint([F.FEATURE_SCHEMA, str(version)] + sorted(f"{k}={v}" for k, v in contributors.items()))
        L = M.Posterior(mean, prior_precision).sqrt_cov()
        onnx_bytes = _export_checked(mean, L, {"kind": "population", "version": version, "schema": F.FEATURE_SCHEMA})
        key = f"{store.POPULATION_PREFIX}/v{version}-{fp[:8]}.onnx"
        meta_key_pop = key.removesuffix(".onnx") + ".json"
        meta = {
            "kind": "population",
            "schema": F.FEATURE_SCHEMA,
            "version": version,
            "agg_precision": M.encode_symmetric(precision),
            "agg_information": M.encode_array(information),
            "between": M.encode_symmetric(between),
            "contributors": contributors,
            "trained_through": 0,
            "created_at": datetime.now(UTC).isoformat(),
        }
        store.put_model(storage, key, meta_key_pop, onnx_bytes, meta)
        pointer = {
            "key": key,
            "meta_key": meta_key_pop,
            "schema": F.FEATURE_SCHEMA,
            "n_designers": len(contributors),
            "updated_at": datetime.now(UTC).isoformat(),
        }
        try:
            return storage.put_versioned(
                storage.profiles,
                {"user_id": store.POPULATION_ID},
                {"reward_model": pointer},
                state.version,
                version_attribute="reward_version",
            )
        except VersionConflict:
            continue
    logger.warning("population model not updated: too many concurrent updates", extra={"user_id": user_id})
    return None


def forget_designer(storage: Any, user_id: str) -> int | None:
    """Take a designer's evidence out of the population model (before their artifacts are
    deleted: their model document holds the statistics to subtract)."""
    version = update_population(storage, user_id, None, None, None)
    # Superseded population versions still name the designer among their contributors.
    current = load_population_pointer(storage)
    for key in list(storage.list_keys(f"{store.POPULATION_PREFIX}/")):
        if not key.endswith(".json") or key == current:
            continue
        document = storage.get_json(key)
        if isinstance(document, Mapping) and user_id in (document.get("contributors") or {}):
            storage.delete_prefix(key.removesuffix(".json"))
    return version


def load_population_pointer(storage: Any) -> str | None:
    """S3 key of the serving population model's document, if any."""
    item = storage.get_item(storage.profiles, {"user_id": store.POPULATION_ID}) or {}
    pointer = item.get("reward_model") if isinstance(item.get("reward_model"), Mapping) else None
    return pointer.get("meta_key") if pointer else None


# -- one designer ----------------------------------------------------------------------------------


def _export_checked(mean: np.ndarray, L: np.ndarray, metadata: Mapping[str, Any]) -> bytes:
    """ONNX bytes whose outputs match numpy on probe rows (raises ModelIntegrityError if not)."""
    onnx_bytes = M.export_onnx(mean, L, metadata)
    rng = np.random.default_rng(0)
    X = np.vstack([np.eye(F.D), (rng.random((32, F.D)) < 0.1).astype(float)])
    X[:, F.INTERCEPT] = 1.0
    check_parity(onnx_bytes, X, X @ mean, output=0)
    check_parity(onnx_bytes, X, X @ L, output=1)
    return onnx_bytes


def _phrase_ranking(mean: np.ndarray) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    weights = mean[F.PHRASE_START : F.SPEC_START]
    order = np.argsort(weights)
    likes = [
        {"phrase": PHRASES[i].text, "weight": round(float(weights[i]), 4)}
        for i in order[::-1][:TOP_PHRASES]
        if weights[i] > 0
    ]
    dislikes = [
        {"phrase": PHRASES[i].text, "weight": round(float(weights[i]), 4)}
        for i in order[:TOP_PHRASES]
        if weights[i] < 0
    ]
    return likes, dislikes


def holdout_mask(updated: np.ndarray, trained_through: int) -> np.ndarray:
    """The newest HOLDOUT_SHARE (at least MIN_HOLDOUT) of the events newer than trained_through.

    ``updated`` (n,) is sorted ascending; returns a boolean mask (n,), all False when fewer than
    MIN_HOLDOUT events are unseen.
    """
    unseen = int(np.sum(updated > trained_through))
    mask = np.zeros(len(updated), dtype=bool)
    if unseen >= MIN_HOLDOUT:
        k = min(unseen, max(MIN_HOLDOUT, int(np.ceil(HOLDOUT_SHARE * unseen))))
        mask[len(updated) - k :] = True
    return mask


def _gate(
    events: Events, holdout: np.ndarray, prior: tuple[np.ndarray, np.ndarray], incumbent: Scorer
) -> tuple[bool, str | None, dict[str, Any]]:
    """(worse?, reason, metrics) of the candidate procedure against the serving model."""
    n_hold = int(holdout.sum())
    if n_hold == 0:
        return False, None, {"holdout": {"n": 0, "conclusive": False}}
    train = ~holdout
    candidate = M.fit(prior[0], prior[1], events.X[train], events.y[train], events.weights[train])
    Xh, yh, wh = events.X[holdout], events.y[holdout], events.weights[holdout]
    p_cand = M.predictive(candidate.mean, Xh)
    p_inc = np.clip(incumbent.project(Xh)[0], 0.0, 1.0)
    diff = M.per_event_log_loss(p_cand, yh) - M.per_event_log_loss(p_inc, yh)
    w = wh / wh.sum()
    mean_diff = float(np.sum(w * diff))
    se = float(np.sqrt(np.sum(w * (diff - mean_diff) ** 2) / max(1, n_hold - 1)))
    conclusive = n_hold >= MIN_CONCLUSIVE_HOLDOUT
    metrics = {
        "holdout": {
            "n": n_hold,
            "conclusive": conclusive,
            "candidate": M.holdout_metrics(p_cand, yh, wh),
            "serving": M.holdout_metrics(p_inc, yh, wh),
            "log_loss_difference": mean_diff,
            "difference_se": se,
        }
    }
    worse = conclusive and mean_diff > PROMOTION_TOLERANCE and mean_diff > 2.0 * se
    reason = (
        (
            f"candidate predicts the {n_hold} held-out events worse than the serving model: log loss "
            f"{metrics['holdout']['candidate']['log_loss']:.4f} vs {metrics['holdout']['serving']['log_loss']:.4f} "
            f"(+{mean_diff:.4f} nats, standard error {se:.4f})"
        )
        if worse
        else None
    )
    return worse, reason, metrics


def _trim_pending(storage: Any, user_id: str, seen: Mapping[str, int], state: Mapping[str, Any] | None) -> None:
    """Drop the pending entries of events a published model has seen (``seen``: event key ->
    updated_at) from the designer's feedback state item.

    ``state`` is the item as last read (None: read it). The list is rewritten only if its
    ``pending_revision`` is still the one read (an append or another trim meanwhile makes the
    write fail, and it is retried on a fresh read). Dropping by identity rather than by count
    keeps this safe whatever order racing retrains trim in: a model published later has seen
    every event an earlier one saw (or a newer version of it).
    """
    key = state_key(user_id)
    for _ in range(_ATTEMPTS):
        if state is None:
            state = storage.get_item(storage.feedback, key)
        pending = pending_of(state)
        kept = [e for e in pending if not _seen(e, seen)]
        if len(kept) == len(pending):
            return
        revision = (state or {}).get("pending_revision")
        names = {"#p": "pending_feedback", "#r": "pending_revision"}
        values: dict[str, Any] = {":kept": kept, ":one": 1}
        if revision is None:
            condition = "attribute_not_exists(#r)"
        else:
            condition = "#r = :rev"
            values[":rev"] = revision
        if storage.update_expression(storage.feedback, key, "SET #p = :kept ADD #r :one", names, values, condition):
            return
        state = None


def _seen(raw: Any, seen: Mapping[str, int]) -> bool:
    """Whether a pending entry's event (this version of it, or a later one) is in the model."""
    entry = decode_entry(raw)
    if entry is None:
        return True  # unreadable: optimize skips it too
    key = entry.get("k")
    try:
        return key in seen and int(entry.get("ts") or 0) <= seen[key]
    except (TypeError, ValueError):
        return True


def _mark_started(storage: Any, user_id: str, requested_at: int | None, ts: int) -> None:
    key = state_key(user_id)
    if (
        requested_at is not None
        and storage.update_expression(
            storage.feedback,
            key,
            "REMOVE #m SET #r = :now",
            {"#m": "retrain_requested_at", "#r": "reward_retrained_at"},
            {":now": ts, ":req": requested_at},
            condition="#m = :req",
        )
        is not None
    ):
        return
    # Only on an existing item: a stale message for a designer erased meanwhile must not
    # re-create their feedback state item.
    storage.update_expression(
        storage.feedback,
        key,
        "REMOVE #f SET #r = :now",
        {"#f": "retrain_flush_at", "#r": "reward_retrained_at", "#u": "user_id"},
        {":now": ts},
        condition="attribute_exists(#u)",
    )


def retrain_user(storage: Any, user_id: str, requested_at: int | None = None) -> RetrainResult:
    """Retrain one designer's reward model (idempotent; see the module docstring)."""
    _mark_started(storage, user_id, requested_at, now_ms())
    for _ in range(_ATTEMPTS):
        try:
            return _retrain_once(storage, user_id)
        except VersionConflict:
            continue
    raise VersionConflict(f"reward model of {user_id!r}: too many concurrent retrains")


def _retrain_once(storage: Any, user_id: str) -> RetrainResult:
    item = storage.get_item(storage.profiles, {"user_id": user_id}) or {}
    feedback, state = read_feedback(storage, user_id)
    events = load_events(storage, user_id, item, feedback)
    if events is None:
        return RetrainResult(user_id, "no_feedback")
    current = item.get("reward_model") if isinstance(item.get("reward_model"), Mapping) else None
    current_version = int(item["reward_version"]) if item.get("reward_version") else None
    if current and current.get("fingerprint") == events.fingerprint:
        # A retrain that published this model may have stopped before trimming.
        _trim_pending(storage, user_id, events.seen, state)
        return RetrainResult(user_id, "unchanged", current_version, "the serving model was trained on these events")
    last = report_of(item.get("reward_last_retrain"))
    if last and last.get("fingerprint") == events.fingerprint and not last.get("promoted"):
        return RetrainResult(user_id, "refused", current_version, last.get("reason"), last.get("metrics") or {})

    population = load_population(storage)
    own = _message_of(storage, population.contributors.get(user_id))
    prior = M.designer_prior(_without(population, own), population.between)

    serving = store.serving_model(storage, item)
    trained_through = serving.trained_through if serving.source == "user" else 0
    incumbent: Scorer = serving.scorer
    if serving.source != "user":
        # The fallback a designer without a model is served: the population without their own
        # events (with them, it would have seen the held-out events).
        incumbent = NumpyScorer(prior[0], M.Posterior(*prior).sqrt_cov())
    worse, reason, metrics = _gate(events, holdout_mask(events.updated, trained_through), prior, incumbent)
    final = M.fit(prior[0], prior[1], events.X, events.y, events.weights)
    metrics["train"] = M.holdout_metrics(M.predictive(final.mean, events.X), events.y, events.weights)
    metrics["n_events"] = int(len(events.y))
    metrics["ope"] = ope.evaluate(events.y, events.propensity, events.served)
    now = datetime.now(UTC).isoformat()
    if worse:
        storage.set_attributes(
            storage.profiles,
            {"user_id": user_id},
            {
                "reward_last_retrain": report_text(
                    {
                        "fingerprint": events.fingerprint,
                        "promoted": False,
                        "reason": reason,
                        "metrics": metrics,
                        "at": now,
                        "serving_version": current_version,
                    }
                )
            },
        )
        logger.info("reward candidate refused", extra={"user_id": user_id, "reason": reason})
        return RetrainResult(user_id, "refused", current_version, reason, metrics)

    version = (current_version or 0) + 1
    L = final.sqrt_cov()
    try:
        onnx_bytes = _export_checked(
            final.mean,
            L,
            {
                "kind": "designer",
                "user_id": user_id,
                "version": version,
                "schema": F.FEATURE_SCHEMA,
                "n_events": len(events.y),
            },
        )
    except ModelIntegrityError:
        logger.exception("reward model failed its parity check; not published", extra={"user_id": user_id})
        raise
    prefix = store.model_prefix(user_id)
    key = f"{prefix}/v{version}-{events.fingerprint[:8]}.onnx"
    meta_key = key.removesuffix(".onnx") + ".json"
    S, b = M.sufficient_stats(events.X, events.y, events.weights)
    likes, dislikes = _phrase_ranking(final.mean)
    trained_through_new = int(events.updated.max())
    phrase_rows = events.X[:, F.PHRASE_START : F.SPEC_START]
    meta = {
        "kind": "designer",
        "schema": F.FEATURE_SCHEMA,
        "user_id": user_id,
        "version": version,
        "n_events": int(len(events.y)),
        "n_decisions": events.n_decisions,
        "trained_through": trained_through_new,
        "fingerprint": events.fingerprint,
        "signatures": events.signatures,
        "population_version": population.version,
        "metrics": metrics,
        "mean": M.encode_array(final.mean),
        "typical_phrases": M.encode_array(phrase_rows.mean(axis=0)),
        "stats": {"S": M.encode_symmetric(S[: F.SHARED_D, : F.SHARED_D]), "b": M.encode_array(b[: F.SHARED_D])},
        "created_at": now,
    }
    store.put_model(storage, key, meta_key, onnx_bytes, meta)
    pointer = {
        "version": version,
        "key": key,
        "meta_key": meta_key,
        "schema": F.FEATURE_SCHEMA,
        "n_events": int(len(events.y)),
        "trained_through": trained_through_new,
        "fingerprint": events.fingerprint,
        "updated_at": now,
        "population_version": population.version,
    }
    new_version = storage.put_versioned(
        storage.profiles,
        {"user_id": user_id},
        {
            "reward_model": pointer,
            "reward_summary": report_text({"metrics": metrics, "likes_most": likes, "dislikes_most": dislikes}),
            "reward_last_retrain": report_text(
                {"fingerprint": events.fingerprint, "promoted": True, "reason": None, "metrics": metrics, "at": now}
            ),
        },
        current_version,
        version_attribute="reward_version",
    )
    _trim_pending(storage, user_id, events.seen, state)
    try:
        update_population(storage, user_id, meta_key, S, b, known=(population, own))
    except (StorageUnavailable, ModelIntegrityError) as exc:
        # The designer's model is published; the population catches up at their next retrain.
        logger.warning("population model not updated", extra={"user_id": user_id, "error": str(exc)})
    return RetrainResult(user_id, "promoted", new_version, None, metrics)
