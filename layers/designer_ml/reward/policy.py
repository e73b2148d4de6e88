"""Candidate prompts and the policy that picks one (Thompson sampling or posterior-mean best).

For one request the spec and style mode are fixed, so a prompt's score is the context's
score plus one weight per phrase it holds. The policy therefore draws one posterior sample
of every phrase's weight (a batched scorer call on one probe row per phrase), builds the
candidates that sample and the posterior mean prefer slot by slot, adds the plain template,
the base prompt's phrases, mutations and style-leaning random variations, scores all
candidates in one batched scorer call, and picks:

- ``explore=True`` (``thompson``): the best candidate under the posterior sample (same draw
  as the one that built the sample's candidate, so the choice is exact Thompson sampling
  over the whole phrase space);
- ``explore=False`` (``greedy``): the best posterior mean.

Both add small bonuses: phrases of the plain template (so a designer nobody knows anything
about gets the template) and phrases that fill the selection stage's coverage gaps. Every
random choice comes from one ``numpy.random.Generator`` seeded by the request's seed, so a
decision replays exactly from (seed, model, evidence, request).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from designer_ml.reward import features as F
from designer_ml.reward import vocabulary as vocab
from designer_ml.reward.belief import Belief, Scorer

# Bonuses in P(like) units. A template phrase wins ties (and nothing else); a gap-filling
# phrase is worth about one dislike's worth of evidence against it.
TEMPLATE_BONUS = 0.005
COVERAGE_BONUS = 0.03
# Samples for the Monte Carlo estimate of the chosen candidate's probability under Thompson sampling.
PROPENSITY_SAMPLES = 64
# Thompson draws use the posterior with its spread scaled by a factor (a tempered posterior)
# that shrinks as the designer's own feedback grows: EXPLORATION_SCALE / (1 + n /
# EXPLORATION_DECAY_EVENTS), never below EXPLORATION_FLOOR (so a designer whose taste moves is
# still followed). With ~100 phrase weights and one like/dislike per round, full-width draws
# keep exploring long after the taste is clear (1.0: 65-78% of the best fixed prompt; 0, i.e.
# greedy, gets stuck at 62-89%). Measured on bench_reward's simulated designers in a numpy
# loop of this model (10 designers x 200 rounds, four simulated worlds, same seeds): a fixed
# 0.3 reached 0.85 / 0.94 / 0.88 / 0.95 of the best fixed prompt over rounds 51-200 (regret
# 41.6 / 22.0 / 34.5 / 19.7); 0.5 / (1 + n/50) reached 0.88 / 0.96 / 0.93 / 0.96 (regret
# 36.2 / 19.5 / 26.8 / 17.2), better in every world; 0.5 / (1 + n/25) was as good, slower
# decays (0.45-0.8 over 60-200 events) no better than the fixed 0.3.
EXPLORATION_SCALE = 0.5
EXPLORATION_DECAY_EVENTS = 50.0
EXPLORATION_FLOOR = 0.1
# Apprentice mode: until the model's best prompt beats the base prompt (the designer's own
# base_prompt, else the plain template with any coverage-gap phrases) by APPRENTICE_Z
# posterior standard deviations of the
# difference, the base prompt is served, except on a share APPRENTICE_EXPLORATION of
# exploring requests, which get the Thompson choice (so the model keeps learning what the
# base prompt never shows it). A designer is never served worse than what they asked for
# unless the model is confident, and the mixture keeps every choice's probability known.
APPRENTICE_Z = 1.0
APPRENTICE_EXPLORATION = 0.2
GENERIC_FRAMING = ("3/4 angle", "eye level shot", "low angle shot", "close-up detail shot")
GENERIC_DETAIL = ("fabric texture detail",)


def _indices(texts: Sequence[str]) -> tuple[int, ...]:
    return tuple(sorted(vocab.BY_TEXT[t].index for t in texts if t in vocab.BY_TEXT))


def allowed_phrases(family: str) -> dict[str, tuple[int, ...]]:
    """Per slot, the phrases a prompt for this garment family may hold."""
    garment = vocab.GARMENT_MODIFIERS.get(family, vocab.GARMENT_MODIFIERS["other"])
    out: dict[str, tuple[int, ...]] = {}
    for slot in vocab.SLOT_NAMES:
        if slot == "framing":
            out[slot] = _indices(tuple(dict.fromkeys(garment["framing"] + GENERIC_FRAMING)))
        elif slot == "detail":
            out[slot] = _indices(tuple(dict.fromkeys(garment["detail"] + GENERIC_DETAIL)))
        else:
            out[slot] = tuple(p.index for p in vocab.BY_SLOT[slot])
    return out


@dataclass
class Decision:
    """One optimize decision.

    Attributes
    ----------
    candidates : list of tuple of int
        Phrase indices of every scored candidate.
    chosen : int
        Index of the chosen candidate.
    mean, sd : ndarray of shape (n_candidates,)
        Posterior mean and standard deviation of each candidate's P(like) (mean unclipped).
    phrase_mean, phrase_sd : ndarray of shape (N_PHRASES,)
        Posterior mean and sd of each phrase's effect on P(like) in this context.
    baseline_mean : float
        Posterior mean P(like) of the base prompt's phrases (else the plain template).
    exploration_scale : float
        Spread factor of the Thompson draw (0 for greedy).
    """

    candidates: list[tuple[int, ...]]
    chosen: int
    mean: np.ndarray
    sd: np.ndarray
    policy: str
    chosen_probability: float
    phrase_mean: np.ndarray
    phrase_sd: np.ndarray
    template: tuple[int, ...]
    baseline_mean: float
    n_evidence: int
    exploration_scale: float
    bonus: np.ndarray = field(repr=False)
    apprentice: bool = False
    apprentice_reason: str | None = None
    base_advantage: tuple[float, float] = (0.0, 0.0)  # (mean, sd) of model's best minus the base
    served: str = "model"  # "base": the chosen prompt is the base prompt


def _top_k(slot_indices: Sequence[int], scores: np.ndarray, k: int) -> np.ndarray:
    """Per column of ``scores`` (N_PHRASES, n), the ``k`` best phrases of one slot: (k, n)."""
    idx = np.asarray(slot_indices)
    k = min(k, len(idx))
    order = np.argsort(-scores[idx], axis=0, kind="stable")[:k]
    return idx[order]


def _by_slot(scores: np.ndarray, allowed: Mapping[str, tuple[int, ...]]) -> np.ndarray:
    """Indicator rows (n, N_PHRASES) of the per-slot best phrases under each column of scores."""
    scores = scores.reshape(vocab.N_PHRASES, -1)
    n = scores.shape[1]
    out = np.zeros((n, vocab.N_PHRASES), dtype=bool)
    cols = np.arange(n)
    for slot, picks in vocab.SLOTS:
        for row in _top_k(allowed[slot], scores, picks):
            out[cols, row] = True
    return out


def _as_tuple(row: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.flatnonzero(row))


def generate_candidates(
    rng: np.random.Generator,
    n: int,
    firsts: Sequence[tuple[int, ...]],
    draws: np.ndarray | None,
    allowed: Mapping[str, tuple[int, ...]],
    preferred: Mapping[str, tuple[int, ...]],
) -> list[tuple[int, ...]]:
    """Up to ``n`` distinct candidates: ``firsts``, then the per-slot best under each column of
    ``draws`` (N_PHRASES, m) (posterior draws: good and diverse), then random variations that
    lean three to one towards the style's and garment's own phrases (Gumbel top-k)."""
    seen: dict[tuple[int, ...], None] = dict.fromkeys(firsts)
    if draws is not None and draws.shape[1] and len(seen) < n:
        for row in _by_slot(draws, allowed):
            seen.setdefault(_as_tuple(row), None)
    missing = n - len(seen)
    if missing > 0:
        lean = np.zeros(vocab.N_PHRASES)
        for slot in vocab.SLOT_NAMES:
            lean[list(preferred.get(slot, ()))] = np.log(3.0)
        gumbel = lean[:, None] - np.log(-np.log(rng.random((vocab.N_PHRASES, 2 * missing))))
        for row in _by_slot(gumbel, allowed):
            seen.setdefault(_as_tuple(row), None)
    return list(seen)[: max(1, n)]


def exploration_scale(n_decisions: int) -> float:
    """The Thompson draw's spread factor for a designer who gave feedback on ``n_decisions``
    prompts (a prompt's several images are one decision: their likes already narrow the
    posterior; counting them again here made k = 4 images per prompt stop exploring four
    times sooner, bench_reward's world 0: 0.84 of the best fixed prompt against 0.93 for the
    per-designer yardstick, whose schedule counts rounds)."""
    return max(EXPLORATION_FLOOR, EXPLORATION_SCALE / (1.0 + max(0, n_decisions) / EXPLORATION_DECAY_EVENTS))


def decide(
    scorer: Scorer,
    context: np.ndarray,
    *,
    family: str,
    style: str | None,
    coverage_bonus: np.ndarray | None = None,
    base: tuple[int, ...] | None = None,
    evidence: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    explore: bool = True,
    rng: np.random.Generator,
    n_candidates: int = 128,
    n_decisions: int = 0,
    model_worse_than_base: bool = False,
) -> Decision:
    """Choose a prompt for one request.

    Parameters
    ----------
    scorer : Scorer
        The designer's stored model (or the population's, or the template prior).
    context : ndarray of shape (D,)
        The request's row without phrases (``features.context_row``).
    evidence : (X (n, D), y (n,), weights (n,)), optional
        Events the stored model has not seen.
    n_decisions : int
        The prompts the designer gave feedback on, those of the stored model (0 for the
        population's or the template's) and of the evidence: they set how widely Thompson
        sampling explores.
    model_worse_than_base : bool
        The off-policy evaluation of the logged decisions found the model's choices worse than
        the base prompt (:mod:`designer_ml.reward.ope`): apprentice mode whatever the posterior says.
    """
    allowed = allowed_phrases(family)
    template_texts = vocab.template_phrases(style, family)
    template = tuple(sorted(_indices([t for slot in vocab.SLOT_NAMES for t in template_texts[slot]])))
    preferred = {slot: _indices(texts) for slot, texts in vocab.preferred_pool(style, family).items()}

    probes = np.repeat(context[None, :], vocab.N_PHRASES + 1, axis=0)
    probes[np.arange(1, vocab.N_PHRASES + 1), F.PHRASE_START + np.arange(vocab.N_PHRASES)] += 1.0
    batch = probes if evidence is None else np.vstack([probes, evidence[0]])
    m_all, Z_all = scorer.project(batch)
    r = Z_all.shape[1]
    n_probe = vocab.N_PHRASES + 1
    if evidence is not None and len(evidence[1]):
        belief = Belief.from_evidence(m_all[n_probe:], Z_all[n_probe:], evidence[1], evidence[2])
    else:
        belief = Belief.prior(r)
    m_p, Z_p = m_all[1:n_probe] - m_all[0], Z_all[1:n_probe] - Z_all[0]
    phrase_mean = belief.mean(m_p, Z_p)
    phrase_sd = belief.sd(Z_p)

    bonus = np.zeros(vocab.N_PHRASES)
    bonus[list(template)] += TEMPLATE_BONUS
    if coverage_bonus is not None:
        bonus += coverage_bonus

    scale = exploration_scale(n_decisions)
    u_draw = belief.sample_u(scale * rng.standard_normal(r)) if explore else None
    firsts = []
    if u_draw is not None:
        firsts.append(_as_tuple(_by_slot(m_p + Z_p @ u_draw + bonus, allowed)[0]))
    firsts.append(_as_tuple(_by_slot(phrase_mean + bonus, allowed)[0]))
    # What the designer asked for: their base prompt, else the plain template with the phrases
    # that fill the selection stage's coverage gaps (the bonuses alone, slot by slot).
    reference = base if base else _as_tuple(_by_slot(bonus, allowed)[0])
    firsts += [template] + ([base] if base else [reference])
    n_draws = max(0, n_candidates // 2 - len(firsts))
    draws = m_p[:, None] + Z_p @ belief.sample_u(rng.standard_normal((r, n_draws))) + bonus[:, None]
    candidates = generate_candidates(rng, n_candidates, firsts, draws, allowed, preferred)
    references = [c for c in dict.fromkeys([template, base]) if c is not None and c not in candidates]
    X = F.rows_for(context, candidates + references)
    m_all, Z_all = scorer.project(X)
    mean_all, sd_all = belief.mean(m_all, Z_all), belief.sd(Z_all)
    n_c = len(candidates)
    m_c, Z_c, mean, sd = m_all[:n_c], Z_all[:n_c], mean_all[:n_c], sd_all[:n_c]
    reference_mean = dict(zip(candidates + references, mean_all, strict=True))
    cand_bonus = np.array([bonus[list(c)].sum() for c in candidates])
    best = int(np.argmax(mean + cand_bonus))
    ref = candidates.index(reference) if reference in candidates else None
    if ref is not None:
        gap_mean = float(mean[best] - mean[ref])
        gap_sd = float(belief.sd((Z_c[best] - Z_c[ref])[None, :])[0])
    else:  # n_candidates too small to hold it: nothing to compare with
        gap_mean, gap_sd = 0.0, 0.0
    apprentice = ref is not None and best != ref and gap_mean - APPRENTICE_Z * gap_sd <= 0.0
    reason = None
    if ref is not None and best != ref and model_worse_than_base:
        apprentice = True
        reason = (
            "off-policy evaluation of the logged decisions: the model's choices were liked less than the base prompt"
        )
    elif apprentice:
        reason = (
            f"the model's best prompt is not yet better than the base prompt by {APPRENTICE_Z:g} sd "
            f"(+{gap_mean:.3f} P(like), sd {gap_sd:.3f})"
        )
    elif ref is not None and best == ref:
        reason = "the model's best prompt is the base prompt"
    if u_draw is not None:
        thompson = int(np.argmax(m_c + Z_c @ u_draw + cand_bonus))
        draws = belief.sample_u(scale * rng.standard_normal((r, PROPENSITY_SAMPLES)))
        winners = np.argmax(m_c[:, None] + Z_c @ draws + cand_bonus[:, None], axis=0)
        # The draw that made the choice is one of the samples (so the estimate is never 0).
        p_thompson = np.bincount(winners, minlength=len(candidates)).astype(float)
        p_thompson[thompson] += 1.0
        p_thompson /= PROPENSITY_SAMPLES + 1
        if apprentice:
            explores = bool(rng.random() < APPRENTICE_EXPLORATION)
            chosen = thompson if explores else int(ref)  # type: ignore[arg-type]
            probability = APPRENTICE_EXPLORATION * float(p_thompson[chosen]) + (
                (1.0 - APPRENTICE_EXPLORATION) if chosen == ref else 0.0
            )
        else:
            chosen, probability = thompson, float(p_thompson[thompson])
        policy = "thompson"
    else:
        chosen = int(ref) if apprentice else best  # type: ignore[arg-type]
        probability = 1.0
        policy = "greedy"
    baseline_mean = float(reference_mean[base if base else template])
    return Decision(
        candidates=candidates,
        chosen=chosen,
        mean=mean,
        sd=sd,
        policy=policy,
        chosen_probability=probability,
        phrase_mean=phrase_mean,
        phrase_sd=phrase_sd,
        template=template,
        baseline_mean=baseline_mean,
        n_evidence=belief.n_evidence,
        exploration_scale=scale if explore else 0.0,
        bonus=bonus,
        apprentice=apprentice,
        apprentice_reason=reason,
        base_advantage=(gap_mean, gap_sd),
        served="base" if ref is not None and candidates[chosen] == candidates[ref] else "model",
    )
