"""Preference learning (stages 5 and 10) through the real handlers and the retrain queue.

Simulated designers, each with hidden preferences, play rounds of optimize -> k images ->
like/dislike per image -> submit -> retrain, in process against moto, through the template's
handlers (OptimizeFunction, FeedbackFunction) and the SQS path (the queue is drained into
RetrainFunction, as Lambda's event source mapping would). Policies (``POLICIES``):

- ``ours``: the service as deployed (the default ``explore: true``);
- ``greedy``: the same service with ``explore: false``;
- ``vw_squarecb``, ``vw_epsilon``: Vowpal Wabbit ``cb_explore_adf`` (``VW_ARGS``), one model
  per designer (VW has no population model), on the same action features (see ``_VW``);
- ``yardstick``, ``yardstick_greedy``: ``reference_learner``, an idealised per-designer
  logistic learner (the service's exploration schedule, and greedy), told each prompt's
  offset (the designer's bias, spec and description weights);
- ``yardstick_learned``: the same learner not told the offsets: it learns an intercept and a
  weight per spec token beside the phrase weights (what a per-designer model can know);
- ``base``: the base prompt the simulated designer asked for (the plain template of the spec's
  style and garment family), unchanged every round;
- ``random``: a random variation of the style/garment template every round;
- ``best_fixed``: per garment family, the phrase set the hidden preferences rate best (known
  only to the simulator).

Every round the designer sends ``base_prompt`` (the plain template, ``base_phrases``) with the
spec; the prompt yields ``k`` images, each liked independently with the prompt's P(like) and
each submitted as its own feedback event (one ``generation_id`` per round, one ``asset_id``
per image), as the Node client would. A policy is scored by its prompts' P(like) (not by the
drawn likes). Paired seeds: every policy sees the same designers, the same spec per round and
the same uniforms for the likes (``Designer.schedule``); with k = 1 the draws are those of
the runs before the k images existed, so old figures stay comparable.

Hidden preferences are written against prompt *text*, not the service's internals: a weight
per comma-separated segment (drawn lazily per designer and segment from hashes of names), a
weight per spec attribute value, a bias; P(like) = sigmoid(bias + attributes + segments).
Two kinds of simulated world (``Designer``):

- independent tastes (worlds 0-3, unchanged): segment weight = shared + own, where shared ~
  N(0, 0.7) for 15% of segments (the same for every designer of the world) and own ~
  N(0, 0.9) for 25% of segments (each designer's own); attribute weights N(0, 0.4) per
  designer and ``slot=value`` token.
- archetype-shared tastes (worlds 4 and 5): each designer belongs to one of 4 archetypes
  (drawn from a hash of world and name); segment weight = shared + archetype + residual,
  shared as above, archetype ~ N(0, 0.8) for 25% of segments (the same for every designer
  of the archetype), residual ~ N(0, 0.4) for 25% of segments (the designer's own); attribute
  weights = archetype N(0, 0.4 sqrt(0.75)) + own N(0, 0.4 sqrt(0.25)). The variance of a
  segment weight (0.27 against 0.28) and of an attribute weight (0.16) match the independent
  worlds, so like rates sit in the same range; only where the taste comes from differs.

The oracle needs the phrase vocabulary only to enumerate what a prompt could hold.

Also measured: optimize warm latency with 128 candidates (p50/p99), submit latency, retrain
time for 1,000 events, each beside the seed's way (scikit-learn, one predict call per
candidate; ``partial_fit`` per event) in the same process.

A targeted run from the command line (results merged into ``bench/results/reward_worlds.json``
and its tables printed and written to ``reward_worlds.md`` beside it)::

    .venv/bin/python -m bench.bench_reward --worlds 0,4 --k 4 --policies ours,greedy --designers 20
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "hm_garments.jsonl"
RESULTS = ROOT / "bench" / "results"

from bench import fixtures  # noqa: E402

INDEPENDENT_WORLDS = (0, 1, 2, 3)
ARCHETYPE_WORLDS = (4, 5)
WORLDS = INDEPENDENT_WORLDS + ARCHETYPE_WORLDS
SERVICE_POLICIES = ("ours", "greedy")
POLICIES = (
    "ours",
    "greedy",
    "vw_squarecb",
    "vw_epsilon",
    "yardstick",
    "yardstick_greedy",
    "yardstick_learned",
    "base",
    "random",
    "best_fixed",
)
POLICY_NAMES = {
    "ours": "ours",
    "greedy": "greedy (service, explore false)",
    "vw_squarecb": "VW cb_explore_adf squarecb",
    "vw_epsilon": "VW cb_explore_adf epsilon 0.1",
    "yardstick": "yardstick (service's schedule)",
    "yardstick_greedy": "yardstick greedy",
    "yardstick_learned": "yardstick, offsets learned (service's schedule)",
    "base": "base prompt",
    "random": "random template",
    "best_fixed": "best fixed prompt",
}
# Vowpal Wabbit settings: library defaults otherwise (cb_type mtr, squarecb gamma_scale 10 and
# gamma_exponent 0.5, learning rate 0.5, adaptive normalized invariant updates, 18 bits).
VW_ARGS = {
    "vw_squarecb": "--cb_explore_adf --squarecb --quiet",
    "vw_epsilon": "--cb_explore_adf --epsilon 0.1 --quiet",
}
VW_ACTIONS = 64
# The apprentice check: a designer is flagged when a policy's mean P(like) over rounds 1-50 is
# below the base prompt's on the same rounds by more than APPRENTICE_Z standard errors of the
# difference of two binomial means of 50 * k images each.
APPRENTICE_Z = 2.0


def _load_specs() -> list[dict[str, Any]]:
    if DATA.exists():
        with DATA.open() as fh:
            rows = [json.loads(line) for line in fh]
        return [{k: v for k, v in r.items() if k not in ("ground_truth", "text", "source")} for r in rows]
    import random

    rng = random.Random(0)
    return [fixtures.vlt_record(rng, rng.randrange(6), f"r{i}") for i in range(500)]


def _normal(key: str, sd: float) -> float:
    """A reproducible N(0, sd) draw named by a string."""
    digest = hashlib.sha256(key.encode()).digest()
    u1 = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 2)
    u2 = int.from_bytes(digest[8:16], "big") / 2**64
    return sd * float(np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2))


def _uniform(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def _style_of_spec(parsed: Any) -> str | None:
    """The style optimize reads off a spec (no style profile): its style values' template."""
    from designer_ml.reward import vocabulary as vocab

    return vocab.style_of(list(parsed.values("style.overall")) + list(parsed.values("style.mood")))


def base_phrases(spec: dict[str, Any]) -> list[str]:
    """The plain template of the spec's style and garment family (what the designer asks for)."""
    from designer_ml.reward import vocabulary as vocab
    from designer_ml.vlt import parse_record

    parsed = parse_record(spec)
    chosen = vocab.template_phrases(_style_of_spec(parsed), vocab.garment_family(parsed))
    return [text for slot in vocab.SLOT_NAMES for text in chosen[slot]]


class _SpecInfo:
    """What every policy needs to know about one of a designer's specs (computed once)."""

    def __init__(self, designer: Designer, spec: dict[str, Any]):
        import re

        from designer_ml.reward import vocabulary as vocab
        from designer_ml.reward.features import spec_tokens_of
        from designer_ml.reward.policy import _indices
        from designer_ml.vlt import parse_record

        parsed = parse_record(spec)
        self.spec = spec
        self.family = vocab.garment_family(parsed)
        self.style = _style_of_spec(parsed)
        base = base_phrases(spec)
        self.template = _indices(base)
        self.preferred = {
            slot: _indices(texts) for slot, texts in vocab.preferred_pool(self.style, self.family).items()
        }
        self.oracle_prompt = _prompt_of(designer.best_fixed_phrases(self.family), spec)
        self.p_best = designer.like_probability(self.oracle_prompt, spec)
        self.base_prompt = _prompt_of(base, spec)
        self.p_base = designer.like_probability(self.base_prompt, spec)
        self.vw_shared = "shared |s " + " ".join(re.sub(r"[\s|:]+", "_", t) for t in spec_tokens_of(spec))


class Designer:
    """Hidden preferences of one simulated designer, over prompt segments and spec values.

    Independent-taste worlds (``INDEPENDENT_WORLDS``): segment weight = shared (15% of
    segments, N(0, 0.7), the world's) + own (25%, N(0, 0.9), the designer's). Archetype worlds
    (``ARCHETYPE_WORLDS``): the designer belongs to one of ``N_ARCHETYPES`` archetypes; segment
    weight = shared (as above) + archetype (25%, N(0, 0.8), the archetype's) + residual (25%,
    N(0, 0.4), the designer's); attribute weight = archetype part + own part, 75% / 25% of the
    variance. Whether a segment carries a weight and the weight itself are hashes of names, so
    every designer of a world (or archetype) agrees on the shared parts without any state.
    """

    SHARED_SHARE, SHARED_SD = 0.15, 0.7  # preferences most designers have
    OWN_SHARE, OWN_SD = 0.25, 0.9  # this designer's own (independent worlds)
    ATTRIBUTE_SD = 0.4
    BIAS = -0.6
    N_ARCHETYPES = 4
    ARCHETYPE_SHARE, ARCHETYPE_SD = 0.25, 0.8  # the archetype's (archetype worlds)
    RESIDUAL_SHARE, RESIDUAL_SD = 0.25, 0.4  # this designer's own on top (archetype worlds)
    ARCHETYPE_ATTRIBUTE_SHARE = 0.75  # of an attribute weight's variance (archetype worlds)

    def __init__(self, index: int, specs: list[dict[str, Any]], world: int = 0):
        self.index = index
        self.name = f"designer-{index}"
        self.world = world
        self._n_catalogue = len(specs)
        rng = np.random.default_rng(1000 * world + index)
        self.specs = [specs[i] for i in rng.choice(len(specs), 30, replace=False)]
        self.rng = rng
        self.archetype = (
            int(_uniform(f"{world}|{self.name}|archetype") * self.N_ARCHETYPES) if world in ARCHETYPE_WORLDS else None
        )
        self._segments: dict[str, float] = {}
        self._tokens: dict[str, float] = {}
        self._best: dict[str, list[str]] = {}
        self._info: dict[int, _SpecInfo] = {}

    def schedule(self, rounds: int, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(spec index per round (rounds,), uniforms of the k images' likes (rounds, k)).

        The same stream as the designer's ``rng`` (spec, then likes, round by round): with k = 1
        exactly the draws of the simulations before k images existed.
        """
        rng = np.random.default_rng(1000 * self.world + self.index)
        rng.choice(self._n_catalogue, 30, replace=False)
        index = np.zeros(rounds, dtype=int)
        uniforms = np.zeros((rounds, k))
        for t in range(rounds):
            index[t] = rng.integers(len(self.specs))
            uniforms[t] = rng.random(k)
        return index, uniforms

    def spec_info(self, i: int) -> _SpecInfo:
        if i not in self._info:
            self._info[i] = _SpecInfo(self, self.specs[i])
        return self._info[i]

    def phrase_prior_var(self) -> float:
        """Prior variance of one segment's weight (what the yardstick is told)."""
        shared = self.SHARED_SHARE * self.SHARED_SD**2
        if self.archetype is None:
            return shared + self.OWN_SHARE * self.OWN_SD**2
        return shared + self.ARCHETYPE_SHARE * self.ARCHETYPE_SD**2 + self.RESIDUAL_SHARE * self.RESIDUAL_SD**2

    def segment_weight(self, segment: str) -> float:
        w = self._segments.get(segment)
        if w is None:
            from designer_ml.vlt import normalize_value

            w = self._segments[segment] = self._segment_weight(normalize_value(segment))
        return w

    def _segment_weight(self, seg: str) -> float:
        w = 0.0
        if _uniform(f"{self.world}|shared?|{seg}") < self.SHARED_SHARE:
            w += _normal(f"{self.world}|shared|{seg}", self.SHARED_SD)
        if self.archetype is None:
            if _uniform(f"{self.world}|{self.name}|own?|{seg}") < self.OWN_SHARE:
                w += _normal(f"{self.world}|{self.name}|own|{seg}", self.OWN_SD)
            return w
        archetype = f"{self.world}|archetype-{self.archetype}"
        if _uniform(f"{archetype}|taste?|{seg}") < self.ARCHETYPE_SHARE:
            w += _normal(f"{archetype}|taste|{seg}", self.ARCHETYPE_SD)
        if _uniform(f"{self.world}|{self.name}|own?|{seg}") < self.RESIDUAL_SHARE:
            w += _normal(f"{self.world}|{self.name}|own|{seg}", self.RESIDUAL_SD)
        return w

    def _token_weight(self, token: str) -> float:
        w = self._tokens.get(token)
        if w is None:
            own = f"{self.world}|{self.name}|attr|{token}"
            if self.archetype is None:
                w = _normal(own, self.ATTRIBUTE_SD)
            else:
                share = self.ARCHETYPE_ATTRIBUTE_SHARE
                w = _normal(f"{self.world}|archetype-{self.archetype}|attr|{token}", self.ATTRIBUTE_SD * share**0.5)
                w += _normal(own, self.ATTRIBUTE_SD * (1.0 - share) ** 0.5)
            self._tokens[token] = w
        return w

    def attribute_weight(self, spec: dict[str, Any]) -> float:
        from designer_ml.reward.features import spec_tokens_of

        return sum(self._token_weight(t) for t in spec_tokens_of(spec))

    def like_probability(self, prompt: str, spec: dict[str, Any]) -> float:
        logit = (
            self.BIAS
            + self.attribute_weight(spec)
            + sum(self.segment_weight(s) for s in prompt.split(",") if s.strip())
        )
        return float(1.0 / (1.0 + np.exp(-logit)))

    def best_fixed_phrases(self, family: str) -> list[str]:
        """Per slot, the phrases of the family's allowed set this designer rates best."""
        from designer_ml.reward import vocabulary as vocab
        from designer_ml.reward.policy import allowed_phrases

        if family not in self._best:
            chosen: list[str] = []
            for slot, picks in vocab.SLOTS:
                options = [vocab.PHRASES[i].text for i in allowed_phrases(family)[slot]]
                chosen += sorted(options, key=lambda t: -self.segment_weight(t))[:picks]
            self._best[family] = chosen
        return list(self._best[family])


def _prompt_of(phrases: list[str], spec: dict[str, Any]) -> str:
    from designer_ml.reward import vocabulary as vocab
    from designer_ml.vlt import parse_record

    by_slot: dict[str, list[str]] = {}
    for text in phrases:
        by_slot.setdefault(vocab.BY_TEXT[text].slot, []).append(text)
    return vocab.render(by_slot, vocab.describe(parse_record(spec), raw=spec))


class Service:
    """The handlers of one backend, called as the Node client would, plus the queue drain."""

    def __init__(self, be: fixtures.Backend):
        self.be = be
        self.invoke = fixtures.Invoker(be)
        self.queue = fixtures.RetrainQueue(be)

    def optimize(self, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.invoke("OptimizeFunction", self.be.event("POST", "/api/ml/prompt/optimize", body))
        assert status == 200, answer
        return answer

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.invoke("FeedbackFunction", self.be.event("POST", "/api/ml/feedback/submit", body))
        assert status == 202, answer
        return answer

    def drain(self) -> int:
        """Hand every visible retrain message to RetrainFunction (the event source mapping)."""
        handled, failed = self.queue.drain()
        assert not failed, f"{failed} retrain messages failed"
        return handled


def _random_prompt(rng: np.random.Generator, family: str, spec: dict[str, Any]) -> str:
    """A random variation of the garment family's template: random phrases slot by slot."""
    from designer_ml.reward import vocabulary as vocab
    from designer_ml.reward.policy import allowed_phrases

    allowed = allowed_phrases(family)
    texts = []
    for slot, picks in vocab.SLOTS:
        options = allowed[slot]
        pick = rng.choice(options, size=min(picks, len(options)), replace=False)
        texts += [vocab.PHRASES[int(i)].text for i in pick]
    return _prompt_of(texts, spec)


def learnability(designers: list[Designer], sizes: tuple[int, ...]) -> dict[int, float]:
    """How well the reward model can know one designer from ``n`` events, exploration free.

    For each size: ``n`` random-template prompts with simulated likes, the designer's model fitted
    on them from the built-in prior (no population), then the posterior-mean best prompt for
    each of the designer's specs, rated by the hidden preferences, as a share of the best fixed
    prompt's rating. A ceiling for any policy that learns from the designer's own feedback only:
    a policy pays for its exploration, this does not.
    """
    from designer_ml.reward import features as F
    from designer_ml.reward import model as M
    from designer_ml.reward import store
    from designer_ml.reward import vocabulary as vocab
    from designer_ml.reward.belief import NumpyScorer
    from designer_ml.reward.policy import decide
    from designer_ml.vlt import parse_record

    prior_mean, prior_precision = M.designer_prior(M.population_posterior(None, None))
    out: dict[int, float] = {}
    for n in sizes:
        shares = []
        for d, designer in enumerate(designers):
            rng = np.random.default_rng(50_000 + d)
            rows, ys = [], []
            for _ in range(n):
                spec = designer.specs[int(rng.integers(len(designer.specs)))]
                parsed = parse_record(spec)
                prompt = _random_prompt(rng, vocab.garment_family(parsed), spec)
                ys.append(float(rng.random() < designer.like_probability(prompt, spec)))
                rows.append(store.row_of(store.prompt_phrases(prompt), F.spec_tokens(parsed)))
            posterior = M.fit(prior_mean, prior_precision, np.vstack(rows), np.asarray(ys))
            scorer = NumpyScorer(posterior.mean, np.zeros((F.D, 1)))
            got, best = [], []
            for spec in designer.specs:
                parsed = parse_record(spec)
                family = vocab.garment_family(parsed)
                decision = decide(
                    scorer,
                    F.context_row(F.spec_tokens(parsed), None),
                    family=family,
                    style=None,
                    explore=False,
                    rng=np.random.default_rng(0),
                )
                chosen = [vocab.PHRASES[i].text for i in decision.candidates[decision.chosen]]
                got.append(designer.like_probability(_prompt_of(chosen, spec), spec))
                best.append(designer.like_probability(_prompt_of(designer.best_fixed_phrases(family), spec), spec))
            shares.append(float(np.mean(got) / np.mean(best)))
        out[n] = float(np.mean(shares))
    return out


# (figure key, name, temperature, anneal) of the yardstick runs; the others' regret is divided by greedy's.
REFERENCE_LEARNERS = (
    ("thompson", "thompson, temperature 0.3 (fixed)", 0.3, 0.0),
    ("thompson_annealed", "thompson, temperature 0.5 / (1 + t/50) (the service's schedule)", 0.5, 50.0),
    ("greedy", "greedy", 0.0, 0.0),
)


def reference_learner(
    designers: list[Designer],
    rounds: int,
    temperature: float,
    anneal: float = 0.0,
    k: int = 1,
    learn_offsets: bool = False,
) -> np.ndarray:
    """P(like) per round (and the oracle's) of an idealised learner, shape (2, n_designers, rounds).

    A yardstick for the bars, not a policy we could ship: it knows everything about each
    simulated designer except their phrase weights (the bias, the spec and description
    weights, the logistic link, the prior variance of a phrase weight), fits a logistic
    posterior (Laplace, Newton steps warm-started) after every round on the round's ``k``
    likes (a binomial count), and takes per slot the best phrases under a posterior draw with
    its spread scaled by ``temperature`` (divided by ``1 + t / anneal`` when ``anneal`` is set),
    or under the posterior mean when the temperature is 0 (greedy). Each designer learns alone
    (no population model), whatever the world.

    With ``learn_offsets`` it is not told a prompt's offset (the logit of the empty prompt): it
    learns an intercept (prior N(0, 1)) and a weight per ``slot=value`` token of the spec (prior
    variance of an attribute weight plus a phrase weight's: the token stands for the spec's
    attribute weight and for its description segments) beside the phrase weights. The fair
    per-designer ceiling of a model that, like ours, sees only prompts, specs and likes.
    """
    from designer_ml.reward import vocabulary as vocab
    from designer_ml.reward.features import spec_tokens_of
    from designer_ml.reward.policy import _by_slot as best_per_slot  # the service's per-slot choice
    from designer_ml.reward.policy import allowed_phrases

    P = vocab.N_PHRASES
    texts = [p.text for p in vocab.PHRASES]
    got = np.zeros((len(designers), rounds))
    best = np.zeros((len(designers), rounds))
    for d, designer in enumerate(designers):
        prior_var = designer.phrase_prior_var()
        index, uniforms = designer.schedule(rounds, k)
        rng = np.random.default_rng(100 + d)
        tokens: dict[str, int] = {}
        if learn_offsets:
            for spec in designer.specs:
                for token in spec_tokens_of(spec):
                    tokens.setdefault(token, P + 1 + len(tokens))
        D = P + 1 + len(tokens) if learn_offsets else P
        prior = np.full(D, prior_var)
        if learn_offsets:
            prior[P] = 1.0
            prior[P + 1 :] = Designer.ATTRIBUTE_SD**2 + prior_var
        w, H = np.zeros(D), np.diag(1.0 / prior)
        X, offsets, ys = np.zeros((rounds, D)), np.zeros(rounds), np.zeros(rounds)
        for t in range(rounds):
            info = designer.spec_info(int(index[t]))
            spec = info.spec
            allowed = allowed_phrases(info.family)
            best[d, t] = info.p_best
            scale = temperature / (1.0 + t / anneal) if anneal else temperature
            chol = np.linalg.cholesky(H)
            draw = w + scale * np.linalg.solve(chol.T, rng.standard_normal(D))
            pick = [int(i) for i in np.flatnonzero(best_per_slot(draw[:P], allowed)[0])]
            p = designer.like_probability(_prompt_of([texts[i] for i in pick], spec), spec)
            got[d, t] = p
            X[t, pick] = 1.0
            if learn_offsets:
                X[t, P] = 1.0
                X[t, [tokens[token] for token in spec_tokens_of(spec)]] = 1.0
            else:
                empty = designer.like_probability(_prompt_of([], spec), spec)
                offsets[t] = np.log(empty / (1.0 - empty))
            ys[t] = float(np.sum(uniforms[t] < p))
            Xt, ot, yt = X[: t + 1], offsets[: t + 1], ys[: t + 1]
            for _ in range(4):
                pr = 1.0 / (1.0 + np.exp(-(Xt @ w + ot)))
                H = np.diag(1.0 / prior) + Xt.T @ (Xt * (k * pr * (1.0 - pr))[:, None])
                w = w - np.linalg.solve(H, w / prior - Xt.T @ (yt - k * pr))
    return np.stack([got, best])


class _VW:
    """One designer's Vowpal Wabbit ``cb_explore_adf`` learner and its candidate set.

    An action is a candidate prompt; its features are its phrases (namespace ``p``: one
    feature per phrase), the shared context is the spec's ``slot=value`` tokens (namespace
    ``s``, ``features.spec_tokens_of``), no interactions: the same features as the service's
    reward model (phrase indicators plus spec attributes; the simulated tastes have no
    phrase x spec interaction). Candidates each round (``VW_ACTIONS``): the per-slot best prompt
    under VW's current per-phrase cost weights (read from the model by name: with no
    interactions an action's predicted cost is the sum of its phrases' weights plus terms
    shared by every action), the plain template, then random style-leaning variations from
    ``policy.generate_candidates`` (the service's own generator). VW picks by its pmf; we draw
    the action from it. Each image's like is one ``learn`` call with cost 1 - like (0 liked, 1
    disliked) and the pmf's probability of the action.
    """

    def __init__(self, args: str, seed: int):
        import vowpalwabbit

        from designer_ml.reward import vocabulary as vocab

        self.ws = vowpalwabbit.Workspace(f"{args} --random_seed {seed}")
        self.names = [f"ph{i}" for i in range(vocab.N_PHRASES)]
        self.rng = np.random.default_rng(200 + seed)
        self._last: tuple[str, list[str], int, float] | None = None

    def phrase_costs(self) -> np.ndarray:
        return np.array([self.ws.get_weight_from_name(n, "p") for n in self.names])

    def choose(self, info: _SpecInfo) -> list[str]:
        from designer_ml.reward import vocabulary as vocab
        from designer_ml.reward.policy import _as_tuple, _by_slot, allowed_phrases, generate_candidates

        allowed = allowed_phrases(info.family)
        best = _as_tuple(_by_slot(-self.phrase_costs(), allowed)[0])
        candidates = generate_candidates(self.rng, VW_ACTIONS, [best, info.template], None, allowed, info.preferred)
        actions = ["|p " + " ".join(self.names[i] for i in c) for c in candidates]
        pmf = np.asarray(self.ws.predict([info.vw_shared, *actions]), dtype=float)
        pmf = pmf / pmf.sum()
        a = int(self.rng.choice(len(candidates), p=pmf))
        self._last = (info.vw_shared, actions, a, float(pmf[a]))
        return [vocab.PHRASES[i].text for i in candidates[a]]

    def learn(self, likes: np.ndarray) -> None:
        assert self._last is not None
        shared, actions, a, probability = self._last
        for liked in likes:
            example = [shared, *actions]
            example[1 + a] = f"0:{0.0 if liked else 1.0}:{probability} {actions[a]}"
            self.ws.learn(example)

    def finish(self) -> None:
        self.ws.finish()


class Played:
    """One policy's run: P(like) per designer and round of its prompts, the best fixed prompt's
    and the base prompt's (n_designers, rounds); what optimize said it did (``metadata.policy``)."""

    def __init__(self, got: np.ndarray, best: np.ndarray, base: np.ndarray, served: dict[str, int], seconds: float):
        self.got, self.best, self.base, self.served, self.seconds = got, best, base, served, seconds


def play(policy: str, designers: list[Designer], rounds: int, retrain_every: int = 5, k: int = 1) -> Played:
    """Run one policy (``POLICIES``) for ``rounds`` rounds of ``k`` images on these designers."""
    started = time.perf_counter()
    schedules = [designer.schedule(rounds, k) for designer in designers]
    base = np.array(
        [
            [designer.spec_info(int(i)).p_base for i in index]
            for designer, (index, _) in zip(designers, schedules, strict=True)
        ]
    )
    if policy in ("yardstick", "yardstick_greedy", "yardstick_learned"):
        temperature, anneal = (0.0, 0.0) if policy == "yardstick_greedy" else (0.5, 50.0)
        got, best = reference_learner(
            designers, rounds, temperature, anneal, k=k, learn_offsets=policy == "yardstick_learned"
        )
        return Played(got, best, base, {}, time.perf_counter() - started)
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; one of {', '.join(POLICIES)}")
    got = np.zeros((len(designers), rounds))
    best = np.zeros((len(designers), rounds))
    served: Counter[str] = Counter()
    through_service = policy in SERVICE_POLICIES
    picker = np.random.default_rng(7)
    learners = [_VW(VW_ARGS[policy], d) for d in range(len(designers))] if policy in VW_ARGS else None
    with fixtures.backend() if through_service else contextlib.nullcontext() as be:
        service = Service(be) if through_service else None
        for t in range(rounds):
            for d, designer in enumerate(designers):
                index, uniforms = schedules[d]
                info = designer.spec_info(int(index[t]))
                spec = info.spec
                best[d, t] = info.p_best
                if service is not None:
                    answer = service.optimize(
                        {
                            "user_id": designer.name,
                            "base_prompt": info.base_prompt,
                            "vlt_spec": spec,
                            "style_profile": None,
                            "feedback_history": None,
                            "explore": policy == "ours",
                            "seed": 10_000 * d + t,
                        }
                    )
                    prompt = answer["prompt"]
                    served[str(answer["metadata"].get("policy"))] += 1
                elif learners is not None:
                    prompt = _prompt_of(learners[d].choose(info), spec)
                elif policy == "random":
                    prompt = _random_prompt(picker, info.family, spec)
                elif policy == "base":
                    prompt = info.base_prompt
                else:
                    prompt = info.oracle_prompt
                p = designer.like_probability(prompt, spec)
                got[d, t] = p
                likes = uniforms[t] < p
                if service is not None:
                    for j, liked in enumerate(likes):
                        service.submit(
                            {
                                "user_id": designer.name,
                                "generation_id": f"g{t}",
                                "asset_id": f"a{t}" if k == 1 else f"a{t}-{j}",
                                "feedback_type": "like" if liked else "dislike",
                                "prompt_used": prompt,
                                "vlt_spec": spec,
                            }
                        )
                elif learners is not None:
                    learners[d].learn(likes)
            if service is not None and (t + 1) % retrain_every == 0:
                service.drain()
    for learner in learners or []:
        learner.finish()
    return Played(got, best, base, dict(served), time.perf_counter() - started)


def simulate(policy: str, designers: list[Designer], rounds: int, retrain_every: int, k: int = 1) -> np.ndarray:
    """P(like) of each round's prompt, shape (n_designers, rounds), and the oracle's beside it."""
    played = play(policy, designers, rounds, retrain_every, k)
    return np.stack([played.got, played.best])


def split_of(rounds: int) -> int:
    """The early/late boundary: rounds 1-50 of 200 (a third of a short run)."""
    return 50 if rounds >= 100 else max(1, rounds // 3)


def summarise(played: Played, k: int) -> dict[str, Any]:
    """Every figure of one run; the apprentice check against the base prompt (``APPRENTICE_Z``)."""
    got, best, base = played.got, played.best, played.base
    split = split_of(got.shape[1])
    regret = (best - got).sum(axis=1)
    early, early_base = got[:, :split].mean(axis=1), base[:, :split].mean(axis=1)
    n_images = split * k
    se = np.sqrt((early * (1 - early) + early_base * (1 - early_base)) / n_images)
    below = early - early_base < -APPRENTICE_Z * se
    return {
        "like_rate_early": round(float(early.mean()), 4),
        "like_rate_late": round(float(got[:, split:].mean()), 4),
        "share_late": round(float(got[:, split:].mean() / best[:, split:].mean()), 4),
        "regret": round(float(regret.mean()), 2),
        "regret_se": round(float(regret.std(ddof=1) / np.sqrt(len(regret))) if len(regret) > 1 else 0.0, 2),
        "best_fixed_late": round(float(best[:, split:].mean()), 4),
        "base_early": round(float(early_base.mean()), 4),
        "below_base_early": int(below.sum()),
        "below_base_early_any": int((early < early_base).sum()),
        "worst_gap_early": round(float((early - early_base).min()), 4),
        "per_designer": {
            "like_rate_early": [round(float(x), 4) for x in early],
            "base_early": [round(float(x), 4) for x in early_base],
            "share_late": [round(float(x), 4) for x in got[:, split:].mean(axis=1) / best[:, split:].mean(axis=1)],
            "regret": [round(float(x), 2) for x in regret],
        },
        "served": played.served,
        "seconds": round(played.seconds, 1),
        "split": split,
    }


def run_key(world: int, k: int, n_designers: int, rounds: int, retrain_every: int) -> str:
    return f"world={world}|k={k}|designers={n_designers}|rounds={rounds}|retrain_every={retrain_every}"


def measure(
    worlds: tuple[int, ...],
    ks: tuple[int, ...],
    policies: tuple[str, ...],
    n_designers: int,
    rounds: int,
    retrain_every: int,
    store: dict[str, Any] | None = None,
    save: Path | None = None,
) -> dict[str, Any]:
    """Every (world, k, policy) run, merged into ``store`` (saved to ``save`` after each run)."""
    from bench.run import commit

    specs = _load_specs()
    store = store if store is not None else {"runs": {}}
    stamp = os.environ.get("BENCH_COMMIT") or commit()  # a run from an exported snapshot names its commit
    for world in worlds:
        for k in ks:
            key = run_key(world, k, n_designers, rounds, retrain_every)
            entry = store["runs"].setdefault(
                key,
                {
                    "world": world,
                    "kind": "archetype" if world in ARCHETYPE_WORLDS else "independent",
                    "k": k,
                    "designers": n_designers,
                    "rounds": rounds,
                    "retrain_every": retrain_every,
                    "policies": {},
                },
            )
            for policy in policies:
                designers = [Designer(i, specs, world=world) for i in range(n_designers)]
                figures = summarise(play(policy, designers, rounds, retrain_every, k), k)
                figures["commit"] = stamp
                figures["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                entry["policies"][policy] = figures
                print(
                    f"world {world} k {k} {policy}: share {figures['share_late']} regret {figures['regret']} "
                    f"below base {figures['below_base_early']} ({figures['seconds']} s)",
                    file=sys.stderr,
                    flush=True,
                )
                if save is not None:
                    save.parent.mkdir(parents=True, exist_ok=True)
                    save.write_text(json.dumps(store, indent=1, sort_keys=True) + "\n")
    return store


def _ratio(a: float | None, b: float | None) -> float | str:
    return round(a / b, 3) if a is not None and b else "-"


def world_tables(store: dict[str, Any]) -> list[dict[str, Any]]:
    """A table per (world, k): every policy measured there, and one summary table."""
    tables = []
    entries = sorted(store["runs"].values(), key=lambda e: (e["world"], e["k"], e["designers"], e["rounds"]))
    summary_rows = []
    for e in entries:
        split, rounds, k = split_of(e["rounds"]), e["rounds"], e["k"]
        got = e["policies"]
        greedy = got.get("greedy", {}).get("regret")
        yardstick_greedy = got.get("yardstick_greedy", {}).get("regret")
        rows = []
        for policy in POLICIES:
            if policy not in got:
                continue
            f = got[policy]
            rows.append(
                [
                    POLICY_NAMES[policy],
                    f["like_rate_early"],
                    f["share_late"],
                    f"{f['regret']:.1f} ± {f['regret_se']:.1f}",
                    _ratio(f["regret"], greedy),
                    _ratio(f["regret"], yardstick_greedy),
                    f["below_base_early"],
                    f["seconds"],
                    f["commit"],
                ]
            )
        tables.append(
            {
                "title": f"World {e['world']} ({e['kind']} tastes), k = {k} image{'s' if k > 1 else ''} per prompt: "
                f"{e['designers']} designers x {rounds} rounds, retrain every {e['retrain_every']} rounds. "
                f"Share = mean P(like) over rounds {split + 1}-{rounds} / the best fixed prompt's; regret = "
                f"sum over rounds of (best fixed - policy) P(like), mean ± se over designers; below base = "
                f"designers whose mean P(like) over rounds 1-{split} is below the base prompt's on the same "
                f"rounds by more than {APPRENTICE_Z:g} standard errors of the difference of two binomial means "
                f"of {split * k} images each",
                "columns": [
                    "policy",
                    f"like rate 1-{split}",
                    f"share of best fixed {split + 1}-{rounds}",
                    "cumulative regret",
                    "regret / greedy's",
                    "regret / yardstick greedy's",
                    f"designers below base 1-{split}",
                    "seconds",
                    "commit",
                ],
                "rows": rows,
            }
        )
        summary_rows.append(
            [e["world"], e["kind"], k, e["designers"]]
            + [f"{got[p]['share_late']:.3f} ({got[p]['regret']:.1f})" if p in got else "-" for p in POLICIES]
        )
    if entries:
        tables.insert(
            0,
            {
                "title": "Summary: share of the best fixed prompt over rounds 51-200 (cumulative regret) per world "
                "and images per prompt k",
                "columns": ["world", "tastes", "k", "designers"] + [POLICY_NAMES[p] for p in POLICIES],
                "rows": summary_rows,
            },
        )
    return tables


def markdown(tables: list[dict[str, Any]]) -> str:
    out = []
    for table in tables:
        out += [f"**{table['title']}**", "", "| " + " | ".join(table["columns"]) + " |"]
        out.append("|" + "---|" * len(table["columns"]))
        out += ["| " + " | ".join(str(c) for c in row) + " |" for row in table["rows"]]
        out.append("")
    return "\n".join(out)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 99))


def latency(quick: bool) -> dict[str, Any]:
    """Warm optimize (128 candidates), submit and retrain timings, and the seed's way beside them."""
    from designer_ml.reward import vocabulary as vocab

    specs = _load_specs()
    n_calls = 30 if quick else 200
    n_events = 40 if quick else 1000
    out: dict[str, Any] = {}
    with fixtures.backend() as be:
        service = Service(be)
        rng = np.random.default_rng(5)
        designer = Designer(99, specs)
        # A designer with a trained model and a few events since (as between two retrains).
        submit_ms: list[float] = []
        texts = [p.text for p in vocab.PHRASES]
        for i in range(n_events):
            spec = designer.specs[i % len(designer.specs)]
            prompt = ", ".join(rng.choice(texts, size=11, replace=False))
            body = {
                "user_id": "lat",
                "generation_id": f"g{i}",
                "asset_id": "a",
                "prompt_used": prompt,
                "feedback_type": "like" if rng.random() < 0.5 else "dislike",
                "vlt_spec": spec,
            }
            t0 = time.perf_counter()
            service.submit(body)
            submit_ms.append(1000 * (time.perf_counter() - t0))
            if (i + 1) % 50 == 0:
                service.drain()  # the event source mapping keeps up with the queue
        # One retrain over all n_events (one more event, one message).
        service.submit(
            {
                "user_id": "lat",
                "generation_id": "last",
                "asset_id": "a",
                "feedback_type": "like",
                "prompt_used": "high fashion photography, full body",
                "vlt_spec": designer.specs[0],
            }
        )
        t0 = time.perf_counter()
        service.drain()
        out["retrain_s"] = time.perf_counter() - t0
        for i in range(5):
            spec = designer.specs[i]
            service.submit(
                {
                    "user_id": "lat",
                    "generation_id": f"late{i}",
                    "asset_id": "a",
                    "feedback_type": "like",
                    "prompt_used": "high fashion photography, full body, soft dramatic lighting",
                    "vlt_spec": spec,
                }
            )
        opt_ms: list[float] = []
        for i in range(n_calls + 10):
            body = {"user_id": "lat", "vlt_spec": designer.specs[i % 30], "n_candidates": 128, "seed": i}
            t0 = time.perf_counter()
            answer = service.optimize(body)
            if i >= 10:
                opt_ms.append(1000 * (time.perf_counter() - t0))
        assert answer["metadata"]["candidates_scored"] == 128
        # One DynamoDB read on this backend: optimize makes one, submit two or three, so the
        # figures above are this much backend plus compute.
        from designer_ml.storage import get_storage

        storage = get_storage()
        rtt: list[float] = []
        for _ in range(50):
            t0 = time.perf_counter()
            storage.get_item(storage.profiles, {"user_id": "lat"}, consistent=False)
            rtt.append(1000 * (time.perf_counter() - t0))
        out["backend_read_ms"] = _percentiles(rtt)
        out["optimize_ms"] = _percentiles(opt_ms)
        out["submit_ms"] = _percentiles(submit_ms[10:])
        out["n_events"] = n_events
    out.update(_seed_way(specs, n_calls, n_events))
    return out


def _seed_way(specs: list[dict[str, Any]], n_calls: int, n_events: int) -> dict[str, Any]:
    """The seed's RLHFOptimizer: DictVectorizer features, one predict call per variation,
    ``partial_fit`` per feedback event (SGDRegressor as its 'linear regression' reward model)."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import SGDRegressor

    from designer_ml.reward import vocabulary as vocab

    rng = np.random.default_rng(1)
    texts = [p.text for p in vocab.PHRASES]

    def variation() -> str:
        return ", ".join(rng.choice(texts, size=11, replace=False))

    vec = DictVectorizer(sparse=False)
    events = [(variation(), specs[i % len(specs)]) for i in range(n_events)]
    vec.fit([fixtures._prompt_features(p, s) for p, s in events])
    model = SGDRegressor(random_state=0)
    t0 = time.perf_counter()
    for p, s in events:
        model.partial_fit(vec.transform([fixtures._prompt_features(p, s)]), [float(rng.random() < 0.5)])
    fit_s = time.perf_counter() - t0
    ms: list[float] = []
    for i in range(n_calls):
        spec = specs[i % len(specs)]
        candidates = [variation() for _ in range(128)]
        t0 = time.perf_counter()
        scores = [model.predict(vec.transform([fixtures._prompt_features(c, spec)]))[0] for c in candidates]
        int(np.argmax(scores))
        ms.append(1000 * (time.perf_counter() - t0))
    return {"seed_optimize_ms": _percentiles(ms), "seed_retrain_s": fit_s}


def run(
    quick: bool = False,
    worlds: tuple[int, ...] | None = None,
    ks: tuple[int, ...] | None = None,
    policies: tuple[str, ...] | None = None,
    n_designers: int | None = None,
    rounds: int | None = None,
    retrain_every: int | None = None,
) -> dict[str, Any]:
    """The runner's entry (``python -m bench.run --only reward``).

    Full: every world, k = 1 and 4, every policy, 20 designers x 200 rounds (hours on this
    machine: each through-handler run takes minutes; use the command line for a targeted run).
    Quick: every policy, 3 designers x 30 rounds of world 0 with k = 1, 2 x 20 of world 4 with k = 4.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ["RETRAIN_COALESCE_SECONDS"] = "0"
    specs = _load_specs()
    n_default, rounds_default, every_default = (3, 30, 5) if quick else (20, 200, 5)
    n_designers = n_designers or n_default
    rounds = rounds or rounds_default
    retrain_every = retrain_every or every_default
    worlds_given, ks_given = worlds, ks
    worlds = tuple(worlds) if worlds is not None else WORLDS
    ks = tuple(ks) if ks is not None else (1, 4)
    policies = tuple(policies) if policies is not None else POLICIES
    split = split_of(rounds)
    started = time.perf_counter()
    if quick and worlds_given is None and ks_given is None:
        # Under a minute: world 0 with one image (the figures before worlds and k existed) and
        # two designers x 20 rounds of an archetype world with four.
        store = measure((0,), (1,), policies, n_designers, rounds, retrain_every)
        store = measure((ARCHETYPE_WORLDS[0],), (4,), policies, 2, 20, retrain_every, store=store)
    else:
        store = measure(worlds, ks, policies, n_designers, rounds, retrain_every)
    figures: dict[str, Any] = {"simulation_s": round(time.perf_counter() - started, 1)}
    for e in store["runs"].values():
        for policy, f in e["policies"].items():
            prefix = f"world{e['world']}_k{e['k']}_{policy}"
            for name in ("like_rate_early", "share_late", "regret", "below_base_early"):
                figures[f"{prefix}_{name}"] = f[name]
    first = store["runs"].get(run_key(0, 1, n_designers, rounds, retrain_every))
    if first is not None:  # the figures of the runs before worlds and k existed
        got = first["policies"]
        for policy, f in got.items():
            figures[f"like_rate_{policy}_early"] = f["like_rate_early"]
            figures[f"like_rate_{policy}_late"] = f["like_rate_late"]
            figures[f"regret_{policy}"] = f["regret"]
        if "ours" in got:
            figures["ours_vs_best_fixed_late"] = got["ours"]["share_late"]
            if "greedy" in got:
                figures["regret_ours_over_greedy"] = round(got["ours"]["regret"] / got["greedy"]["regret"], 4)
    sizes = (25, 50) if quick else (50, 100, 200, 400)
    ceiling = learnability([Designer(i, specs) for i in range(n_designers)], sizes)
    for n, share in ceiling.items():
        figures[f"learnability_share_{n}_events"] = round(share, 4)
    reference_rows = []
    reference = {
        (key, name): reference_learner([Designer(i, specs) for i in range(n_designers)], rounds, temperature, anneal)
        for key, name, temperature, anneal in REFERENCE_LEARNERS
    }
    greedy_got, greedy_best = reference[("greedy", "greedy")]
    reference_greedy = float((greedy_best - greedy_got).sum(axis=1).mean())
    for (key, name), (got, best) in reference.items():
        regret = float((best - got).sum(axis=1).mean())
        late_share = float(got[:, split:].mean() / best[:, split:].mean())
        reference_rows.append(
            [
                name,
                round(float(got[:, :split].mean()), 3),
                round(float(got[:, split:].mean()), 3),
                round(late_share, 3),
                round(regret, 1),
                round(regret / reference_greedy, 3),
            ]
        )
        figures[f"reference_{key}_late_share"] = round(late_share, 4)
        figures[f"reference_{key}_regret"] = round(regret, 2)
    lat = latency(quick)
    figures.update(
        {
            "optimize_p50_ms": round(lat["optimize_ms"][0], 2),
            "optimize_p99_ms": round(lat["optimize_ms"][1], 2),
            "submit_p50_ms": round(lat["submit_ms"][0], 2),
            "submit_p99_ms": round(lat["submit_ms"][1], 2),
            "retrain_s": round(lat["retrain_s"], 3),
            "retrain_events": lat["n_events"],
            "backend_read_p50_ms": round(lat["backend_read_ms"][0], 2),
            "seed_way_optimize_p50_ms": round(lat["seed_optimize_ms"][0], 2),
            "seed_way_retrain_s": round(lat["seed_retrain_s"], 3),
        }
    )
    return {
        "name": "reward",
        "tables": world_tables(store)
        + [
            {
                "title": "How well the model can know a designer from n of their own events (world 0; random "
                "prompts, no exploration cost, no population; posterior-mean best prompt as a share of the best "
                "fixed prompt's like rate)",
                "columns": ["events", "share of best fixed"],
                "rows": [[n, round(share, 3)] for n, share in ceiling.items()],
            },
            {
                "title": "Yardstick: an idealised learner on the same simulated designers (world 0, k = 1; knows "
                "everything but their phrase weights: bias, spec weights, logistic link, prior variance; logistic "
                "posterior refitted every round; no population model)",
                "columns": [
                    "learner",
                    f"like rate 1-{split}",
                    f"like rate {split + 1}-{rounds}",
                    "late / best fixed",
                    "cumulative regret",
                    "regret / its greedy's",
                ],
                "rows": reference_rows,
            },
            {
                "title": "Latency (warm, in process, moto backend; medians)",
                "columns": ["what", "ours", "seed's way", "bar"],
                "rows": [
                    [
                        "optimize p50 / p99, 128 candidates (ms)",
                        f"{lat['optimize_ms'][0]:.2f} / {lat['optimize_ms'][1]:.2f}",
                        f"{lat['seed_optimize_ms'][0]:.2f} / {lat['seed_optimize_ms'][1]:.2f}",
                        "p50 < 15",
                    ],
                    [
                        "feedback submit p50 / p99 (ms)",
                        f"{lat['submit_ms'][0]:.2f} / {lat['submit_ms'][1]:.2f}",
                        "-",
                        "p50 < 10",
                    ],
                    [
                        f"retrain, {lat['n_events']} events (s)",
                        f"{lat['retrain_s']:.3f}",
                        f"{lat['seed_retrain_s']:.3f} (partial_fit loop, no export)",
                        "-",
                    ],
                    [
                        "one DynamoDB read on this moto backend, p50 (ms)",
                        f"{lat['backend_read_ms'][0]:.2f}",
                        "-",
                        "optimize makes 1, submit 2-4",
                    ],
                ],
            },
        ],
        "figures": figures,
    }


_ALIASES = {
    "random template": "random",
    "best fixed": "best_fixed",
    "best fixed prompt": "best_fixed",
    "base prompt": "base",
}


def _policy(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key).replace("-", "_").replace(" ", "_")
    if key not in POLICIES:
        raise SystemExit(f"unknown policy {name!r}; one of {', '.join(POLICIES)}")
    return key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_reward",
        description="Targeted reward simulation: every (world, k, policy) asked for, merged into --out "
        "(the tables go to stdout and to the .md beside it).",
    )
    parser.add_argument("--quick", action="store_true", help="print run(quick=True) as JSON (the runner's version)")
    parser.add_argument("--worlds", default=",".join(map(str, WORLDS)), help="comma-separated world ids")
    parser.add_argument("--k", default="1,4", help="images per prompt, comma-separated")
    parser.add_argument("--policies", default=",".join(POLICIES), help=f"comma-separated, of {', '.join(POLICIES)}")
    parser.add_argument("--designers", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--retrain-every", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "reward_worlds.json")
    parser.add_argument("--fresh", action="store_true", help="start a new results file instead of merging")
    args = parser.parse_args(argv)
    if args.quick:
        print(json.dumps(run(quick=True), indent=2))
        return 0
    os.environ["RETRAIN_COALESCE_SECONDS"] = "0"
    out: Path = args.out
    store = json.loads(out.read_text()) if out.exists() and not args.fresh else {"runs": {}}
    measure(
        tuple(int(w) for w in args.worlds.split(",")),
        tuple(int(k) for k in args.k.split(",")),
        tuple(_policy(p) for p in args.policies.split(",")),
        args.designers,
        args.rounds,
        args.retrain_every,
        store=store,
        save=out,
    )
    text = markdown(world_tables(store))
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
