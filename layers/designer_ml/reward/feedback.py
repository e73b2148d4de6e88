"""Stage 10, request side: feedback in, retrain requests out, model info.

Submit (``POST /api/ml/feedback/submit``) touches two items of the feedback table: the event
and the designer's small feedback state item (``events``); never the profile item.

1. The event is stored once per (user, generation, asset): a conditional put; when the item
   exists with the same type and score the answer is ``duplicate: true`` and nothing else
   happens; a different type (or score) replaces it (conditional on what was read).
2. A compact copy is appended to the state item's ``pending_feedback`` (optimize learns from
   it at once), and in the same conditional update the ``retrain_requested_at`` marker is set
   if no retrain is pending (or the pending one is stale: its message was lost).
3. Only the request that set the marker sends a retrain message, delayed so that a burst of
   feedback makes one retrain: no delay when the last retrain started longer ago than
   ``Settings.retrain_coalesce_seconds`` (a lone like is learned at once), else the rest of
   that window. The marker-setting update returns the state item, so this costs no read.

No numpy on this path (tests/infra/test_import_tree.py): ``events``, ``features`` and
``vocabulary`` are used for their pure-python parts only.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from designer_ml.errors import NotFound, StorageUnavailable
from designer_ml.observability import logger
from designer_ml.reward import events, report_of
from designer_ml.reward import features as F
from designer_ml.schemas import FeedbackRequest, FeedbackResponse, RewardModelInfo, TrainRequest, TrainResponse

# A marker older than this is taken as lost (message gone to the DLQ, or never sent).
STALE_MARKER_MS = 15 * 60 * 1000
_REPLACE_ATTEMPTS = 3
_NOTE_ATTEMPTS = 4


def feedback_id(user_id: str, key: str) -> str:
    return hashlib.sha256(f"{user_id}\n{key}".encode()).hexdigest()[:24]


def _event_item(request: FeedbackRequest, key: str, ts: int) -> dict[str, Any]:
    raw_spec = request.vlt_spec.raw() if request.vlt_spec is not None else None
    phrases = events.prompt_phrases(request.prompt_used)
    tokens = F.spec_tokens_of(raw_spec)
    item: dict[str, Any] = {
        "user_id": request.user_id,
        "event_key": key,
        "feedback_id": feedback_id(request.user_id, key),
        "generation_id": request.generation_id,
        "asset_id": request.asset_id,
        "feedback_type": request.feedback_type,
        "phrases": phrases,
        "spec_tokens": tokens,
        "signature": events.signature(request.feedback_type, request.quality_score, phrases, tokens),
        "updated_at": ts,
        "created_at": datetime.now(UTC).isoformat(),
    }
    if request.quality_score is not None:
        item["quality_score"] = float(request.quality_score)
    decision = request.decision
    if decision is not None and decision.chosen_probability is not None and decision.served is not None:
        item["propensity"] = float(decision.chosen_probability)
        item["served"] = decision.served
    if request.prompt_used is not None:
        item["prompt_used"] = request.prompt_used
    if raw_spec is not None:
        # JSON text: a VLT record may hold empty strings, nested nulls, numbers of any kind.
        item["vlt_spec"] = json.dumps(raw_spec, separators=(",", ":"), default=str)
    return item


def _store_event(storage: Any, item: dict[str, Any]) -> str:
    """'new', 'replaced' or 'duplicate'."""
    if storage.put_item(storage.feedback, item, only_if_absent="event_key"):
        return "new"
    key = {"user_id": item["user_id"], "event_key": item["event_key"]}
    for _ in range(_REPLACE_ATTEMPTS):
        old = storage.get_item(storage.feedback, key)
        if old is None:
            if storage.put_item(storage.feedback, item, only_if_absent="event_key"):
                return "new"
            continue
        if old.get("feedback_type") == item["feedback_type"] and old.get("quality_score") == item.get("quality_score"):
            return "duplicate"
        replacement = {**item, "created_at": old.get("created_at", item["created_at"])}
        attrs = {k: v for k, v in replacement.items() if k not in key}
        names = {f"#a{i}": k for i, k in enumerate(attrs)}
        values = {f":a{i}": v for i, v in enumerate(attrs.values())}
        names["#u"] = "updated_at"
        values[":old_updated"] = old.get("updated_at")
        removes = [k for k in ("quality_score", "prompt_used", "vlt_spec") if k in old and k not in attrs]
        expression = "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(attrs)))
        if removes:
            names.update({f"#r{i}": k for i, k in enumerate(removes)})
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes)))
        if (
            storage.update_expression(storage.feedback, key, expression, names, values, condition="#u = :old_updated")
            is not None
        ):
            return "replaced"
    raise StorageUnavailable("feedback: the event kept changing while it was being replaced; retry")


def _note_pending(storage: Any, user_id: str, entry: dict[str, Any], ts: int) -> dict[str, Any] | None:
    """Append the event to the state item's pending list; the state item (after the update)
    when this call set the retrain marker, else None.

    The marker is set when no retrain is pending (or the pending one is stale: its message was
    lost), and once more per retrain cycle when FLUSH_EVERY events are pending (feedback is
    arriving faster than the coalescing window): ``retrain_flush_at``, cleared when a retrain
    starts, lets that happen once. The common case (a retrain pending, few events) is one
    conditional write; the pending list is capped (a stalled retrain must not grow the item).
    The three conditions cover every state but a full list with a retrain pending, so when all
    three fail otherwise, a concurrent submit changed the state between them: try again.
    """
    key = events.state_key(user_id)
    names = {"#p": "pending_feedback", "#r": "pending_revision", "#m": "retrain_requested_at", "#f": "retrain_flush_at"}
    # The common write's condition implies the list exists, so it appends without
    # if_not_exists, and ADD counts without one: moto parses every expression on each call, and
    # the shorter one was ~0.8 ms of a ~10 ms submit there (bench/bench_latency.py).
    append, create = "#p = list_append(#p, :ev)", "#p = list_append(if_not_exists(#p, :e), :ev)"
    count = "ADD #r :one"
    stale, cap, flush = {":stale": ts - STALE_MARKER_MS}, {":cap": events.PENDING_CAP}, {":flush": events.FLUSH_EVERY}
    for _ in range(_NOTE_ATTEMPTS):
        if (
            storage.update_expression(
                storage.feedback,
                key,
                f"SET {append} {count}",
                names,
                {":ev": [entry], ":one": 1, **stale, **cap, **flush},
                condition="attribute_exists(#m) AND #m >= :stale AND size(#p) < :cap "
                "AND (size(#p) < :flush OR attribute_exists(#f))",
            )
            is not None
        ):
            return None
        marked = storage.update_expression(
            storage.feedback,
            key,
            f"SET {create}, #m = :now {count}",
            {k: names[k] for k in ("#p", "#r", "#m")},
            {":e": [], ":ev": [entry], ":one": 1, **stale, ":now": ts},
            condition="attribute_not_exists(#m) OR #m < :stale",
            return_values="ALL_NEW",
        )
        if marked is not None:
            return marked
        marked = storage.update_expression(
            storage.feedback,
            key,
            f"SET {create}, #m = :now, #f = :now {count}",
            names,
            {":e": [], ":ev": [entry], ":one": 1, **cap, **flush, ":now": ts},
            condition="size(#p) >= :flush AND size(#p) < :cap AND attribute_not_exists(#f)",
            return_values="ALL_NEW",
        )
        if marked is not None:
            return marked
        if len(events.pending_of(storage.get_item(storage.feedback, key))) >= events.PENDING_CAP:
            return None  # full, a retrain pending: the event waits in the table for that retrain
    logger.warning("feedback stored but not pending: its state kept changing", extra={"user_id": user_id})
    return None


def _coalesce_delay(storage: Any, state: dict[str, Any], ts: int) -> tuple[int, str]:
    """(delay in seconds, reason): none when many events are pending ("flush") or the last
    retrain started a window ago or more; else the rest of the window ("feedback")."""
    window = int(storage.settings.retrain_coalesce_seconds)
    if len(events.pending_of(state)) >= events.FLUSH_EVERY:
        return 0, "flush"
    last = int(state.get("reward_retrained_at") or 0)
    elapsed = (ts - last) / 1000.0
    return (0 if elapsed >= window else int(min(window, max(1.0, window - elapsed)))), "feedback"


def _queue_retrain(storage: Any, user_id: str, ts: int, reason: str, delay: int) -> bool:
    try:
        storage.send_message({"user_id": user_id, "requested_at": ts, "reason": reason}, delay_seconds=delay)
        return True
    except StorageUnavailable:
        # Release the marker so that the next event (or rlhf/train) queues the retrain.
        storage.update_expression(
            storage.feedback,
            events.state_key(user_id),
            "REMOVE #m",
            {"#m": "retrain_requested_at"},
            {":ts": ts},
            condition="#m = :ts",
        )
        logger.warning("retrain message not sent; the next feedback will queue it", extra={"user_id": user_id})
        return False


def submit_feedback(request: FeedbackRequest, storage: Any) -> FeedbackResponse:
    """Store one feedback event idempotently and queue a (coalesced) retrain."""
    ts = events.now_ms()
    key = events.event_key(request.generation_id, request.asset_id)
    item = _event_item(request, key, ts)
    outcome = _store_event(storage, item)
    if outcome == "duplicate":
        return FeedbackResponse(feedback_id=item["feedback_id"], queued=False, duplicate=True)
    entry = events.pending_entry(
        key,
        ts,
        request.feedback_type,
        request.quality_score,
        item["phrases"],
        item["spec_tokens"],
        item["signature"],
    )
    queued = True
    try:
        state = _note_pending(storage, request.user_id, entry, ts)
        if state is not None:
            delay, reason = _coalesce_delay(storage, state, ts)
            queued = _queue_retrain(storage, request.user_id, ts, reason, delay)
    except StorageUnavailable:
        # The event is stored (the next retrain reads it from the feedback table); only the
        # retrain trigger is missing until the next feedback or rlhf/train. Not the client's
        # fault, and a retry would only answer "duplicate".
        logger.warning("feedback stored but no retrain queued", extra={"user_id": request.user_id})
        queued = False
    return FeedbackResponse(feedback_id=item["feedback_id"], queued=queued, duplicate=False)


def request_retrain(request: TrainRequest, storage: Any) -> TrainResponse:
    """Queue a retrain now (an explicit request is not coalesced; retraining is idempotent)."""
    ts = events.now_ms()
    # The pending list is created with the marker: submit's conditions read its size.
    storage.update_expression(
        storage.feedback,
        events.state_key(request.user_id),
        "SET #m = :now, #p = if_not_exists(#p, :e)",
        {"#m": "retrain_requested_at", "#p": "pending_feedback"},
        {":now": ts, ":e": []},
    )
    return TrainResponse(queued=_queue_retrain(storage, request.user_id, ts, "train", 0))


def model_info(user_id: str, storage: Any) -> RewardModelInfo:
    """The designer's serving reward model (404 when there is none); one BatchGetItem."""
    item, state = storage.get_items(
        [(storage.profiles, {"user_id": user_id}), (storage.feedback, events.state_key(user_id))]
    )
    item = item or {}
    pointer = item.get("reward_model")
    if not isinstance(pointer, dict) or not item.get("reward_version"):
        raise NotFound(f"no reward model for user {user_id!r}")
    # Pointers written before reward_summary held these themselves.
    summary = report_of(item.get("reward_summary")) or pointer
    return RewardModelInfo(
        user_id=user_id,
        version=int(item["reward_version"]),
        n_events=int(pointer.get("n_events") or 0),
        metrics=summary.get("metrics") or {},
        likes_most=summary.get("likes_most") or [],
        dislikes_most=summary.get("dislikes_most") or [],
        updated_at=pointer.get("updated_at"),
        trained_through=pointer.get("trained_through"),
        population_version=pointer.get("population_version"),
        last_retrain=report_of(item.get("reward_last_retrain")),
        pending_events=len(events.pending_of(state)),
    )
