"""Optimize, feedback, retrain and model info through the template's handlers, on moto."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from designer_ml import onnx_models
from designer_ml.reward import events as E
from designer_ml.reward import features as F
from designer_ml.reward import model as M
from designer_ml.reward import ope, policy, store
from designer_ml.reward import vocabulary as vocab
from designer_ml.reward.belief import NumpyScorer
from designer_ml.storage import get_storage, reset_for_tests
from local.events import sqs_event

REPO = Path(__file__).resolve().parents[2]
SPEC = {
    "id": "1",
    "garment_type": "dress",
    "attributes": {"silhouette": "A-line", "neckline": "V-neck", "sleeveLength": "sleeveless", "length": "midi"},
    "colors": {"primary": "black", "finish": "matte"},
    "style": {"overall": "elegant", "mood": "sophisticated"},
}
PROFILE = {
    "user_id": "u1",
    "version": 1,
    "n_clusters": 2,
    "n_records": 10,
    "clusters": [
        {
            "id": 0,
            "size": 6,
            "percentage": 60.0,
            "style_summary": "elegant, a-line silhouette, black tones",
            "dominant_attributes": {"style.overall": ["elegant", 5], "colors.primary": ["black", 4]},
        },
        {
            "id": 3,
            "size": 4,
            "percentage": 40.0,
            "style_summary": "edgy, oversized, red tones",
            "dominant_attributes": {"style.overall": ["edgy", 4], "colors.primary": ["red", 3]},
        },
    ],
    "assignments": {},
    "created_at": "2025-01-01T00:00:00Z",
    "updated_at": "2025-01-01T00:00:00Z",
}


@pytest.fixture
def svc(aws_env: Any, api_event: Any, invoke: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The three functions as the Node client and the SQS event source call them."""
    monkeypatch.setenv("RETRAIN_COALESCE_SECONDS", "0")
    reset_for_tests()
    store.clear_caches()

    class Service:
        env = aws_env

        def optimize(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            result = invoke("OptimizeFunction", api_event("POST", "/api/ml/prompt/optimize", body))
            return result["statusCode"], json.loads(result["body"])

        def submit(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            result = invoke("FeedbackFunction", api_event("POST", "/api/ml/feedback/submit", body))
            return result["statusCode"], json.loads(result["body"])

        def model(self, user_id: str) -> tuple[int, dict[str, Any]]:
            result = invoke("FeedbackFunction", api_event("GET", f"/api/ml/rlhf/model/{user_id}"))
            return result["statusCode"], json.loads(result["body"])

        def train(self, user_id: str) -> tuple[int, dict[str, Any]]:
            result = invoke("FeedbackFunction", api_event("POST", "/api/ml/rlhf/train", {"user_id": user_id}))
            return result["statusCode"], json.loads(result["body"])

        def messages(self) -> list[dict[str, Any]]:
            sqs = aws_env.client("sqs")
            url = aws_env.environment["RETRAIN_QUEUE_URL"]
            out: list[dict[str, Any]] = []
            while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                out += batch
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
                )
            return out

        def retrain(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
            return invoke("RetrainFunction", sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:retrain"))

        def drain(self) -> dict[str, Any]:
            return self.retrain(self.messages())

        def profile_item(self, user_id: str) -> dict[str, Any]:
            table = aws_env.resource("dynamodb").Table(aws_env.environment["PROFILES_TABLE"])
            return table.get_item(Key={"user_id": user_id}).get("Item", {})

        def items(self, user_id: str) -> list[dict[str, Any]]:
            """Every feedback-table item of the designer: events and their feedback state item."""
            table = aws_env.resource("dynamodb").Table(aws_env.environment["FEEDBACK_TABLE"])
            return table.query(KeyConditionExpression="user_id = :u", ExpressionAttributeValues={":u": user_id})[
                "Items"
            ]

        def events(self, user_id: str) -> list[dict[str, Any]]:
            return [i for i in self.items(user_id) if i["event_key"] != E.STATE_KEY]

        def state(self, user_id: str) -> dict[str, Any]:
            table = aws_env.resource("dynamodb").Table(aws_env.environment["FEEDBACK_TABLE"])
            return table.get_item(Key=E.state_key(user_id)).get("Item", {})

        def dynamodb_calls(self) -> list[tuple[str, dict[str, Any]]]:
            """From now on, every DynamoDB call of the service's client: (operation, params)."""
            calls: list[tuple[str, dict[str, Any]]] = []

            def record(params: dict[str, Any], model: Any, **_: Any) -> None:
                calls.append((model.name, params))

            get_storage().dynamodb.meta.events.register("provide-client-params.dynamodb", record)
            return calls

    yield Service()
    reset_for_tests()
    store.clear_caches()


def feedback(user_id: str, i: int, kind: str, prompt: str, spec: dict[str, Any] = SPEC) -> dict[str, Any]:
    """The Node client's submitFeedback body."""
    return {
        "user_id": user_id,
        "generation_id": f"gen-{i}",
        "asset_id": f"asset-{i}",
        "feedback_type": kind,
        "prompt_used": prompt,
        "vlt_spec": spec,
    }


def prompt_with(*phrases: str) -> str:
    by_slot: dict[str, list[str]] = {}
    for text in phrases:
        by_slot.setdefault(vocab.BY_TEXT[text].slot, []).append(text)
    return vocab.render(by_slot, "black a-line dress")


def teach(svc: Any, user_id: str, n: int, start: int = 0) -> None:
    """n events: prompts with dramatic side lighting liked, with studio lighting disliked."""
    for i in range(start, start + n):
        light = "dramatic side lighting" if i % 2 else "sophisticated studio lighting"
        status, _ = svc.submit(
            feedback(
                user_id, i, "like" if i % 2 else "dislike", prompt_with("high fashion photography", "full body", light)
            )
        )
        assert status == 202


def test_a_designer_with_no_profile_and_no_feedback_gets_the_template_prompt(svc: Any) -> None:
    # When a designer nobody knows asks, without and with exploration
    status, plain = svc.optimize({"user_id": "new", "vlt_spec": SPEC, "explore": False})
    status2, explored = svc.optimize({"user_id": "new", "vlt_spec": SPEC})
    # Then the deterministic answer is the elegant template for a dress, describing the spec
    assert status == 200 and status2 == 200, (plain, explored)
    template = vocab.template_phrases("elegant", "dress")
    assert {p.text for p in vocab.parse_prompt(plain["prompt"])} == {t for ts in template.values() for t in ts}
    assert "black matte a-line midi dress with v-neck and sleeveless" in plain["prompt"]
    assert plain["negative_prompt"] and plain["adjustments"]["rlhf"] == []
    assert plain["metadata"]["policy"] == "greedy" and plain["metadata"]["reward_model_version"] is None
    assert plain["metadata"]["candidates_scored"] == 128
    # And the exploring answer is a full prompt of known phrases, with a seed to replay it
    meta = explored["metadata"]
    assert meta["policy"] == "thompson" and isinstance(meta["seed"], int) and 0 < meta["chosen_probability"] <= 1
    slots = [vocab.BY_TEXT[p.text].slot for p in vocab.parse_prompt(explored["prompt"])]
    assert sorted(slots) == sorted(s for s, picks in vocab.SLOTS for _ in range(picks))
    assert 0.0 <= explored["confidence"] <= 1.0


def test_the_node_clients_bodies_work_unchanged(svc: Any) -> None:
    # Given optimizePrompt's body: style profile and feedback history included
    history = [
        {
            "feedback_type": "like",
            "prompt_used": prompt_with("dramatic side lighting"),
            "vlt_spec": SPEC,
            "generation_id": "g0",
            "asset_id": "a0",
        }
    ] * 3
    body = {
        "user_id": "u1",
        "base_prompt": "elegant black dress, studio lighting",
        "vlt_spec": SPEC,
        "style_profile": PROFILE,
        "feedback_history": history,
    }
    # When
    status, answer = svc.optimize(body)
    # Then the profile's elegant cluster is used and the history counts as evidence
    assert status == 200, answer
    assert answer["metadata"]["cluster_used"] == 0 and answer["adjustments"]["cluster"] == 0
    assert answer["metadata"]["style_mode"] == "elegant, a-line silhouette, black tones"
    assert answer["metadata"]["evidence_events"] == 3
    # And submitFeedback's body is accepted as the API says
    status, answer = svc.submit(feedback("u1", 1, "like", answer["prompt"]))
    assert status == 202 and answer["queued"] is True and answer["duplicate"] is False and answer["feedback_id"]


def test_the_same_feedback_twice_is_one_event_and_a_new_type_replaces_it(svc: Any) -> None:
    # Given a like on one asset
    body = feedback("u2", 1, "like", prompt_with("dramatic side lighting"))
    first = svc.submit(body)
    # When the same body comes again, then a dislike of the same asset
    again = svc.submit(body)
    changed = svc.submit({**body, "feedback_type": "dislike"})
    # Then one event, answered as a duplicate the second time, then replaced by the dislike
    assert first[0] == again[0] == changed[0] == 202
    assert first[1]["duplicate"] is False and again[1]["duplicate"] is True and changed[1]["duplicate"] is False
    assert first[1]["feedback_id"] == again[1]["feedback_id"] == changed[1]["feedback_id"]
    events = svc.events("u2")
    assert len(events) == 1 and events[0]["feedback_type"] == "dislike"
    # And the pending evidence holds both versions, the later one replacing the earlier in optimize
    pending = [(e["k"], e["t"]) for e in map(E.decode_entry, svc.state("u2")["pending_feedback"])]
    assert pending == [("gen-1#asset-1", "like"), ("gen-1#asset-1", "dislike")]


def test_a_burst_of_feedback_queues_one_retrain(svc: Any) -> None:
    # When ten events arrive before any retrain runs
    teach(svc, "u3", 10)
    # Then one retrain message is queued, and all ten events are pending for optimize
    messages = svc.messages()
    assert len(messages) == 1 and json.loads(messages[0]["Body"])["user_id"] == "u3"
    assert len(svc.state("u3")["pending_feedback"]) == 10


def test_a_like_writes_the_event_and_the_small_state_item_and_never_the_profile(svc: Any) -> None:
    # Given a designer with a stored profile, coverage gaps, and a retrain already pending
    profiles = svc.env.resource("dynamodb").Table(svc.env.environment["PROFILES_TABLE"])
    profiles.put_item(
        Item={
            "user_id": "w1",
            "version": 1,
            "document": json.dumps(PROFILE),
            "coverage_gaps": [{"attribute": "colors.primary", "value": "red", "cluster": 3, "in_pool": False}],
        }
    )
    teach(svc, "w1", 1)
    before = svc.profile_item("w1")
    calls = svc.dynamodb_calls()
    # When another like arrives
    teach(svc, "w1", 1, start=1)
    # Then it made two writes, both to the feedback table: the event and the designer's state item
    feedback_table = svc.env.environment["FEEDBACK_TABLE"]
    assert [(op, params["TableName"]) for op, params in calls] == [
        ("PutItem", feedback_table),
        ("UpdateItem", feedback_table),
    ]
    assert calls[1][1]["Key"] == {"user_id": {"S": "w1"}, "event_key": {"S": E.STATE_KEY}}
    # And the profile item is as it was
    assert svc.profile_item("w1") == before
    assert len(svc.state("w1")["pending_feedback"]) == 2


def test_optimize_reads_the_profile_and_the_pending_evidence_in_one_round_trip(svc: Any) -> None:
    # Given a designer with pending feedback
    teach(svc, "r1", 4)
    calls = svc.dynamodb_calls()
    # When they ask for a prompt
    status, answer = svc.optimize({"user_id": "r1", "vlt_spec": SPEC, "explore": False})
    # Then their stored state came in one BatchGetItem, and the pending events are its evidence
    assert status == 200 and answer["metadata"]["evidence_events"] == 4
    assert [op for op, params in calls if '"r1"' in json.dumps(params)] == ["BatchGetItem"]


def test_an_event_whose_ids_spell_the_state_key_is_just_an_event(svc: Any) -> None:
    # When a client's generation and asset ids look like the reserved state key
    for i, (generation, asset) in enumerate([(E.STATE_KEY, "a"), ("g", E.STATE_KEY), ("%state#", "")]):
        body = {**feedback("s1", i, "like", "bold"), "generation_id": generation, "asset_id": asset or "x"}
        assert svc.submit(body)[0] == 202
    # Then each is an event of its own and the state item counts the three of them
    assert sorted(e["event_key"] for e in svc.events("s1")) == ["%25state#a", "%25state%23#x", "g#%25state"]
    assert len(svc.state("s1")["pending_feedback"]) == 3


def test_a_submit_racing_the_one_that_sets_the_retrain_marker_still_pends_its_event(
    svc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a submit whose first conditional write finds no retrain pending, and another
    # submit that sets the marker right after (before this one tries to set it)
    storage = get_storage()
    original = storage.update_expression
    raced: list[bool] = []

    def racing(table: Any, key: Any, expression: str, *args: Any, **kwargs: Any) -> Any:
        done = original(table, key, expression, *args, **kwargs)
        if done is None and not raced:
            raced.append(True)
            other = E.pending_entry("g#other", E.now_ms(), "like", None, [], [], "sig")
            original(
                table,
                key,
                "SET #p = list_append(if_not_exists(#p, :e), :ev), #r = if_not_exists(#r, :zero) + :one, #m = :now",
                {"#p": "pending_feedback", "#r": "pending_revision", "#m": "retrain_requested_at"},
                {":e": [], ":ev": [other], ":zero": 0, ":one": 1, ":now": E.now_ms()},
            )
        return done

    monkeypatch.setattr(storage, "update_expression", racing)
    # When it goes on
    status, answer = svc.submit(feedback("race", 1, "like", "bold"))
    # Then its event is pending all the same, and it queued no second retrain
    assert status == 202 and raced
    assert [E.decode_entry(e)["k"] for e in svc.state("race")["pending_feedback"]] == ["g#other", "gen-1#asset-1"]
    assert svc.messages() == []


def test_a_retrain_drops_only_the_pending_entries_its_model_saw(svc: Any) -> None:
    from designer_ml.reward.retrain import _trim_pending

    # Given pending entries: an event the model saw, one it did not, and a later version of the first
    storage = get_storage()
    key = E.state_key("t9")
    pending = [
        E.pending_entry("g#1", 10, "like", None, [], [], "s1"),
        E.pending_entry("g#2", 11, "like", None, [], [], "s2"),
        E.pending_entry("g#1", 12, "dislike", None, [], [], "s3"),
    ]
    storage.put_item(storage.feedback, {**key, "pending_feedback": pending, "pending_revision": 3})
    read_by_retrain = storage.get_item(storage.feedback, key)
    # And an event appended after the retrain read the list
    storage.update_expression(
        storage.feedback,
        key,
        "SET #p = list_append(#p, :e), #r = #r + :one",
        {"#p": "pending_feedback", "#r": "pending_revision"},
        {":e": [E.pending_entry("g#3", 13, "like", None, [], [], "s4")], ":one": 1},
    )
    # When the retrain, whose model saw g#1 as of time 10, trims from its out-of-date read
    _trim_pending(storage, "t9", {"g#1": 10}, read_by_retrain)
    # Then only the seen version is dropped, and the append made meanwhile is kept
    state = storage.get_item(storage.feedback, key)
    kept = [(e["k"], e["ts"]) for e in map(E.decode_entry, state["pending_feedback"])]
    assert kept == [("g#2", 11), ("g#1", 12), ("g#3", 13)]
    assert state["pending_revision"] == 5


def test_fast_feedback_flushes_one_early_retrain(svc: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a designer sending feedback faster than the coalescing window (a retrain pending)
    monkeypatch.setenv("RETRAIN_COALESCE_SECONDS", "600")
    monkeypatch.setattr(E, "FLUSH_EVERY", 3)
    reset_for_tests()
    # When seven events arrive before the retrain runs
    teach(svc, "fast", 7)
    # Then the first event's retrain went at once (no retrain for a window), then one flush
    # when 3 were pending; the other events only joined the pending list
    reasons = [json.loads(m["Body"])["reason"] for m in svc.messages()]
    assert reasons == ["feedback", "flush"]
    assert len(svc.state("fast")["pending_feedback"]) == 7


def test_optimize_learns_from_feedback_before_any_retrain(svc: Any) -> None:
    # Given liked dramatic lighting and disliked studio lighting, not yet retrained
    teach(svc, "u4", 16)
    # When
    status, answer = svc.optimize({"user_id": "u4", "vlt_spec": SPEC, "explore": False})
    # Then the pending events already steer the prompt
    assert status == 200
    phrases = {p.text for p in vocab.parse_prompt(answer["prompt"])}
    assert "dramatic side lighting" in phrases and "sophisticated studio lighting" not in phrases
    assert answer["metadata"]["evidence_events"] == 16
    dropped = {a["phrase"]: a for a in answer["adjustments"]["rlhf"] if a["action"] == "dropped"}
    assert dropped["sophisticated studio lighting"]["weight"] < 0


def test_exploration_narrows_as_the_designer_gives_feedback_whether_pending_or_trained(svc: Any) -> None:
    def scale(user_id: str, explore: bool = True) -> float:
        _, answer = svc.optimize({"user_id": user_id, "vlt_spec": SPEC, "explore": explore, "seed": 1})
        return answer["metadata"]["exploration_scale"]

    # Given a designer nobody knows anything about
    new = scale("u9")
    # When they give 16 likes and dislikes, first pending, then trained into their model
    teach(svc, "u9", 16)
    pending = scale("u9")
    svc.drain()
    trained = scale("u9")
    # Then Thompson sampling explores less, the same for pending and trained events, and
    # never below the floor; greedy does not explore at all
    assert new > pending == trained >= policy.EXPLORATION_FLOOR
    assert scale("u9", explore=False) == 0.0


def test_retrain_publishes_a_model_that_the_model_endpoint_describes(svc: Any) -> None:
    # Given a designer with no model yet
    assert svc.model("u5")[0] == 404
    teach(svc, "u5", 12)
    # When the queue is drained into the retrain function
    result = svc.drain()
    # Then version 1 serves, knows the twelve events, and names the liked and disliked lighting
    assert result == {"batchItemFailures": []}
    status, info = svc.model("u5")
    assert status == 200 and info["version"] == 1 and info["n_events"] == 12
    assert info["likes_most"][0]["phrase"] == "dramatic side lighting"
    assert info["dislikes_most"][0]["phrase"] == "sophisticated studio lighting"
    assert "train" in info["metrics"]
    # And optimize serves it, with nothing left pending
    _, answer = svc.optimize({"user_id": "u5", "vlt_spec": SPEC, "explore": False})
    assert answer["metadata"]["reward_model_version"] == 1 and answer["metadata"]["evidence_events"] == 0
    assert "dramatic side lighting" in answer["prompt"]
    assert svc.state("u5")["pending_feedback"] == [] and info["pending_events"] == 0
    # And feedback after it is counted as pending by the model endpoint
    teach(svc, "u5", 2, start=12)
    assert svc.model("u5")[1]["pending_events"] == 2


def test_a_model_stored_before_reward_summary_is_still_described_and_served(svc: Any) -> None:
    # Given a designer's model, its profile item rewritten the way retrains wrote it before
    # reward_summary: metrics and favourite phrases inside the pointer, the last retrain a map
    teach(svc, "u6", 12)
    svc.drain()
    item = svc.profile_item("u6")
    summary = json.loads(item.pop("reward_summary"), parse_float=Decimal)
    assert set(summary) == {"metrics", "likes_most", "dislikes_most"} and "metrics" not in item["reward_model"]
    item["reward_model"] = {**item["reward_model"], **summary}
    item["reward_last_retrain"] = json.loads(item["reward_last_retrain"], parse_float=Decimal)
    svc.env.resource("dynamodb").Table(svc.env.environment["PROFILES_TABLE"]).put_item(Item=item)
    # When it is described and served
    status, info = svc.model("u6")
    _, answer = svc.optimize({"user_id": "u6", "vlt_spec": SPEC, "explore": False})
    # Then the endpoint reads them from the pointer and the map, and optimize serves the model
    assert status == 200 and info["likes_most"][0]["phrase"] == "dramatic side lighting"
    assert "train" in info["metrics"] and info["last_retrain"]["promoted"] is True
    assert answer["metadata"]["reward_model_source"] == "user"


def test_the_same_message_twice_makes_one_model_version(svc: Any) -> None:
    # Given one queued retrain message
    teach(svc, "u6", 6)
    messages = svc.messages()
    # When it is delivered twice (SQS is at-least-once), once in the same batch as a copy
    first = svc.retrain(messages)
    second = svc.retrain(messages + [{**messages[0], "MessageId": "copy"}])
    # Then one version exists
    assert first == second == {"batchItemFailures": []}
    assert svc.model("u6")[1]["version"] == 1
    keys = list(get_storage().list_keys("models/u6/reward/"))
    assert len([k for k in keys if k.endswith(".onnx")]) == 1


def test_a_poison_message_fails_alone_and_the_others_succeed(svc: Any) -> None:
    # Given a batch of retrain requests for three designers and one unreadable message
    for user in ("p1", "p2", "p3"):
        teach(svc, user, 4)
    messages = svc.messages()
    poison = {"MessageId": "poison", "ReceiptHandle": "x", "Body": "{not json"}
    bad_user = {"MessageId": "bad-user", "ReceiptHandle": "y", "Body": json.dumps({"user_id": "../etc"})}
    # When
    result = svc.retrain(messages[:2] + [poison] + messages[2:] + [bad_user])
    # Then exactly the bad messages are reported (SQS retries them, then the DLQ), the others trained
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == ["bad-user", "poison"]
    assert all(svc.model(user)[1]["version"] == 1 for user in ("p1", "p2", "p3"))


def test_a_batch_of_only_poison_messages_is_reported_not_raised(svc: Any) -> None:
    # Given a batch holding nothing but an unreadable message
    poison = {"MessageId": "poison", "ReceiptHandle": "x", "Body": "{not json"}
    # When the retrain function gets it
    result = svc.retrain([poison])
    # Then it is reported as a failed item (SQS retries it, then the DLQ), not raised as an error
    assert result == {"batchItemFailures": [{"itemIdentifier": "poison"}]}


CROWD = 30


def test_a_candidate_worse_than_the_serving_model_is_not_promoted(svc: Any) -> None:
    # Given a designer served by a model trained on their taste (dramatic lighting liked)
    teach(svc, "u7", 12)
    svc.drain()
    # And a population that has since learned, from many designers who agree, the opposite taste
    # (so designers do not differ there, and the population's word weighs on everyone)
    storage = get_storage()
    ctx = F.context_row(F.spec_tokens_of(SPEC))
    dramatic = vocab.BY_TEXT["dramatic side lighting"].index
    studio = vocab.BY_TEXT["sophisticated studio lighting"].index
    X = F.rows_for(ctx, [(dramatic,), (studio,)] * 250)
    y = np.array([0.0, 1.0] * 250)
    S, b = M.sufficient_stats(X, y, np.ones(len(y)))
    from designer_ml.reward.retrain import update_population

    for i in range(CROWD):
        meta_key = f"models/crowd{i}/reward/v1-none.json"
        stats = {"S": M.encode_symmetric(S[: F.SHARED_D, : F.SHARED_D]), "b": M.encode_array(b[: F.SHARED_D])}
        storage.put_json(meta_key, {"schema": F.FEATURE_SCHEMA, "stats": stats})
        update_population(storage, f"crowd{i}", meta_key, S, b)
    # When the designer keeps liking dramatic lighting and the retrain runs (enough new events
    # for a conclusive held-out comparison)
    teach(svc, "u7", 40, start=12)
    svc.drain()
    # Then the candidate (pulled towards the crowd) is refused, and the document says why
    status, info = svc.model("u7")
    assert status == 200 and info["version"] == 1
    last = info["last_retrain"]
    assert last["promoted"] is False and "worse than the serving model" in last["reason"]
    holdout = last["metrics"]["holdout"]
    assert holdout["candidate"]["log_loss"] > holdout["serving"]["log_loss"]


def test_replay_from_the_seed_and_deterministic_explore_false(svc: Any) -> None:
    # Given a designer with a model
    teach(svc, "u8", 8)
    svc.drain()
    body = {"user_id": "u8", "vlt_spec": SPEC}
    # When the same seed is asked twice, and explore false with different seeds
    _, a = svc.optimize({**body, "seed": 42})
    _, b = svc.optimize({**body, "seed": 42})
    _, c = svc.optimize({**body, "seed": 43})
    greedy = {svc.optimize({**body, "explore": False, "seed": s})[1]["prompt"] for s in (1, 2, 3)}
    # Then the seed replays the same prompt, and explore false always gives one prompt
    assert a["prompt"] == b["prompt"] and a["metadata"]["seed"] == 42
    assert a["metadata"]["chosen_probability"] == b["metadata"]["chosen_probability"]
    assert c["metadata"]["seed"] == 43
    assert len(greedy) == 1


def test_a_missing_or_corrupt_model_still_answers(svc: Any) -> None:
    # Given a designer whose model artifact got corrupted, another whose pointer names nothing
    teach(svc, "u9", 6)
    svc.drain()
    item = svc.profile_item("u9")
    get_storage().put_bytes(item["reward_model"]["key"], b"not an onnx model")
    table = svc.env.resource("dynamodb").Table(svc.env.environment["PROFILES_TABLE"])
    table.put_item(
        Item={
            "user_id": "gone",
            "reward_version": 3,
            "reward_model": {
                **item["reward_model"],
                "key": "models/gone/reward/v3-x.onnx",
                "meta_key": "models/gone/reward/v3-x.json",
            },
        }
    )
    store.clear_caches()
    # When
    corrupt = svc.optimize({"user_id": "u9", "vlt_spec": SPEC})
    gone = svc.optimize({"user_id": "gone", "vlt_spec": SPEC})
    # Then both answer from the population model
    assert corrupt[0] == gone[0] == 200
    assert corrupt[1]["metadata"]["reward_model_source"] == "population"
    assert gone[1]["metadata"]["reward_model_source"] == "population"


def test_a_model_carries_its_serving_metadata_and_an_older_one_reads_its_json(
    svc: Any, s3_reads: list[str], store_without_documents: Any
) -> None:
    # Given a designer with a published model
    teach(svc, "carry", 6)
    svc.drain()
    storage = get_storage()
    pointer = svc.profile_item("carry")["reward_model"]
    meta = storage.get_json(pointer["meta_key"])
    store.clear_caches()
    onnx_models.clear_cache()
    s3_reads.clear()
    reads = s3_reads

    # When it is served from a cold process's caches
    fresh = store.load_pointed_model(storage, pointer)

    # Then one object was read, the model, whose metadata is the JSON's without what only
    # retraining reads (the sufficient statistics)
    assert fresh is not None and reads == [pointer["key"]]
    assert fresh[1] == {k: v for k, v in meta.items() if k != "stats"} and "stats" in meta

    # And a model stored before models carried it (no documents) reads its JSON as before
    store_without_documents(storage, pointer["key"])
    store.clear_caches()
    onnx_models.clear_cache()
    reads.clear()
    older = store.load_pointed_model(storage, pointer)
    assert older is not None and reads == [pointer["key"], pointer["meta_key"]]
    assert older[1] == meta
    assert svc.optimize({"user_id": "carry", "vlt_spec": SPEC})[1]["metadata"]["reward_model_source"] == "user"


def test_coverage_gaps_are_filled(svc: Any) -> None:
    # Given coverage gaps stored by the selection stage
    table = svc.env.resource("dynamodb").Table(svc.env.environment["PROFILES_TABLE"])
    table.put_item(
        Item={
            "user_id": "cov",
            "coverage_gaps": [
                {"attribute": "style.mood", "value": "bold", "cluster": 3, "in_pool": True},
                {"attribute": "colors.primary", "value": "red", "cluster": 3, "in_pool": False},
            ],
        }
    )
    spec = {"garment_type": "dress", "attributes": {"silhouette": "wrap"}}
    # When
    status, answer = svc.optimize({"user_id": "cov", "vlt_spec": spec, "explore": False})
    # Then the gap's mood phrase and colour are in the prompt, and adjustments say so
    assert status == 200
    assert "bold" in [p.text for p in vocab.parse_prompt(answer["prompt"])]
    assert "red wrap dress" in answer["prompt"]
    actions = {(c["value"], c["action"]) for c in answer["adjustments"]["coverage"]}
    assert {("bold", "boosted"), ("red", "filled")} <= actions


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u", "vlt_spec": {}}, "vlt_spec"),
        ({"user_id": "u", "vlt_spec": SPEC, "n_candidates": 0}, "n_candidates"),
        ({"user_id": "../x", "vlt_spec": SPEC}, "user_id"),
        ({"user_id": "u", "vlt_spec": SPEC, "feedback_history": [{"feedback_type": "love"}]}, "feedback_history"),
    ],
)
def test_bad_optimize_requests_are_4xx_naming_the_field(svc: Any, body: dict[str, Any], field: str) -> None:
    status, answer = svc.optimize(body)
    assert 400 <= status < 500 and field in answer["error"]["message"], answer


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"feedback_type": "love"}, "feedback_type"),
        ({"quality_score": 1.5}, "quality_score"),
        ({"generation_id": None}, "generation_id"),
    ],
)
def test_bad_feedback_is_422_naming_the_field_and_stores_nothing(svc: Any, change: dict[str, Any], field: str) -> None:
    status, answer = svc.submit({**feedback("bad", 1, "like", "x"), **change})
    assert status == 422 and field in answer["error"]["message"], answer
    assert svc.items("bad") == [] and svc.profile_item("bad") == {}


def test_an_explicit_train_request_queues_a_retrain(svc: Any) -> None:
    teach(svc, "t1", 3)
    svc.messages()
    status, answer = svc.train("t1")
    assert status == 202 and answer == {"queued": True}
    assert [json.loads(m["Body"])["reason"] for m in svc.messages()] == ["train"]


def test_feedback_after_a_train_request_of_a_new_designer_is_pending_at_once(svc: Any) -> None:
    # Given a train request from a designer with no feedback yet
    assert svc.train("t2")[0] == 202
    # When their first like arrives while that retrain is pending
    teach(svc, "t2", 1, start=1)
    # Then optimize already has it as evidence
    assert len(svc.state("t2")["pending_feedback"]) == 1
    assert svc.optimize({"user_id": "t2", "vlt_spec": SPEC})[1]["metadata"]["evidence_events"] == 1


def test_serving_handlers_import_no_training_libraries(aws_env: Any) -> None:
    # Given a fresh interpreter that imports each serving handler and answers a request
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(REPO)!r})
        from local import cloud
        from local.events import build_api_event
        from local.runtime import LambdaFunction
        specs = {{s.logical_id: s for s in cloud.functions(cloud.load_template())}}
        routes = [r for s in specs.values() for r in s.api_routes]
        calls = [("OptimizeFunction", "POST", "/api/ml/prompt/optimize",
                  {{"user_id": "imp", "vlt_spec": {json.dumps(SPEC)}}}),
                 ("FeedbackFunction", "POST", "/api/ml/feedback/submit",
                  {{"user_id": "imp", "generation_id": "g", "asset_id": "a", "feedback_type": "like",
                   "prompt_used": "high fashion photography", "vlt_spec": {json.dumps(SPEC)}}})]
        for name, method, path, body in calls:
            _, event = build_api_event(routes, method, path, headers={{"Content-Type": "application/json"}},
                                       body=json.dumps(body))
            status = LambdaFunction(specs[name]).invoke(event)["statusCode"]
            assert status < 300, status
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "scipy", "skl2onnx", "dppy", "matplotlib"))
        print(json.dumps(bad))
    """)
    # When
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**aws_env.environment, **_aws_vars()},
        cwd=REPO,
    )
    # Then nothing of the training stack was imported
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def _aws_vars() -> dict[str, str]:
    import os

    keep = (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "PATH",
        "POWERTOOLS_TRACE_DISABLED",
    )
    return {k: os.environ[k] for k in keep if k in os.environ}


def test_an_erased_designer_leaves_the_population_model(svc: Any) -> None:
    # Given two designers whose models fed the population
    teach(svc, "keep", 6)
    teach(svc, "erase", 6)
    svc.drain()
    from designer_ml.reward.retrain import forget_designer, load_population

    storage = get_storage()
    assert sorted(load_population(storage).contributors) == ["erase", "keep"]
    # When one is erased
    forget_designer(storage, "erase")
    # Then the population holds exactly the other designer's evidence
    state = load_population(storage)
    assert sorted(state.contributors) == ["keep"]
    meta = storage.get_json(state.contributors["keep"])
    only_keep = M.population_message(M.decode_symmetric(meta["stats"]["S"]), M.decode_array(meta["stats"]["b"]))
    np.testing.assert_allclose(state.precision, only_keep[0], atol=1e-6)
    np.testing.assert_allclose(state.information, only_keep[1], atol=1e-6)


def test_a_new_designer_is_served_their_base_prompt_in_apprentice_mode(svc: Any) -> None:
    # Given a designer nobody knows, who asks for their own base prompt
    base = prompt_with("high fashion photography", "full body", "dramatic side lighting")
    body = {"user_id": "appr", "vlt_spec": SPEC, "base_prompt": base}
    # When they ask greedily, and exploring with many seeds
    _, greedy = svc.optimize({**body, "explore": False})
    explored = [svc.optimize({**body, "seed": s})[1] for s in range(40)]
    # Then the greedy answer is their base prompt, said to be apprentice mode
    base_phrases = {p.text for p in vocab.parse_prompt(base)}
    assert {p.text for p in vocab.parse_prompt(greedy["prompt"])} == base_phrases
    meta = greedy["metadata"]
    assert meta["apprentice"] is True and meta["served"] == "base" and meta["apprentice_reason"]
    # And exploring answers serve it most of the time, the rest the model's Thompson choice,
    # each with the probability the mixture gave it
    served_base = [e for e in explored if e["metadata"]["served"] == "base"]
    assert 0.6 <= len(served_base) / len(explored) < 1.0
    for answer in served_base:
        assert answer["metadata"]["chosen_probability"] >= 1 - policy.APPRENTICE_EXPLORATION
    for answer in explored:
        if answer["metadata"]["served"] == "model":
            assert answer["metadata"]["chosen_probability"] <= policy.APPRENTICE_EXPLORATION


def test_a_designer_whose_model_is_confidently_better_leaves_apprentice_mode(svc: Any) -> None:
    # Given a designer whose feedback is clear: dramatic lighting liked, studio lighting disliked
    teach(svc, "apprentice-out", 60)
    svc.drain()
    base = prompt_with("high fashion photography", "full body", "sophisticated studio lighting")
    # When they ask with the disliked phrase as their base prompt
    _, answer = svc.optimize({"user_id": "apprentice-out", "vlt_spec": SPEC, "base_prompt": base, "explore": False})
    # Then the model's prompt is served, not the base
    meta = answer["metadata"]
    assert meta["apprentice"] is False and meta["served"] == "model", meta
    assert meta["base_advantage"]["mean"] > meta["base_advantage"]["sd"] > 0
    assert "dramatic side lighting" in {p.text for p in vocab.parse_prompt(answer["prompt"])}


def test_logged_decisions_are_evaluated_off_policy_and_a_worse_model_goes_back_to_apprentice(svc: Any) -> None:
    # Given a designer whose feedback came with the optimize metadata: the model's choices
    # (dramatic lighting) disliked, the base prompt (studio lighting) liked
    base = prompt_with("high fashion photography", "full body", "sophisticated studio lighting")
    model_choice = prompt_with("high fashion photography", "full body", "dramatic side lighting")
    for i in range(40):
        served = "model" if i % 2 else "base"
        body = feedback("ope", i, "dislike" if i % 2 else "like", model_choice if i % 2 else base)
        body["decision"] = {"served": served, "chosen_probability": 0.2 if i % 2 else 0.8, "policy": "thompson"}
        assert svc.submit(body)[0] == 202
    svc.drain()
    # When the model document is read, and the designer asks with that base prompt
    status, info = svc.model("ope")
    _, answer = svc.optimize({"user_id": "ope", "vlt_spec": SPEC, "base_prompt": base, "explore": False})
    # Then the off-policy estimates are there (SNIPS like rates of each arm)
    assert status == 200
    estimate = info["metrics"]["ope"]
    assert estimate["logged"] == 40 and estimate["base"]["n"] == 20 and estimate["model"]["n"] == 20
    assert estimate["base"]["value"] == 1.0 and estimate["model"]["value"] == 0.0
    assert estimate["verdict"] == "model_worse"
    # And the base prompt is served
    assert answer["metadata"]["served"] == "base"


def test_an_ope_verdict_of_worse_puts_a_confident_model_back_in_apprentice_mode() -> None:
    # Given a model sure that dramatic lighting beats the base prompt's studio lighting
    dramatic = vocab.BY_TEXT["dramatic side lighting"].index
    studio = vocab.BY_TEXT["sophisticated studio lighting"].index
    mean = np.zeros(F.D)
    mean[F.INTERCEPT] = 0.5
    mean[F.PHRASE_START + dramatic] = 0.3
    scorer = NumpyScorer(mean, np.eye(F.D)[:, :1] * 1e-3)
    context = F.context_row(F.spec_tokens_of(SPEC))
    base = tuple(sorted({dramatic, studio} - {dramatic}))
    kwargs = {"family": "dress", "style": "elegant", "base": base, "explore": False}
    # When it decides, without and with the off-policy verdict that its choices did worse
    trusted = policy.decide(scorer, context, rng=np.random.default_rng(0), **kwargs)
    overruled = policy.decide(scorer, context, rng=np.random.default_rng(0), model_worse_than_base=True, **kwargs)
    # Then the verdict, not the posterior, decides: the base prompt is served
    assert not trusted.apprentice and trusted.served == "model"
    assert overruled.apprentice and overruled.served == "base"
    assert "off-policy" in overruled.apprentice_reason


def test_ope_snips_estimates_and_verdicts() -> None:
    # Given logs of a base arm liked 3 times in 4 and a model arm liked 1 time in 4
    rewards = [1, 1, 1, 0] * 5 + [1, 0, 0, 0] * 5
    served = ["base"] * 20 + ["model"] * 20
    # When evaluated with known propensities, and with too few logged events
    result = ope.evaluate(rewards, [0.8] * 20 + [0.2] * 20, served)
    few = ope.evaluate(rewards[:6] + rewards[20:26], [0.5] * 12, served[:6] + served[20:26])
    unlogged = ope.evaluate(rewards, [None] * 40, served)
    # Then the like rates are estimated, the model is found worse, and no verdict without data
    assert result["base"]["value"] == 0.75 and result["model"]["value"] == 0.25
    assert result["verdict"] == "model_worse"
    assert few["verdict"] is None and unlogged["logged"] == 0 and unlogged["verdict"] is None


def test_several_images_of_one_prompt_narrow_exploration_as_one_decision(svc: Any) -> None:
    # Given a designer who liked or disliked 4 images of each of 3 prompts (12 events)
    for g in range(3):
        for j in range(4):
            body = feedback("k4", g, "like" if j % 2 else "dislike", prompt_with("full body"))
            body["asset_id"] = f"asset-{g}-{j}"
            assert svc.submit(body)[0] == 202
    # When they ask, with the events pending and then trained into their model
    _, pending = svc.optimize({"user_id": "k4", "vlt_spec": SPEC, "seed": 1})
    svc.drain()
    _, trained = svc.optimize({"user_id": "k4", "vlt_spec": SPEC, "seed": 1})
    # Then exploration narrowed as for 3 decisions, not 12
    expected = round(policy.exploration_scale(3), 4)
    assert pending["metadata"]["exploration_scale"] == trained["metadata"]["exploration_scale"] == expected
    assert svc.model("k4")[1]["n_events"] == 12
