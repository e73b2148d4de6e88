"""Preference learning (stages 5 and 10) through the real handlers and the retrain queue.

Simulated designers, each with hidden preferences, play rounds of optimize -> like/dislike ->
submit -> retrain, in process against moto, through the template's handlers
(OptimizeFunction, FeedbackFunction) and the SQS path (the queue is drained into
RetrainFunction, as Lambda's event source mapping would). Policies:

- ``ours``: the service as deployed (Thompson sampling, the default ``explore: true``);
- ``greedy``: the same service with ``explore: false`` (posterior-mean best, no exploration);
- ``random template``: a random variation of the style/garment template every round;
- ``best fixed prompt``: per garment family, the phrase set the hidden preferences rate best
  (known only to the simulator).

Hidden preferences are written against prompt *text*, not the service's internals: a weight
per comma-separated segment (drawn lazily per designer and segment: most segments are
indifferent, some liked or disliked, partly shared by all designers), a weight per spec
attribute value, a bias; P(like) = sigmoid(sum). The oracle needs the phrase vocabulary only
to enumerate what a prompt could hold.

Also measured: optimize warm latency with 128 candidates (p50/p99), submit latency, retrain
time for 1,000 events, each beside the seed's way (scikit-learn, one predict call per
candidate; ``partial_fit`` per event) in the same process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "hm_garments.jsonl"

from bench import fixtures  # noqa: E402


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


class Designer:
    """Hidden preferences of one simulated designer, over prompt segments and spec values."""

    SHARED_SHARE, SHARED_SD = 0.15, 0.7  # preferences most designers have
    OWN_SHARE, OWN_SD = 0.25, 0.9  # this designer's own
    ATTRIBUTE_SD = 0.4
    BIAS = -0.6

    def __init__(self, index: int, specs: list[dict[str, Any]], world: int = 0):
        self.name = f"designer-{index}"
        self.world = world
        rng = np.random.default_rng(1000 * world + index)
        self.specs = [specs[i] for i in rng.choice(len(specs), 30, replace=False)]
        self.rng = rng

    def segment_weight(self, segment: str) -> float:
        from designer_ml.vlt import normalize_value

        seg = normalize_value(segment)
        w = 0.0
        if _uniform(f"{self.world}|shared?|{seg}") < self.SHARED_SHARE:
            w += _normal(f"{self.world}|shared|{seg}", self.SHARED_SD)
        if _uniform(f"{self.world}|{self.name}|own?|{seg}") < self.OWN_SHARE:
            w += _normal(f"{self.world}|{self.name}|own|{seg}", self.OWN_SD)
        return w

    def attribute_weight(self, spec: dict[str, Any]) -> float:
        from designer_ml.reward.features import spec_tokens_of

        return sum(_normal(f"{self.world}|{self.name}|attr|{t}", self.ATTRIBUTE_SD) for t in spec_tokens_of(spec))

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

        chosen: list[str] = []
        for slot, picks in vocab.SLOTS:
            options = [vocab.PHRASES[i].text for i in allowed_phrases(family)[slot]]
            chosen += sorted(options, key=lambda t: -self.segment_weight(t))[:picks]
        return chosen


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


def reference_learner(designers: list[Designer], rounds: int, temperature: float, anneal: float = 0.0) -> np.ndarray:
    """P(like) per round (and the oracle's) of an idealised learner, shape (2, n_designers, rounds).

    A yardstick for the bars, not a policy we could ship: it knows everything about each
    simulated designer except their phrase weights (the bias, the spec and description
    weights, the logistic link, the prior variance of a phrase weight), fits a logistic
    posterior (Laplace, Newton steps warm-started) after every round, and takes per slot the
    best phrases under a posterior draw with its spread scaled by ``temperature`` (divided by
    ``1 + t / anneal`` when ``anneal`` is set), or under the posterior mean when the
    temperature is 0 (greedy). Each designer learns alone (no population model).
    """
    from designer_ml.reward import vocabulary as vocab
    from designer_ml.reward.policy import _by_slot as best_per_slot  # the service's per-slot choice
    from designer_ml.reward.policy import allowed_phrases
    from designer_ml.vlt import parse_record

    P = vocab.N_PHRASES
    texts = [p.text for p in vocab.PHRASES]
    prior_var = Designer.SHARED_SHARE * Designer.SHARED_SD**2 + Designer.OWN_SHARE * Designer.OWN_SD**2
    got = np.zeros((len(designers), rounds))
    best = np.zeros((len(designers), rounds))
    for d, designer in enumerate(designers):
        rng = np.random.default_rng(100 + d)
        w, H = np.zeros(P), np.eye(P) / prior_var
        X, offsets, ys = np.zeros((rounds, P)), np.zeros(rounds), np.zeros(rounds)
        for t in range(rounds):
            spec = designer.specs[int(designer.rng.integers(len(designer.specs)))]
            family = vocab.garment_family(parse_record(spec))
            allowed = allowed_phrases(family)
            best[d, t] = designer.like_probability(_prompt_of(designer.best_fixed_phrases(family), spec), spec)
            scale = temperature / (1.0 + t / anneal) if anneal else temperature
            chol = np.linalg.cholesky(H)
            draw = w + scale * np.linalg.solve(chol.T, rng.standard_normal(P))
            pick = [int(i) for i in np.flatnonzero(best_per_slot(draw, allowed)[0])]
            p = designer.like_probability(_prompt_of([texts[i] for i in pick], spec), spec)
            got[d, t] = p
            empty = designer.like_probability(_prompt_of([], spec), spec)
            X[t, pick] = 1.0
            offsets[t] = np.log(empty / (1.0 - empty))
            ys[t] = float(designer.rng.random() < p)
            Xt, ot, yt = X[: t + 1], offsets[: t + 1], ys[: t + 1]
            for _ in range(4):
                pr = 1.0 / (1.0 + np.exp(-(Xt @ w + ot)))
                H = np.eye(P) / prior_var + Xt.T @ (Xt * (pr * (1.0 - pr))[:, None])
                w = w - np.linalg.solve(H, w / prior_var - Xt.T @ (yt - pr))
    return np.stack([got, best])


def simulate(policy: str, designers: list[Designer], rounds: int, retrain_every: int) -> np.ndarray:
    """P(like) of each round's prompt, shape (n_designers, rounds), and the oracle's beside it."""
    from designer_ml.reward import vocabulary as vocab
    from designer_ml.vlt import parse_record

    got = np.zeros((len(designers), rounds))
    best = np.zeros((len(designers), rounds))
    through_service = policy in ("ours", "greedy")
    picker = np.random.default_rng(7)
    with fixtures.backend() if through_service else contextlib.nullcontext() as be:
        service = Service(be) if through_service else None
        for t in range(rounds):
            for d, designer in enumerate(designers):
                spec = designer.specs[int(designer.rng.integers(len(designer.specs)))]
                family = vocab.garment_family(parse_record(spec))
                oracle_prompt = _prompt_of(designer.best_fixed_phrases(family), spec)
                best[d, t] = designer.like_probability(oracle_prompt, spec)
                if service is not None:
                    answer = service.optimize(
                        {
                            "user_id": designer.name,
                            "base_prompt": None,
                            "vlt_spec": spec,
                            "style_profile": None,
                            "feedback_history": None,
                            "explore": policy == "ours",
                            "seed": 10_000 * d + t,
                        }
                    )
                    prompt = answer["prompt"]
                elif policy == "random template":
                    prompt = _random_prompt(picker, family, spec)
                else:
                    prompt = oracle_prompt
                p = designer.like_probability(prompt, spec)
                got[d, t] = p
                liked = designer.rng.random() < p
                if service is not None:
                    service.submit(
                        {
                            "user_id": designer.name,
                            "generation_id": f"g{t}",
                            "asset_id": f"a{t}",
                            "feedback_type": "like" if liked else "dislike",
                            "prompt_used": prompt,
                            "vlt_spec": spec,
                        }
                    )
            if service is not None and (t + 1) % retrain_every == 0:
                service.drain()
    return np.stack([got, best])


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


def run(quick: bool = False) -> dict[str, Any]:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ["RETRAIN_COALESCE_SECONDS"] = "0"
    specs = _load_specs()
    n_designers, rounds, split, retrain_every = (3, 30, 10, 5) if quick else (20, 200, 50, 5)
    designers_of = {
        p: [Designer(i, specs) for i in range(n_designers)]
        for p in ("ours", "greedy", "random template", "best fixed prompt")
    }
    started = time.perf_counter()
    results = {p: simulate(p, ds, rounds, retrain_every) for p, ds in designers_of.items()}
    sim_s = time.perf_counter() - started
    best_late = float(results["best fixed prompt"][0][:, split:].mean())
    rows = []
    figures: dict[str, Any] = {}
    regret_of = {}
    for policy, (got, best) in results.items():
        regret = float((best - got).sum(axis=1).mean())
        regret_of[policy] = regret
        early, late = float(got[:, :split].mean()), float(got[:, split:].mean())
        rows.append([policy, round(early, 3), round(late, 3), round(late / best_late, 3), round(regret, 1)])
        key = policy.replace(" ", "_")
        figures[f"like_rate_{key}_early"] = round(early, 4)
        figures[f"like_rate_{key}_late"] = round(late, 4)
        figures[f"regret_{key}"] = round(regret, 2)
    figures["ours_vs_best_fixed_late"] = round(float(results["ours"][0][:, split:].mean()) / best_late, 4)
    figures["regret_ours_over_greedy"] = round(regret_of["ours"] / regret_of["greedy"], 4)
    figures["simulation_s"] = round(sim_s, 1)
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
        "tables": [
            {
                "title": f"Preference learning: {n_designers} simulated designers x {rounds} rounds "
                f"(retrain drained every {retrain_every} rounds)",
                "columns": [
                    "policy",
                    f"like rate 1-{split}",
                    f"like rate {split + 1}-{rounds}",
                    "late / best fixed",
                    "cumulative regret",
                ],
                "rows": rows,
            },
            {
                "title": "How well the model can know a designer from n of their own events "
                "(random prompts, no exploration cost, no population; posterior-mean best prompt "
                "as a share of the best fixed prompt's like rate)",
                "columns": ["events", "share of best fixed"],
                "rows": [[n, round(share, 3)] for n, share in ceiling.items()],
            },
            {
                "title": "Yardstick: an idealised learner on the same simulated designers (knows everything "
                "but their phrase weights: bias, spec weights, logistic link, prior variance; logistic "
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


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
