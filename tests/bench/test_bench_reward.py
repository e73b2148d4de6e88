"""bench_reward's simulator: paired draws, honest worlds, k images, base prompt, anchors, apprentice check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import bench_reward as br

SPECS = br._load_specs()


def test_with_one_image_the_schedule_is_the_designers_old_stream() -> None:
    # Given a designer of world 0 and its own generator, drawn as the simulator did before k images
    designer = br.Designer(3, SPECS, world=0)
    old = [(int(designer.rng.integers(len(designer.specs))), float(designer.rng.random())) for _ in range(20)]

    # When the schedule for k = 1 is drawn
    index, uniforms = designer.schedule(20, 1)

    # Then it is the same specs and the same uniforms, round by round
    assert [(int(i), float(u[0])) for i, u in zip(index, uniforms, strict=True)] == old


def test_archetype_worlds_share_taste_within_an_archetype_and_independent_worlds_do_not_have_one() -> None:
    # Given the designers of an archetype world and of an independent world
    from designer_ml.reward import vocabulary as vocab

    texts = [p.text for p in vocab.PHRASES]
    designers = [br.Designer(i, SPECS, world=br.ARCHETYPE_WORLDS[0]) for i in range(24)]
    independent = [br.Designer(i, SPECS, world=0) for i in range(4)]

    # When their phrase weights are compared pair by pair
    weights = {d.name: np.array([d.segment_weight(t) for t in texts]) for d in designers}
    same, other = [], []
    for i, a in enumerate(designers):
        for b in designers[i + 1 :]:
            r = float(np.corrcoef(weights[a.name], weights[b.name])[0, 1])
            (same if a.archetype == b.archetype else other).append(r)

    # Then designers of one archetype agree far more than designers of different ones
    assert {d.archetype for d in designers} == set(range(br.Designer.N_ARCHETYPES))
    assert np.mean(same) > np.mean(other) + 0.3
    assert all(d.archetype is None for d in independent)
    # And a segment weight has about the same prior variance in both kinds of world
    assert abs(designers[0].phrase_prior_var() - independent[0].phrase_prior_var()) < 0.02


def test_the_base_policy_serves_the_plain_template_the_designer_asked_for() -> None:
    # Given two designers of world 1
    designers = [br.Designer(i, SPECS, world=1) for i in range(2)]

    # When the base policy plays
    played = br.play("base", designers, 8, k=2)

    # Then every round's P(like) is the base prompt's, and the base prompt holds the template's phrases
    assert np.array_equal(played.got, played.base)
    info = designers[0].spec_info(0)
    from designer_ml.reward import vocabulary as vocab

    assert {p.index for p in vocab.parse_prompt(info.base_prompt)} == set(info.template)


@pytest.mark.parametrize("policy", ["vw_squarecb", "vw_epsilon", "yardstick"])
def test_anchors_learn_from_k_images_per_round(policy: str) -> None:
    # Given two designers of an archetype world and four images per prompt
    designers = [br.Designer(i, SPECS, world=br.ARCHETYPE_WORLDS[0]) for i in range(2)]

    # When the anchor plays a few rounds
    played = br.play(policy, designers, 12, k=4)

    # Then it scores each round's prompt, never above the best fixed prompt
    assert played.got.shape == (2, 12)
    assert np.all((played.got > 0) & (played.got <= played.best + 1e-12))


def test_vw_learns_once_per_image_with_the_logged_probability() -> None:
    # Given one designer's VW learner and a round of three images
    designer = br.Designer(0, SPECS, world=0)
    learner = br._VW(br.VW_ARGS["vw_squarecb"], 0)
    learner.choose(designer.spec_info(0))
    shared, actions, chosen, probability = learner._last
    assert 0 < probability <= 1 and len(actions) == br.VW_ACTIONS

    seen = learner.ws.get_weighted_examples()

    # When three images are rated
    learner.learn(np.array([True, False, True]))

    # Then VW saw three more examples
    assert learner.ws.get_weighted_examples() - seen == pytest.approx(3.0)
    learner.finish()


def test_through_the_service_each_image_is_its_own_event_and_the_base_prompt_is_sent(monkeypatch) -> None:
    # Given the handlers, with every optimize and submit body recorded
    sent: dict[str, list[dict]] = {"optimize": [], "submit": []}
    optimize, submit = br.Service.optimize, br.Service.submit
    monkeypatch.setattr(
        br.Service, "optimize", lambda self, body: sent["optimize"].append(body) or optimize(self, body)
    )
    monkeypatch.setattr(br.Service, "submit", lambda self, body: sent["submit"].append(body) or submit(self, body))
    monkeypatch.setenv("RETRAIN_COALESCE_SECONDS", "0")
    designer = br.Designer(0, SPECS, world=4)

    # When ours plays two rounds of three images
    br.play("ours", [designer], 2, retrain_every=1, k=3)

    # Then each round sent the plain template as base prompt, and three events of one generation
    index, _ = designer.schedule(2, 3)
    assert [b["base_prompt"] for b in sent["optimize"]] == [designer.spec_info(int(i)).base_prompt for i in index]
    assert [(b["generation_id"], b["asset_id"]) for b in sent["submit"]] == [
        (f"g{t}", f"a{t}-{j}") for t in range(2) for j in range(3)
    ]


def test_the_apprentice_check_flags_a_designer_below_the_base_prompt_by_more_than_two_standard_errors() -> None:
    # Given three designers over 150 rounds of one image: level with base over rounds 1-50, a little
    # below, far below
    base = np.full((3, 150), 0.6)
    got = base.copy()
    got[1, :50] = 0.5  # se = sqrt((0.25 + 0.24) / 50) = 0.099: a gap of 0.1 is 1.01 se
    got[2, :50] = 0.3  # a gap of 0.3 is over 3 se
    played = br.Played(got, np.full((3, 150), 0.9), base, {}, 0.0)

    # When it is summarised
    figures = br.summarise(played, k=1)

    # Then only the far one is flagged, and with 4 images per prompt the little gap is flagged too
    assert figures["below_base_early"] == 1 and figures["below_base_early_any"] == 2
    assert br.summarise(played, k=4)["below_base_early"] == 2


def test_the_command_line_merges_runs_into_one_results_file(tmp_path: Path) -> None:
    # Given an empty results file location
    out = tmp_path / "reward_worlds.json"
    common = ["--worlds", "4", "--k", "2", "--designers", "2", "--rounds", "6", "--out", str(out)]

    # When two targeted runs are made
    assert br.main(common + ["--policies", "base,best fixed"]) == 0
    assert br.main(common + ["--policies", "random"]) == 0

    # Then the file holds all three policies of that world and k, and the tables show them
    store = json.loads(out.read_text())
    (entry,) = store["runs"].values()
    assert set(entry["policies"]) == {"base", "best_fixed", "random"} and entry["k"] == 2
    assert "World 4 (archetype tastes), k = 2" in out.with_suffix(".md").read_text()
