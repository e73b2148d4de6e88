"""Feedback events and each designer's feedback state, in the feedback table (no numpy here).

The submit request path (``reward.feedback``) imports this module and ``features``/
``vocabulary`` for their pure-python parts only, so that a feedback function's cold start
does not load numpy (tests/infra/test_import_tree.py).

Feedback table, hash key ``user_id``, range key ``event_key``:

- an event: ``event_key = generation_id#asset_id`` (:func:`event_key`: '#' and '%' inside the
  ids escaped, so every event key holds exactly one bare '#');
- the designer's feedback state: ``event_key = "%state"`` (:data:`STATE_KEY`: no '#', and an
  escaped id holds '%' only as ``%25``/``%23``, so it is no event key twice over). One small
  item that every submit updates instead of the designer's (large) profile item, so that a
  like costs the write units of the event and of this item only:

  - ``pending_feedback`` (list, at most ``PENDING_CAP``): compact copies of the events
    submitted since they were last folded into a promoted model, so that optimize learns from
    a like at once, before the coalesced retrain runs. Each is one JSON string (``k`` event
    key, ``ts`` ms, ``t`` feedback type, ``q`` quality score or absent, ``p`` phrase indices,
    ``s`` signed spec hash buckets, ``f`` feature schema, ``g`` signature; about 150 bytes):
    nothing queries inside an entry, and a string is one attribute value where a map is ~30,
    which every write of the item re-encodes (moto copies them all on each update: an append
    to 48 pending maps took ~10 ms, bench/bench_latency.py). The reward is derived where it is
    used (``model.reward_of``), as retrain derives it from the events.
  - ``pending_revision``: bumped by every change of the list (append or trim), so that a
    retrain rewrites the list only if nothing changed since it read it.
  - ``retrain_requested_at`` (ms): set when a retrain message is queued, cleared when the
    retrain starts; at most one retrain per designer is pending (coalescing).
    ``retrain_flush_at`` marks the one early retrain of a cycle with many pending.
  - ``reward_retrained_at`` (ms): when the last retrain started (the coalescing window).

Every listing of a designer's events goes through :func:`split_state` (or
:func:`read_feedback`), which keeps the state item out of them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from designer_ml.reward import features as F
from designer_ml.reward.vocabulary import BY_TEXT, parse_prompt

STATE_KEY = "%state"
PENDING_CAP = 256
# A designer sending feedback fast gets a retrain (once per retrain cycle) when this many events
# are pending, whatever the coalescing window (optimize reads at most PENDING_CAP of them).
FLUSH_EVERY = 48


def now_ms() -> int:
    return int(time.time() * 1000)


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace("#", "%23")


def event_key(generation_id: str, asset_id: str) -> str:
    """``generation_id#asset_id``, with '#' and '%' escaped inside the ids so keys cannot collide."""
    return f"{_escape(generation_id)}#{_escape(asset_id)}"


def state_key(user_id: str) -> dict[str, str]:
    """Key of the designer's feedback state item in the feedback table."""
    return {"user_id": user_id, "event_key": STATE_KEY}


def is_event(item: Mapping[str, Any]) -> bool:
    return item.get("event_key") != STATE_KEY


def split_state(items: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(events, state item or None) of one designer's feedback-table items."""
    events: list[dict[str, Any]] = []
    state = None
    for item in items:
        if is_event(item):
            events.append(item)
        else:
            state = item
    return events, state


def read_feedback(storage: Any, user_id: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(events, state item or None) of one designer: one Query (all pages), strongly consistent."""
    return split_state(storage.query_user(storage.feedback, user_id))


def pending_of(state: Mapping[str, Any] | None) -> list[Any]:
    """The stored pending list of a state item, entries as stored (JSON strings)."""
    pending = (state or {}).get("pending_feedback")
    return pending if isinstance(pending, list) else []


def decode_entry(raw: Any) -> dict[str, Any] | None:
    """A pending entry as a dict; None when it is not one."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def prompt_phrases(prompt: str | None) -> list[str]:
    return [p.text for p in parse_prompt(prompt)]


def signature(feedback_type: str | None, quality: float | None, phrases: Sequence[str], tokens: Sequence[str]) -> str:
    """What an event says (not who sent it): used to recognise the same event twice."""
    text = json.dumps([feedback_type, quality, sorted(phrases), sorted(tokens)], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pending_entry(
    key: str,
    ts: int,
    feedback_type: str,
    quality: float | None,
    phrases: Sequence[str],
    tokens: Sequence[str],
    sig: str,
) -> str:
    """The compact copy of an event kept in the pending list (phrase indices, hashed spec), as
    JSON text."""
    buckets = [(j + 1) * int(sign) for j, sign in (F.bucket(t) for t in tokens)]
    indices = [BY_TEXT[t].index for t in phrases if t in BY_TEXT]
    entry: dict[str, Any] = {
        "k": key,
        "ts": ts,
        "t": feedback_type,
        "p": indices,
        "s": buckets,
        "f": F.FEATURE_SCHEMA[:8],
        "g": sig,
    }
    if quality is not None:
        entry["q"] = float(quality)
    return json.dumps(entry, separators=(",", ":"))
