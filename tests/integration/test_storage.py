"""The storage interface against moto, with the template's own tables, bucket and queue."""

import json
import threading

import pytest
from botocore.exceptions import ClientError

from designer_ml.errors import StorageRefused, StorageUnavailable, VersionConflict
from designer_ml.privacy import delete_user, export_user
from designer_ml.settings import Settings
from designer_ml.storage import Storage


@pytest.fixture
def storage(aws_env):
    return Storage(Settings.from_env())


def test_versioned_write_creates_then_requires_the_expected_version(storage):
    # Given no profile
    key = {"user_id": "u1"}
    # When it is created and updated with the right versions
    assert storage.put_versioned(storage.profiles, key, {"document": "{}"}, None) == 1
    assert storage.put_versioned(storage.profiles, key, {"document": '{"a": 1.5}'}, 1) == 2
    # Then a writer holding an old version loses, and creating twice loses too
    with pytest.raises(VersionConflict):
        storage.put_versioned(storage.profiles, key, {"document": "stale"}, 1)
    with pytest.raises(VersionConflict):
        storage.put_versioned(storage.profiles, key, {"document": "again"}, None)
    item = storage.get_item(storage.profiles, key)
    assert item["version"] == 2 and item["document"] == '{"a": 1.5}'


def test_versioned_write_keeps_other_stages_attributes(storage):
    # Given a profile on which another stage stored coverage gaps
    key = {"user_id": "u1"}
    storage.put_versioned(storage.profiles, key, {"document": "{}"}, None)
    assert storage.set_attributes(
        storage.profiles, key, {"coverage_gaps": [{"attribute": "x", "value": 0.5}]}, must_exist="user_id"
    )
    # When the profile is updated
    storage.put_versioned(storage.profiles, key, {"document": "{}"}, 1)
    # Then the gaps survive, with floats back as floats
    assert storage.get_item(storage.profiles, key)["coverage_gaps"] == [{"attribute": "x", "value": 0.5}]
    # And setting attributes on a missing item with must_exist does nothing
    assert not storage.set_attributes(storage.profiles, {"user_id": "ghost"}, {"a": 1}, must_exist="user_id")
    assert storage.get_item(storage.profiles, {"user_id": "ghost"}) is None


def test_concurrent_versioned_writers_exactly_one_wins_per_version(storage):
    # Given 10 writers racing from version 1
    key = {"user_id": "u1"}
    storage.put_versioned(storage.profiles, key, {"document": "{}"}, None)
    wins, losses = [], []

    def write(i):
        try:
            storage.put_versioned(storage.profiles, key, {"document": str(i)}, 1)
            wins.append(i)
        except VersionConflict:
            losses.append(i)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then exactly one wins and the others are told to retry
    assert len(wins) == 1 and len(losses) == 9


def test_put_if_absent_and_query(storage):
    item = {"user_id": "u1", "event_key": "g1#a1", "feedback_type": "like", "quality_score": 0.7}
    assert storage.put_item(storage.feedback, item, only_if_absent="event_key")
    assert not storage.put_item(storage.feedback, item, only_if_absent="event_key")
    storage.put_item(storage.feedback, dict(item, event_key="g1#a2"))
    storage.put_item(storage.feedback, dict(item, user_id="u2"))
    events = storage.query_user(storage.feedback, "u1")
    assert sorted(e["event_key"] for e in events) == ["g1#a1", "g1#a2"]
    assert events[0]["quality_score"] == 0.7


def test_items_of_two_tables_come_in_one_call_in_the_order_asked(storage):
    # Given a profile item and two feedback items, and a key with nothing stored
    storage.put_item(storage.profiles, {"user_id": "u1", "version": 2})
    storage.put_item(storage.feedback, {"user_id": "u1", "event_key": "%state", "n": 1})
    storage.put_item(storage.feedback, {"user_id": "u1", "event_key": "g#a", "n": 0.5})
    calls = []
    storage.dynamodb.meta.events.register("provide-client-params.dynamodb", lambda model, **_: calls.append(model.name))
    # When they are asked for together, one key twice
    got = storage.get_items(
        [
            (storage.feedback, {"user_id": "u1", "event_key": "g#a"}),
            (storage.profiles, {"user_id": "nobody"}),
            (storage.profiles, {"user_id": "u1"}),
            (storage.feedback, {"user_id": "u1", "event_key": "%state"}),
            (storage.profiles, {"user_id": "u1"}),
        ]
    )
    # Then one BatchGetItem answered each in the order asked, None for the missing one
    assert calls == ["BatchGetItem"]
    assert got == [
        {"user_id": "u1", "event_key": "g#a", "n": 0.5},
        None,
        {"user_id": "u1", "version": 2},
        {"user_id": "u1", "event_key": "%state", "n": 1},
        {"user_id": "u1", "version": 2},
    ]


def test_keys_left_unprocessed_by_batch_get_are_read_again(storage):
    # Given a backend that leaves the first keys of a batch read unprocessed (throttling)
    storage.put_item(storage.profiles, {"user_id": "u1", "version": 1})
    storage.put_item(storage.profiles, {"user_id": "u2", "version": 2})
    original = storage.dynamodb.batch_get_item
    answers = []

    def throttled(**kwargs):
        answer = original(**kwargs)
        if not answers:
            (name,) = kwargs["RequestItems"]
            answer["Responses"][name] = []
            answer["UnprocessedKeys"] = kwargs["RequestItems"]
        answers.append(answer)
        return answer

    storage.dynamodb.batch_get_item = throttled
    # When both are read together
    got = storage.get_items([(storage.profiles, {"user_id": "u1"}), (storage.profiles, {"user_id": "u2"})])
    # Then the unprocessed keys were asked again and both items came back
    assert len(answers) == 2
    assert [g["version"] for g in got] == [1, 2]


def test_reads_can_ask_for_some_paths_of_an_item_only(storage):
    # Given a profile item with a nested pointer (reserved words among its names) and the
    # designer's feedback state item
    pointer = {"key": "m/1.onnx", "schema": "s1", "metrics": {"brier": 0.2}, "likes_most": ["red"]}
    storage.put_item(storage.profiles, {"user_id": "u1", "reward_model": pointer, "document": "{}", "big": "x" * 100})
    storage.put_item(storage.feedback, {"user_id": "u1", "event_key": "state", "pending_feedback": [1]})
    paths = ("reward_model.key", "reward_model.schema", "document", "absent.path")
    # When the profile is read for some paths, alone and together with the state item
    alone = storage.get_item(storage.profiles, {"user_id": "u1"}, attributes=paths)
    together = storage.get_items(
        [(storage.profiles, {"user_id": "u1"}), (storage.feedback, {"user_id": "u1", "event_key": "state"})],
        attributes={storage.profiles.name: paths},
    )
    nothing = storage.get_item(storage.profiles, {"user_id": "u1"}, attributes=("absent",))
    # Then only those paths come back (the batch also keeps the key it matches answers by),
    # the other table's item whole; an item holding none of them reads as holding nothing
    assert alone == {"reward_model": {"key": "m/1.onnx", "schema": "s1"}, "document": "{}"}
    assert together[0] == {**alone, "user_id": "u1"}
    assert together[1] == {"user_id": "u1", "event_key": "state", "pending_feedback": [1]}
    assert not nothing and storage.get_item(storage.profiles, {"user_id": "u9"}, attributes=paths) is None


def test_item_values_come_back_as_plain_python(storage):
    # Given an item holding every kind of value the stages store, and numbers at DynamoDB's edges
    values = {
        "text": "",
        "flag": True,
        "nothing": None,
        "count": 3,
        "big": 2**62,
        "score": 0.1,
        "whole_float": 2.0,
        "tiny": 2e-134,
        "negative": -1.5e-7,
        "blob": b"\x00\xff",
        "nested": {"list": [1, 0.25, "a", None, [False]], "map": {"k": -4}},
        "empty": [],
    }
    # When it is written and read back
    storage.put_item(storage.profiles, {"user_id": "u1", **values})
    got = storage.get_item(storage.profiles, {"user_id": "u1"})
    # Then numbers are int or float again (a float with no fraction reads back as an int, one
    # under DynamoDB's smallest magnitude as 0), and everything else is as it was
    assert got == {"user_id": "u1", **values, "whole_float": 2, "tiny": 0}
    assert type(got["count"]) is int and type(got["score"]) is float and type(got["big"]) is int


def test_values_dynamodb_cannot_hold_are_refused_before_any_call(storage):
    # Given numbers DynamoDB cannot store
    for bad in (float("inf"), 10**40, object()):
        # Then the write is refused here (a bug in the caller), and nothing is stored
        with pytest.raises((TypeError, ArithmeticError)):
            storage.put_item(storage.profiles, {"user_id": "u1", "value": bad})
    assert storage.get_item(storage.profiles, {"user_id": "u1"}) is None


def test_objects_round_trip_and_missing_is_none(storage):
    storage.put_json("records/u1/v1.json", [{"id": "1"}])
    storage.put_bytes("models/u1/style/v1/style.onnx", b"\x00\x01")
    assert storage.get_json("records/u1/v1.json") == [{"id": "1"}]
    assert storage.get_bytes("models/u1/style/v1/style.onnx") == b"\x00\x01"
    assert storage.get_bytes("models/u1/nothing") is None
    assert sorted(storage.list_keys("models/u1/")) == ["models/u1/style/v1/style.onnx"]


def test_queue_message_is_sent(storage, aws_env):
    storage.send_message({"user_id": "u1"})
    sqs = aws_env.client("sqs")
    got = sqs.receive_message(QueueUrl=storage.settings.retrain_queue_url, WaitTimeSeconds=1)
    assert json.loads(got["Messages"][0]["Body"]) == {"user_id": "u1"}


def test_client_errors_become_domain_errors(storage, aws_env):
    # Given a backend failing every S3 call (a fault injected into the real boto3 client)
    def fail(**kwargs):
        raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "GetObject")

    storage.s3.meta.events.register("before-call.s3.GetObject", fail)
    # Then the caller sees a domain error that says retry, never a ClientError
    with pytest.raises(StorageUnavailable):
        storage.get_bytes("records/u1/v1.json")


def test_a_request_the_backend_refuses_as_malformed_is_a_bug_not_a_retry(storage, aws_env):
    # Given a DynamoDB that refuses every GetItem as malformed (a fault injected into the real client)
    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "bad key"}}, "GetItem")

    storage.dynamodb.meta.events.register("before-call.dynamodb.GetItem", refuse)
    # Then the caller sees StorageRefused (a 500: retrying cannot help), not StorageUnavailable
    with pytest.raises(StorageRefused) as raised:
        storage.get_item(storage.profiles, {"user_id": "u1"})
    assert not isinstance(raised.value, StorageUnavailable)
    assert "ValidationException" in str(raised.value)


def test_a_request_botocore_refuses_before_sending_is_a_bug_not_a_retry(storage, aws_env):
    # Given an empty object key (botocore's parameter check refuses it before sending)
    # Then the caller sees StorageRefused, not StorageUnavailable
    with pytest.raises(StorageRefused, match="ParamValidationError"):
        storage.put_bytes("", b"x")


def test_a_throttled_request_is_a_retry(storage, aws_env):
    # Given a DynamoDB that throttles every GetItem beyond botocore's own retries
    def throttle(**kwargs):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "GetItem")

    storage.dynamodb.meta.events.register("before-call.dynamodb.GetItem", throttle)
    # Then the caller sees StorageUnavailable (503, retry later)
    with pytest.raises(StorageUnavailable):
        storage.get_item(storage.profiles, {"user_id": "u1"})


def test_export_and_delete_a_designer(storage):
    # Given everything a designer can have stored, and another designer with a similar id
    for user in ("u1", "u10"):
        storage.put_versioned(storage.profiles, {"user_id": user}, {"document": json.dumps({"v": 1})}, None)
        storage.put_item(storage.feedback, {"user_id": user, "event_key": "g#a", "feedback_type": "like"})
        storage.put_item(
            storage.feedback, {"user_id": user, "event_key": "%state", "pending_feedback": ['{"k":"g#a","ts":1}']}
        )
        storage.put_json(f"records/{user}/v1.json", [{"id": "1"}])
        storage.put_bytes(f"models/{user}/style/v1/style.onnx", b"x")
    # When u1 exports, then deletes
    exported = export_user(storage, "u1")
    deleted = delete_user(storage, "u1")
    # Then the export held all of it, and nothing of u1 is left anywhere, while u10 is intact
    assert exported["profile"]["document"] == {"v": 1}
    assert list(exported["records"]) == ["records/u1/v1.json"]
    assert exported["model_artifacts"] == ["models/u1/style/v1/style.onnx"]
    assert [e["event_key"] for e in exported["feedback"]] == ["g#a"]
    assert exported["feedback_state"]["pending_feedback"] == [{"k": "g#a", "ts": 1}]
    assert deleted == {"profiles": 1, "feedback_events": 1, "objects": 2}
    assert storage.get_item(storage.profiles, {"user_id": "u1"}) is None
    assert storage.query_user(storage.feedback, "u1") == []
    assert list(storage.list_keys("records/u1/")) == [] and list(storage.list_keys("models/u1/")) == []
    assert export_user(storage, "u10")["feedback"]
