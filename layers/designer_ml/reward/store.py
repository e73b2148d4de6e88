"""Where the reward models and their pointers live (via ``Storage``); pending entries as rows.

Profiles table item of a designer (``user_id``), reward attributes only (other stages own the
rest of the item):

- ``reward_model`` (map of scalars): pointer to the serving model: ``version``, ``key`` (ONNX),
  ``meta_key`` (JSON), ``schema``, ``n_events``, ``trained_through``, ``fingerprint``,
  ``updated_at``, ``population_version``; ``reward_version`` is its counter (conditional writes
  by retrain). Serving reads these two attributes only (``POINTER_ATTRIBUTES``).
- ``reward_summary`` (JSON text, ``report_text``): the serving model's ``metrics``,
  ``likes_most``, ``dislikes_most``, for ``GET .../rlhf/model`` (pointers written before it held
  them themselves).
- ``reward_last_retrain`` (JSON text; a map in items written before): the last candidate's
  fingerprint, metrics, whether it was promoted and why not.

What feedback changes (the pending evidence and the retrain markers) lives in the designer's
feedback state item of the feedback table (``events``), so that a like does not rewrite the
profile item.

The population model hangs off the item ``user_id = "#population"`` ('#' cannot be in a user
id). Artifacts: ``models/{user_id}/reward/v{n}-{fingerprint}.onnx`` and ``.json``, the
population's under ``models/_population/reward/``; the fingerprint in the name keeps two
racing retrains from overwriting each other's artifact before one of them wins the pointer.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from designer_ml import onnx_models
from designer_ml.errors import ModelIntegrityError, StorageUnavailable
from designer_ml.observability import logger
from designer_ml.reward import POINTER_ATTRIBUTES
from designer_ml.reward import features as F
from designer_ml.reward import model as M
from designer_ml.reward.belief import NumpyScorer, OnnxScorer, Scorer
from designer_ml.reward.events import prompt_phrases, signature  # noqa: F401 (row_of's callers use them)
from designer_ml.reward.vocabulary import BY_TEXT

POPULATION_ID = "#population"
POPULATION_PREFIX = "models/_population/reward"
# How long a process trusts its copy of the population pointer (it changes with every retrain).
POPULATION_POINTER_TTL_S = 15.0


def model_prefix(user_id: str) -> str:
    return f"models/{user_id}/reward"


# -- events as feature rows ----------------------------------------------------------------


def row_of(phrases: Sequence[str], tokens: Sequence[str], style_probs: Mapping[int, float] | None = None) -> np.ndarray:
    """The feature row (D,) of an event from its phrase texts and spec tokens.

    Phrases no longer in the vocabulary are skipped (a vocabulary change keeps old events).
    """
    indices = [BY_TEXT[t].index for t in phrases if t in BY_TEXT]
    return F.event_row(indices, tokens, style_probs)


def pending_row(entry: Mapping[str, Any]) -> np.ndarray | None:
    """The feature row (D,) of a decoded pending entry (``events.decode_entry``); None when
    written under another feature schema."""
    if entry.get("f") != F.FEATURE_SCHEMA[:8]:
        return None
    spec = np.zeros(F.HASH_BUCKETS)
    for code in entry.get("s") or []:
        spec[abs(int(code)) - 1] += 1.0 if int(code) > 0 else -1.0
    norm = np.linalg.norm(spec)
    row = np.zeros(F.D)
    row[F.INTERCEPT] = 1.0
    row[F.SPEC_START : F.STYLE_START] = spec / norm if norm > 0 else spec
    indices = [int(i) for i in entry.get("p") or [] if 0 <= int(i) < F.N_PHRASES]
    row[[F.PHRASE_START + i for i in indices]] = 1.0
    return row


# -- model pointers and artifacts ---------------------------------------------------------------


@dataclass
class ServingModel:
    """The model an optimize request scores with, and what it has already seen."""

    scorer: Scorer
    source: str  # "user", "population" or "template"
    version: int | None = None
    population_version: int | None = None
    trained_through: int = 0
    n_events: int = 0  # the designer's own events the model was trained on
    n_decisions: int = 0  # the distinct generations (prompts) among them
    signatures: Counter[str] = field(default_factory=Counter)
    meta: Mapping[str, Any] = field(default_factory=dict)


_META_CACHE: OrderedDict[str, dict[str, Any]] = OrderedDict()
_META_LOCK = threading.Lock()
_POPULATION_POINTER: dict[str, Any] = {"at": -1e9, "value": None}


def _recall(key: str) -> dict[str, Any] | None:
    with _META_LOCK:
        if key in _META_CACHE:
            _META_CACHE.move_to_end(key)
            return _META_CACHE[key]
    return None


def _remember(key: str, meta: dict[str, Any]) -> dict[str, Any]:
    with _META_LOCK:
        _META_CACHE[key] = meta
        while len(_META_CACHE) > 64:
            _META_CACHE.popitem(last=False)
    return meta


def cached_meta(storage: Any, meta_key: str) -> dict[str, Any] | None:
    """A model's JSON metadata at ``meta_key`` (read once per process)."""
    meta = _recall(meta_key)
    if meta is None:
        meta = storage.get_json(meta_key)
        if not isinstance(meta, dict):
            return None
        _remember(meta_key, meta)
    return meta


# The metadata document a reward model carries (``onnx_models.with_documents``): its JSON
# metadata without what only retraining reads (sufficient statistics, the population's aggregates
# and contributors: ~97% of a designer's JSON by size), so serving reads one S3 object per model.
SERVING_META = "meta.json"
_TRAINING_ONLY = frozenset({"stats", "agg_precision", "agg_information", "between", "contributors"})


def put_model(storage: Any, key: str, meta_key: str, onnx_bytes: bytes, meta: Mapping[str, Any]) -> None:
    """Store a model (retrain): the ONNX artifact at ``key``, carrying its serving metadata (the
    metadata without what only retraining reads), and the whole metadata as JSON at ``meta_key``."""
    carried = {k: v for k, v in meta.items() if k not in _TRAINING_ONLY}
    storage.put_bytes(key, onnx_models.with_documents(onnx_bytes, {SERVING_META: carried}))
    storage.put_json(meta_key, meta)


def _serving_meta(storage: Any, key: str, meta_key: str, session: Any) -> dict[str, Any] | None:
    """The serving metadata of the model at ``key``: carried by its artifact, else (a model stored
    before artifacts carried it) its JSON at ``meta_key``, one more S3 read. Cached per key."""
    meta = _recall(key)
    if meta is not None:
        return meta
    carried = onnx_models.documents(session).get(SERVING_META)
    return _remember(key, carried) if isinstance(carried, dict) else cached_meta(storage, meta_key)


def load_pointed_model(storage: Any, pointer: Mapping[str, Any] | None) -> tuple[OnnxScorer, dict[str, Any]] | None:
    """The ONNX scorer and metadata a pointer names; None when absent, gone or corrupt (logged)."""
    if not isinstance(pointer, Mapping) or not pointer.get("key") or not pointer.get("meta_key"):
        return None
    if pointer.get("schema") != F.FEATURE_SCHEMA:
        logger.info("reward model of another feature schema ignored", extra={"key": pointer.get("key")})
        return None
    key = str(pointer["key"])
    try:
        session = onnx_models.cached_session(key, lambda: storage.get_bytes(key))
        if session is None:
            logger.warning("reward model pointer names a missing artifact", extra={"key": pointer.get("key")})
            return None
        meta = _serving_meta(storage, key, str(pointer["meta_key"]), session)
        if meta is None or meta.get("schema") != F.FEATURE_SCHEMA:
            logger.warning("reward model metadata missing or of another schema", extra={"key": pointer.get("meta_key")})
            return None
        scorer = OnnxScorer(session)
        outputs = [o.shape[-1] for o in session.get_outputs()]
        if [i.shape[-1] for i in session.get_inputs()] != [F.D] or outputs[0] != 1:
            raise ModelIntegrityError(f"reward model {pointer['key']} has the wrong shape")
        return scorer, meta
    except (ModelIntegrityError, StorageUnavailable, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        logger.warning("reward model unusable; falling back", extra={"key": pointer.get("key"), "error": str(exc)})
        return None


@lru_cache(maxsize=1)
def template_scorer() -> NumpyScorer:
    """The built-in prior (no feedback from anyone yet): population prior widened per designer."""
    mean, precision = M.designer_prior(M.population_posterior(None, None))
    return NumpyScorer(mean, M.Posterior(mean, precision).sqrt_cov())


def population_pointer(storage: Any, fresh: bool = False) -> dict[str, Any] | None:
    """The population model's pointer (cached for a few seconds per process)."""
    now = time.monotonic()
    if not fresh and now - _POPULATION_POINTER["at"] < POPULATION_POINTER_TTL_S:
        return _POPULATION_POINTER["value"]
    item = storage.get_item(
        storage.profiles, {"user_id": POPULATION_ID}, consistent=fresh, attributes=POINTER_ATTRIBUTES
    )
    item = item or {}
    value = item.get("reward_model") if isinstance(item.get("reward_model"), dict) else None
    if value is not None:
        value = {**value, "version": item.get("reward_version")}
    _POPULATION_POINTER.update(at=now, value=value)
    return value


def serving_model(storage: Any, item: Mapping[str, Any] | None) -> ServingModel:
    """The designer's model, else the population's, else the template prior. Never raises."""
    item = item or {}
    own = item.get("reward_model")
    loaded = load_pointed_model(storage, own) if own else None
    if loaded is not None:
        scorer, meta = loaded
        return ServingModel(
            scorer=scorer,
            source="user",
            version=_int(item.get("reward_version") or own.get("version")),
            population_version=_int(meta.get("population_version")),
            trained_through=int(meta.get("trained_through") or 0),
            n_events=int(meta.get("n_events") or 0),
            # Models published before decisions were counted: one event, one decision.
            n_decisions=int(meta.get("n_decisions") or meta.get("n_events") or 0),
            signatures=Counter(meta.get("signatures") or []),
            meta=meta,
        )
    try:
        pointer = population_pointer(storage)
    except StorageUnavailable:
        pointer = None
    loaded = load_pointed_model(storage, pointer) if pointer else None
    if loaded is not None:
        return ServingModel(
            scorer=loaded[0], source="population", population_version=_int(pointer.get("version")), meta=loaded[1]
        )
    return ServingModel(scorer=template_scorer(), source="template")


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def clear_caches() -> None:
    with _META_LOCK:
        _META_CACHE.clear()
    _POPULATION_POINTER.update(at=-1e9, value=None)
    template_scorer.cache_clear()
