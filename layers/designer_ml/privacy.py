"""A designer's right to their data: everything stored about them, and its erasure."""

from __future__ import annotations

import json
from typing import Any

from designer_ml.errors import NotFound
from designer_ml.reward import report_of
from designer_ml.reward.events import decode_entry, pending_of, split_state
from designer_ml.storage import Storage


def user_prefixes(user_id: str) -> list[str]:
    """Every S3 prefix that holds a user's objects (the trailing slash keeps `u1` off `u10`)."""
    return [f"records/{user_id}/", f"models/{user_id}/"]


def export_user(storage: Storage, user_id: str) -> dict[str, Any]:
    """Profile, portfolio records, feedback events (and the feedback state: pending evidence,
    retrain markers) and model artifacts of one designer.

    Raises NotFound when nothing at all is stored about the user.
    """
    item = storage.get_item(storage.profiles, {"user_id": user_id})
    profile = None
    if item is not None:
        profile = {k: v for k, v in item.items() if k != "document"}
        if item.get("document"):
            profile["document"] = json.loads(item["document"])
        for report in ("reward_summary", "reward_last_retrain"):  # JSON text, as the document
            if report in item:
                profile[report] = report_of(item[report])
    feedback, feedback_state = split_state(storage.query_user(storage.feedback, user_id))
    if feedback_state is not None:
        pending = [decode_entry(raw) or raw for raw in pending_of(feedback_state)]
        feedback_state = {**feedback_state, "pending_feedback": pending}
    records: dict[str, Any] = {}
    models: list[str] = []
    for key in storage.list_keys(f"records/{user_id}/"):
        records[key] = storage.get_json(key)
    for key in storage.list_keys(f"models/{user_id}/"):
        models.append(key)
    if item is None and not feedback and feedback_state is None and not records and not models:
        raise NotFound(f"user_id: nothing is stored about {user_id!r}")
    return {
        "user_id": user_id,
        "profile": profile,
        "records": records,
        "feedback": feedback,
        "feedback_state": feedback_state,
        "model_artifacts": sorted(models),
    }


def delete_user(storage: Storage, user_id: str) -> dict[str, int]:
    """Remove a designer's data from every table and prefix; returns what was deleted.

    Idempotent: deleting a user with nothing stored deletes nothing and does not fail. The
    designer's evidence is first taken out of the population reward model (their model
    document holds the statistics to subtract, so this happens before the artifacts go).
    """
    from designer_ml.reward.retrain import forget_designer

    forget_designer(storage, user_id)
    # Every item under the designer's hash key: their events and their feedback state item.
    items = storage.query_user(storage.feedback, user_id)
    for item in items:
        storage.delete_item(storage.feedback, {"user_id": user_id, "event_key": item["event_key"]})
    events, _ = split_state(items)
    profile = storage.get_item(storage.profiles, {"user_id": user_id})
    if profile is not None:
        storage.delete_item(storage.profiles, {"user_id": user_id})
    objects = sum(storage.delete_prefix(prefix) for prefix in user_prefixes(user_id))
    return {"profiles": int(profile is not None), "feedback_events": len(events), "objects": objects}
