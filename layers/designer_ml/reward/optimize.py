"""Stage 5: the prompt most likely to please this designer, exploring (POST /api/ml/prompt/optimize).

One BatchGetItem round trip for the stored state: the profile item (reward pointer, coverage
gaps, style pointer) and the designer's feedback state item (pending evidence), then the
style mode, the serving model (cached per artifact), a batched scoring of probe rows and
fresh evidence, a batched scoring of the candidates, a choice. Anything stored that is
missing or broken degrades to the population model or the template prior; it never fails
the request.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from designer_ml.errors import StorageUnavailable, Unprocessable
from designer_ml.observability import logger
from designer_ml.reward import POINTER_ATTRIBUTES, events, store
from designer_ml.reward import features as F
from designer_ml.reward import model as M
from designer_ml.reward import vocabulary as vocab
from designer_ml.reward.context import coverage_plan, style_mode
from designer_ml.reward.policy import COVERAGE_BONUS, Decision, decide
from designer_ml.schemas import OptimizeRequest, OptimizeResponse
from designer_ml.vlt import parse_record

DEFAULT_CANDIDATES = 128
# Fresh evidence per request: the newest events beyond this are left to the next retrain.
MAX_EVIDENCE = 256
# A phrase goes into the negative prompt when the designer is believed to dislike it by this
# much (P(like) units) at two posterior standard deviations.
NEGATIVE_THRESHOLD = 0.03
MAX_LEARNED_NEGATIVES = 3
_FEEDBACK_TYPES = frozenset({"like", "dislike", "outlier"})
_FILLER_WORDS = frozenset(
    {
        "a",
        "an",
        "the",
        "with",
        "and",
        "of",
        "in",
        "color",
        "colour",
        "tone",
        "tones",
        "style",
        "garment",
        "model",
        "professional",
        "photo",
        "photography",
        "image",
        "shot",
    }
)


# One thread for the process, not one per request (~65 us a warm request instead of ~160).
_MODEL_READER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reward-model")

# What optimize reads of the profile item: the reward pointer, the style pointer (the document's
# clusters when the style bundle is unusable) and the coverage gaps select stored.
PROFILE_ATTRIBUTES = (*POINTER_ATTRIBUTES, "style_model", "document", "coverage_gaps")


def _stored_state(storage: Any, user_id: str) -> tuple[dict[str, Any], list[Any]]:
    """(profile item, pending entries) of the designer, read together; empty when unreadable."""
    if storage is None:
        return {}, []
    try:
        item, state = storage.get_items(
            [(storage.profiles, {"user_id": user_id}), (storage.feedback, events.state_key(user_id))],
            consistent=False,
            attributes={storage.profiles.name: PROFILE_ATTRIBUTES},
        )
    except StorageUnavailable:
        logger.warning("stored state unreadable; optimizing without it", extra={"user_id": user_id})
        return {}, []
    return item or {}, events.pending_of(state)


def _evidence(
    model: store.ServingModel, pending: Any, history: Sequence[Any] | None
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray] | None, int]:
    """Rows, rewards and weights of the events the serving model has not seen (newest last),
    and how many decisions (distinct generations, or prompts for history items) they hold.

    Pending events newer than the model come first; ``feedback_history`` items count unless
    the same event (by signature) is already in the model or the pending list. Evidence rows
    carry no style-mode columns: the pending list keeps hashed specs, not raw ones, and those
    columns only move a mode's overall like rate, which the next retrain learns.
    """
    rows: list[np.ndarray] = []
    ys: list[float] = []
    ws: list[float] = []
    decisions: set[str] = set()
    known = Counter(model.signatures)
    latest: dict[str, Mapping[str, Any]] = {}
    for raw in pending if isinstance(pending, list) else []:
        entry = events.decode_entry(raw)
        if entry is not None and int(entry.get("ts") or 0) > model.trained_through and entry.get("k"):
            latest[str(entry["k"])] = entry  # a later entry for the same asset replaces the earlier one
    for entry in latest.values():
        if entry.get("t") not in _FEEDBACK_TYPES:
            continue
        try:
            row = store.pending_row(entry)
            y, w = M.reward_of(entry["t"], entry.get("q"))
        except (KeyError, TypeError, ValueError, IndexError):
            continue
        if row is not None:
            rows.append(row)
            ys.append(y)
            ws.append(w)
            known[str(entry.get("g"))] += 1
            decisions.add("g:" + str(entry["k"]).split("#", 1)[0])  # '#' is escaped inside ids
    for item in history or []:
        if item.feedback_type is None:
            continue
        phrases = events.prompt_phrases(item.prompt_used)
        tokens = F.spec_tokens_of(item.vlt_spec.raw()) if item.vlt_spec is not None else []
        sig = events.signature(item.feedback_type, item.quality_score, phrases, tokens)
        if known[sig] > 0:
            known[sig] -= 1
            continue
        y, w = M.reward_of(item.feedback_type, item.quality_score)
        rows.append(store.row_of(phrases, tokens))
        ys.append(y)
        ws.append(w)
        decisions.add("p:" + str(item.prompt_used))
    if not rows:
        return None, 0
    rows, ys, ws = rows[-MAX_EVIDENCE:], ys[-MAX_EVIDENCE:], ws[-MAX_EVIDENCE:]
    return (np.vstack(rows), np.asarray(ys), np.asarray(ws)), len(decisions)


def _extra_segments(base_prompt: str | None, description: str) -> list[str]:
    """Segments of the base prompt that are not vocabulary phrases and add words the
    description lacks (the designer's own words are kept verbatim)."""
    words = set(description.lower().split())
    out = []
    for segment in vocab.unknown_segments(base_prompt):
        seg_words = {w for w in segment.lower().replace("-", " ").split() if w not in _FILLER_WORDS}
        if seg_words - words:
            out.append(segment)
    return out[:4]


def _negative_prompt(decision: Decision, chosen: tuple[int, ...]) -> str:
    upper = decision.phrase_mean + 2.0 * decision.phrase_sd
    disliked = [i for i in np.argsort(upper) if upper[i] < -NEGATIVE_THRESHOLD and i not in chosen]
    learned = [vocab.PHRASES[i].text for i in disliked[:MAX_LEARNED_NEGATIVES]]
    return ", ".join(list(vocab.NEGATIVE_BASE) + learned)


def _rlhf_adjustments(decision: Decision, chosen: tuple[int, ...]) -> list[dict[str, Any]]:
    """Phrases added to / dropped from the plain template, with their learned weights."""
    out: list[dict[str, Any]] = []
    template = set(decision.template)
    chosen_set = set(chosen)
    for action, phrases in (("added", chosen_set - template), ("dropped", template - chosen_set)):
        out += [
            {
                "phrase": vocab.PHRASES[i].text,
                "slot": vocab.PHRASES[i].slot,
                "action": action,
                "weight": round(float(decision.phrase_mean[i]), 4),
                "sd": round(float(decision.phrase_sd[i]), 4),
            }
            for i in sorted(phrases)
        ]
    for entry in out:
        slot_best = max(
            (decision.phrase_mean[j] for j in chosen_set if vocab.PHRASES[j].slot == entry["slot"]), default=0.0
        )
        rivals = [decision.phrase_mean[j] for j in template if vocab.PHRASES[j].slot == entry["slot"]]
        if entry["action"] == "added":
            entry["reason"] = "learned preference" if not rivals or entry["weight"] >= max(rivals) else "exploring"
        else:
            entry["reason"] = "learned dislike" if entry["weight"] < slot_best else "exploring"
    return out


def optimize_prompt(request: OptimizeRequest, storage: Any) -> OptimizeResponse:
    """Answer one optimize request (API.md stage 5)."""
    raw = request.vlt_spec.raw()
    parsed = parse_record(raw)
    if not parsed.usable:
        raise Unprocessable(
            "vlt_spec: record has no usable attributes",
            [{"field": "vlt_spec", "message": "no usable attributes", "type": "value_error"}],
        )
    seed = request.seed if request.seed is not None else secrets.randbits(32)
    rng = np.random.default_rng(seed)
    item, pending = _stored_state(storage, request.user_id)
    # The reward model is read while the style bundle is (their S3 reads overlap on a cold start).
    serving = _MODEL_READER.submit(store.serving_model, storage, item)
    mode = style_mode(storage, request.user_id, raw, parsed, request.style_profile, item)
    model = serving.result()
    evidence, new_decisions = _evidence(model, pending, request.feedback_history)

    family = vocab.garment_family(parsed)
    style = vocab.style_of(list(parsed.values("style.overall")) + list(parsed.values("style.mood"))) or vocab.style_of(
        mode.style_values
    )
    plan = coverage_plan(item.get("coverage_gaps"), parsed, COVERAGE_BONUS)
    base_phrases = events.prompt_phrases(request.base_prompt)
    base = tuple(sorted(vocab.BY_TEXT[t].index for t in base_phrases)) or None
    context = F.context_row(F.spec_tokens(parsed), mode.probs)
    decision = decide(
        model.scorer,
        context,
        family=family,
        style=style,
        coverage_bonus=plan.bonus,
        base=base,
        evidence=evidence,
        explore=request.explore,
        rng=rng,
        n_candidates=request.n_candidates or DEFAULT_CANDIDATES,
        n_decisions=model.n_decisions + new_decisions,
        model_worse_than_base=model.source == "user"
        and ((model.meta.get("metrics") or {}).get("ope") or {}).get("verdict") == "model_worse",
    )
    chosen = decision.candidates[decision.chosen]
    by_slot: dict[str, list[str]] = {}
    for i in chosen:
        by_slot.setdefault(vocab.PHRASES[i].slot, []).append(vocab.PHRASES[i].text)
    description = vocab.describe(parsed, plan.fill, raw)
    prompt = vocab.render(by_slot, description, _extra_segments(request.base_prompt, description))
    mean = float(decision.mean[decision.chosen])
    coverage_notes = [n for n in plan.notes if n["action"] == "filled" or vocab.BY_TEXT[n["phrase"]].index in chosen]
    return OptimizeResponse(
        prompt=prompt,
        negative_prompt=_negative_prompt(decision, chosen),
        confidence=round(min(1.0, max(0.0, mean)), 4),
        improvement=round(mean - decision.baseline_mean, 4),
        adjustments={
            "cluster": mode.cluster_id,
            "rlhf": _rlhf_adjustments(decision, chosen),
            "coverage": coverage_notes,
            "persona": None,
            "style_template": style,
        },
        metadata={
            "cluster_used": mode.cluster_id,
            "style_mode": mode.summary,
            "style_source": mode.source,
            "reward_model_version": model.version,
            "reward_model_source": model.source,
            "population_model_version": model.population_version,
            "candidates_scored": len(decision.candidates),
            "policy": decision.policy,
            "seed": seed,
            "chosen_probability": round(decision.chosen_probability, 4),
            "posterior_sd": round(float(decision.sd[decision.chosen]), 4),
            "evidence_events": decision.n_evidence,
            "exploration_scale": round(decision.exploration_scale, 4),
            "served": decision.served,
            "apprentice": decision.apprentice,
            "apprentice_reason": decision.apprentice_reason,
            "base_advantage": {
                "mean": round(decision.base_advantage[0], 4),
                "sd": round(decision.base_advantage[1], 4),
            },
        },
    )
