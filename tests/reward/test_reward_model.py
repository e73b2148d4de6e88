"""The reward model's pieces without AWS: vocabulary, posterior, fresh evidence, ONNX, policy."""

from __future__ import annotations

import numpy as np
import pytest

from designer_ml.onnx_models import make_session
from designer_ml.reward import features as F
from designer_ml.reward import model as M
from designer_ml.reward import vocabulary as vocab
from designer_ml.reward.belief import Belief, NumpyScorer, OnnxScorer
from designer_ml.reward.policy import allowed_phrases, decide
from designer_ml.vlt import parse_record

SPEC = {
    "garment_type": "dress",
    "attributes": {"silhouette": "A-line", "neckline": "V-neck"},
    "colors": {"primary": "black"},
    "style": {"overall": "elegant"},
}


def prior_scorer() -> NumpyScorer:
    mean, precision = M.designer_prior(M.population_posterior(None, None))
    return NumpyScorer(mean, M.Posterior(mean, precision).sqrt_cov())


def context() -> np.ndarray:
    return F.context_row(F.spec_tokens(parse_record(SPEC)))


def test_every_rendered_prompt_parses_back_to_its_phrases() -> None:
    # Given random prompts over the whole vocabulary, rendered with a garment description
    rng = np.random.default_rng(0)
    for _ in range(200):
        chosen = {
            slot: [p.text for p in rng.choice(vocab.BY_SLOT[slot], size=picks, replace=False)]
            for slot, picks in vocab.SLOTS
        }
        prompt = vocab.render(chosen, vocab.describe(parse_record(SPEC)))
        # When
        parsed = {p.text for p in vocab.parse_prompt(prompt)}
        # Then exactly the chosen phrases come back (the description adds none)
        assert parsed == {t for texts in chosen.values() for t in texts}


def test_a_mood_word_inside_another_phrase_is_not_read_as_the_mood() -> None:
    # Given a prompt whose background holds the word "soft" and whose lighting holds "dramatic"
    prompt = "high fashion photography, soft gray or white, soft dramatic lighting, black dress"
    # When
    parsed = [p.text for p in vocab.parse_prompt(prompt)]
    # Then the phrases are found and "soft" the mood is not
    assert parsed == ["high fashion photography", "soft gray or white", "soft dramatic lighting"]


def test_the_seeds_template_prompt_parses_into_known_phrases() -> None:
    # Given the seed's evolved prompt, written by hand (no commas around every phrase)
    prompt = (
        "high fashion photography, professional model, clean minimalist evening dress, pure black matte "
        "finish, even studio lighting, simple centered composition, sharp lines, understated elegance"
    )
    # When
    parsed = {p.text for p in vocab.parse_prompt(prompt)}
    # Then the vocabulary phrases inside it are recognised
    assert {"high fashion photography", "professional model", "even studio lighting", "centered composition"} <= parsed


def test_fresh_evidence_in_serving_equals_refitting_with_it() -> None:
    # Given a model fitted on some events, and newer events it has not seen
    rng = np.random.default_rng(1)
    mean0, precision0 = M.designer_prior(M.population_posterior(None, None))
    X = F.rows_for(context(), [tuple(rng.choice(vocab.N_PHRASES, 8, replace=False)) for _ in range(40)])
    y = (rng.random(40) < 0.5).astype(float)
    w = np.where(rng.random(40) < 0.2, 2.0, 1.0)
    stored = M.fit(mean0, precision0, X[:25], y[:25], w[:25])
    scorer = NumpyScorer(stored.mean, stored.sqrt_cov())
    # When serving folds in the 15 newer events from the stored model's outputs alone
    m_e, Z_e = scorer.project(X[25:])
    belief = Belief.from_evidence(m_e, Z_e, y[25:], w[25:])
    m, Z = scorer.project(X)
    # Then its mean and spread are those of a model refitted on all 40 events
    refit = M.fit(mean0, precision0, X, y, w)
    np.testing.assert_allclose(belief.mean(m, Z), X @ refit.mean, atol=1e-8)
    np.testing.assert_allclose(belief.sd(Z), np.sqrt(np.einsum("ij,jk,ik->i", X, refit.covariance(), X)), atol=1e-8)


def test_population_messages_leave_one_designer_out_exactly() -> None:
    # Given two designers' sufficient statistics summed into a population
    rng = np.random.default_rng(2)
    stats = []
    for _ in range(2):
        X = F.rows_for(context(), [tuple(rng.choice(vocab.N_PHRASES, 8, replace=False)) for _ in range(30)])
        stats.append(M.sufficient_stats(X, (rng.random(30) < 0.5).astype(float), np.ones(30)))
    messages = [M.population_message(S, b) for S, b in stats]
    agg_precision, agg_information = messages[0][0] + messages[1][0], messages[0][1] + messages[1][1]
    # When the first designer's message is taken out again
    loo = M.population_posterior(agg_precision - messages[0][0], agg_information - messages[0][1])
    # Then what remains is the population of the second designer alone, and the first counted
    only_second = M.population_posterior(*messages[1])
    np.testing.assert_allclose(loo.mean, only_second.mean, atol=1e-9)
    np.testing.assert_allclose(loo.precision, only_second.precision, atol=1e-9)
    assert not np.allclose(M.population_posterior(agg_precision, agg_information).mean, only_second.mean)


def test_a_population_message_is_the_designers_likelihood_widened_by_designer_differences() -> None:
    # Given a designer with plenty of events
    rng = np.random.default_rng(6)
    X = F.rows_for(context(), [tuple(rng.choice(vocab.N_PHRASES, 8, replace=False)) for _ in range(400)])
    S, b = M.sufficient_stats(X, (rng.random(400) < 0.5).astype(float), np.ones(400))
    # When
    precision, _ = M.population_message(S, b)
    # Then no weight is ever known better than the between-designer spread allows
    assert np.all(np.linalg.eigvalsh(precision) <= 1.0 / M.between_var().min() + 1e-6)
    assert np.all(np.linalg.eigvalsh(precision) >= -1e-9)


def _off_diagonal(a: np.ndarray) -> float:
    return float(np.linalg.norm(a[~np.eye(len(a), dtype=bool)]))


def test_the_between_designer_moment_keeps_shared_tastes_and_drops_chance_correlation() -> None:
    # Given ten designers' deviations over 150 weights: independent tastes, and tastes that are
    # mostly one of two archetypes (plus a little of the designer's own)
    rng = np.random.default_rng(3)
    independent = rng.normal(0.0, 0.1, (10, 150))
    archetypes = rng.normal(0.0, 0.1, (2, 150))
    shared = archetypes[np.arange(10) % 2] + rng.normal(0.0, 0.03, (10, 150))
    # When their second moments are estimated
    for deviations, kept in ((independent, (0.0, 0.3)), (shared, (0.7, 1.0))):
        raw = deviations.T @ deviations / len(deviations)
        shrunk = M._shrunk_second_moment(deviations)
        # Then the diagonal is the raw one; the chance correlations of independent tastes mostly
        # go, the archetypes' correlations mostly stay
        np.testing.assert_allclose(np.diag(shrunk), np.diag(raw))
        assert kept[0] <= _off_diagonal(shrunk) / _off_diagonal(raw) <= kept[1]


def test_onnx_scorer_matches_numpy_and_serves_both_outputs() -> None:
    # Given a fitted posterior exported to ONNX
    rng = np.random.default_rng(3)
    mean0, precision0 = M.designer_prior(M.population_posterior(None, None))
    X = F.rows_for(context(), [tuple(rng.choice(vocab.N_PHRASES, 8, replace=False)) for _ in range(30)])
    post = M.fit(mean0, precision0, X, (rng.random(30) < 0.5).astype(float))
    L = post.sqrt_cov()
    onnx_bytes = M.export_onnx(post.mean, L, {"version": 1})
    # When
    mean, proj = OnnxScorer(make_session(onnx_bytes)).project(X)
    # Then it is the numpy model within the parity tolerance, and L L' is the covariance
    np.testing.assert_allclose(mean, X @ post.mean, atol=1e-4)
    np.testing.assert_allclose(proj, X @ L, atol=1e-4)
    np.testing.assert_allclose(L @ L.T, post.covariance(), atol=1e-10)


def test_reward_of_grades_likes_and_counts_outliers_twice() -> None:
    assert M.reward_of("like", None) == (1.0, 1.0)
    assert M.reward_of("dislike", None) == (0.0, 1.0)
    assert M.reward_of("outlier", None) == (1.0, M.OUTLIER_WEIGHT)
    assert M.reward_of("like", 0.2) == pytest.approx((0.8, 1.0))
    assert M.reward_of("dislike", 1.0) == pytest.approx((0.25, 1.0))


def test_explore_false_is_deterministic_and_a_seed_replays_thompson_sampling() -> None:
    # Given one model and one request
    scorer, ctx = prior_scorer(), context()

    def run(seed: int, explore: bool) -> tuple[int, ...]:
        d = decide(scorer, ctx, family="dress", style="elegant", explore=explore, rng=np.random.default_rng(seed))
        return d.candidates[d.chosen]

    # When / Then: without exploration every seed gives the same prompt, the plain template
    assert run(1, False) == run(2, False) == run(3, False)
    d = decide(scorer, ctx, family="dress", style="elegant", explore=False, rng=np.random.default_rng(0))
    assert d.candidates[d.chosen] == d.template
    # And with exploration a seed replays exactly, and different seeds explore
    assert run(7, True) == run(7, True)
    assert len({run(s, True) for s in range(8)}) > 1


def test_evidence_moves_the_choice_to_liked_phrases_and_drops_disliked_ones() -> None:
    # Given a designer who liked every prompt with "dramatic side lighting" and disliked every
    # prompt with the template's "sophisticated studio lighting"
    scorer, ctx = prior_scorer(), context()
    liked, disliked = (
        vocab.BY_TEXT["dramatic side lighting"].index,
        vocab.BY_TEXT["sophisticated studio lighting"].index,
    )
    rng = np.random.default_rng(4)
    sets, ys = [], []
    for i in range(30):
        base = [int(j) for j in rng.choice(vocab.N_PHRASES, 6, replace=False) if j not in (liked, disliked)]
        sets.append(tuple(base + [liked if i % 2 else disliked]))
        ys.append(1.0 if i % 2 else 0.0)
    evidence = (F.rows_for(ctx, sets), np.array(ys), np.ones(30))
    # When
    d = decide(
        scorer, ctx, family="dress", style="elegant", evidence=evidence, explore=False, rng=np.random.default_rng(0)
    )
    # Then the posterior-mean best holds the liked lighting, not the disliked one
    chosen = d.candidates[d.chosen]
    assert liked in chosen and disliked not in chosen
    assert d.phrase_mean[liked] > 0.05 > -0.05 > d.phrase_mean[disliked]


def test_candidates_respect_the_garment_family() -> None:
    # Given a top: no lower-half framing, no dress details
    allowed = allowed_phrases("top")
    d = decide(prior_scorer(), context(), family="top", style=None, explore=True, rng=np.random.default_rng(5))
    # Then every candidate's framing and detail are the top's own
    for candidate in d.candidates:
        for i in candidate:
            assert i in allowed[vocab.PHRASES[i].slot]
    assert len(d.candidates) == 128


def test_a_pending_entry_is_the_same_row_as_the_stored_event() -> None:
    # Given an event's phrases and spec
    from designer_ml.reward import events, store

    phrases = ["high fashion photography", "soft dramatic lighting", "bold", "no such phrase"]
    tokens = F.spec_tokens_of(SPEC)
    # When it is kept in the compact pending form
    entry = events.decode_entry(events.pending_entry("g#a", 1, "like", None, phrases, tokens, "sig"))
    # Then it encodes to the same features as the event itself
    np.testing.assert_allclose(store.pending_row(entry), store.row_of(phrases, tokens))
    assert store.pending_row({**entry, "f": "oldschem"}) is None


@pytest.mark.parametrize(("n_holdout", "refused"), [(5, False), (40, True)])
def test_only_a_conclusive_holdout_can_refuse_a_candidate(n_holdout: int, refused: bool) -> None:
    from designer_ml.reward.retrain import Events, _gate

    # Given an incumbent that predicts the held-out events well (studio lighting liked) and a
    # candidate procedure whose prior is confidently the opposite
    ctx = F.context_row(F.spec_tokens_of({"garment": {"type": "dress"}}))
    studio = vocab.BY_TEXT["sophisticated studio lighting"].index
    X = F.rows_for(ctx, [(studio,)] * n_holdout)
    y = np.ones(n_holdout)
    good = np.zeros(F.D)
    good[F.INTERCEPT] = 0.9
    incumbent = NumpyScorer(good, np.zeros((F.D, 1)))
    bad_mean = np.zeros(F.D)
    bad_mean[F.INTERCEPT] = 0.1
    prior = (bad_mean, np.eye(F.D) * 1e6)
    events = Events(X, y, np.ones(n_holdout), np.arange(n_holdout), [""] * n_holdout, "fp")
    # When the gate compares them on all events held out
    worse, reason, metrics = _gate(events, np.ones(n_holdout, dtype=bool), prior, incumbent)
    # Then the candidate is clearly worse on both, but only the large holdout may refuse it
    assert metrics["holdout"]["log_loss_difference"] > 1.0
    assert worse is refused and metrics["holdout"]["conclusive"] is refused
    assert (reason is not None) is refused
