"""local.cfn_yaml and local.cloud: the template read as data, its resources created on moto."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from local import cfn_yaml, cloud

HERE = Path(__file__).resolve().parent
FAKE_TEMPLATE = HERE / "fake_template.yaml"


@pytest.fixture
def fake_template():
    return cloud.load_template(FAKE_TEMPLATE)


@pytest.fixture
def endpoint(moto_endpoint, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    return moto_endpoint


def test_short_tags_become_long_form():
    # Given every short intrinsic tag CloudFormation accepts
    text = """
    ref: !Ref Table
    att_dotted: !GetAtt Queue.Arn
    att_nested: !GetAtt Db.Endpoint.Address
    att_list: !GetAtt [Queue, QueueName]
    sub: !Sub "${AWS::StackName}-x"
    sub_list: !Sub ["${A}", {A: !Ref B}]
    join: !Join [",", [a, !Ref B]]
    if: !If [IsProd, 1, !Ref AWS::NoValue]
    equals: !Equals [!Ref Stage, prod]
    select: !Select [0, !GetAZs ""]
    split: !Split [",", "a,b"]
    map: !FindInMap [M, K, V]
    import: !ImportValue other-export
    logic: !And [!Not [!Condition C], !Or [!Condition D, !Condition E]]
    b64: !Base64 text
    """
    # When it is loaded
    loaded = cfn_yaml.load(text)
    # Then each is the long form
    assert loaded["ref"] == {"Ref": "Table"}
    assert loaded["att_dotted"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert loaded["att_nested"] == {"Fn::GetAtt": ["Db", "Endpoint.Address"]}
    assert loaded["att_list"] == {"Fn::GetAtt": ["Queue", "QueueName"]}
    assert loaded["sub"] == {"Fn::Sub": "${AWS::StackName}-x"}
    assert loaded["sub_list"] == {"Fn::Sub": ["${A}", {"A": {"Ref": "B"}}]}
    assert loaded["join"] == {"Fn::Join": [",", ["a", {"Ref": "B"}]]}
    assert loaded["if"] == {"Fn::If": ["IsProd", 1, {"Ref": "AWS::NoValue"}]}
    assert loaded["equals"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert loaded["select"] == {"Fn::Select": [0, {"Fn::GetAZs": ""}]}
    assert loaded["split"] == {"Fn::Split": [",", "a,b"]}
    assert loaded["map"] == {"Fn::FindInMap": ["M", "K", "V"]}
    assert loaded["import"] == {"Fn::ImportValue": "other-export"}
    assert loaded["logic"] == {
        "Fn::And": [{"Fn::Not": [{"Condition": "C"}]}, {"Fn::Or": [{"Condition": "D"}, {"Condition": "E"}]}]
    }
    assert loaded["b64"] == {"Fn::Base64": "text"}


def test_functions_read_code_dir_handler_events_and_globals(fake_template):
    # Given the fake template (Globals.Function, an Api with a key by default, an SQS function)
    # When its functions are read
    specs = {spec.logical_id: spec for spec in cloud.functions(fake_template)}
    # Then code folder and handler come from Metadata.Dockerfile and ImageConfig.Command
    echo, worker = specs["EchoFunction"], specs["WorkerFunction"]
    assert echo.code_dir == HERE / "fake_service"
    assert (echo.handler_module, echo.handler_attr) == ("app", "lambda_handler")
    assert (worker.handler_module, worker.handler_attr) == ("worker", "lambda_handler")
    # and Globals merge: Timeout overridden, MemorySize from a mapping, environment merged
    assert (echo.timeout_s, worker.timeout_s, echo.memory_mb) == (10, 30, 256)
    assert worker.environment["WORKER_ONLY"] == "yes" and "WORKER_ONLY" not in echo.environment
    assert worker.environment["TIER_LABEL"] == "small-tier"
    # and Api events carry method, path and the Api's default ApiKeyRequired unless overridden
    routes = {(r.method, r.path): r.api_key_required for r in echo.api_routes}
    assert routes[("GET", "/health")] is False
    assert routes[("GET", "/items/{item_id}")] is True
    assert routes[("ANY", "/files/{key+}")] is True
    # and the SQS event names its queue, batch size and response types
    (source,) = worker.sqs_sources
    assert (source.queue, source.batch_size, source.report_batch_item_failures) == ("WorkQueue", 5, True)


def test_create_resources_follows_the_template_and_is_idempotent(fake_template, endpoint):
    # Given a moto endpoint
    prefix = "t-create"
    # When the fake template's resources are created twice
    first = cloud.create_resources(fake_template, endpoint, prefix=prefix)
    second = cloud.create_resources(fake_template, endpoint, prefix=prefix)
    # Then the second run finds the same resources
    assert first == second
    assert set(first) == {"WorkTable", "WorkBucket", "WorkQueue", "WorkDLQ"}
    # and the table has the template's keys and index
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    table = dynamodb.describe_table(TableName=first["WorkTable"].name)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "item_id", "KeyType": "HASH"}]
    assert table["GlobalSecondaryIndexes"][0]["IndexName"] == "by-kind"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # and the queue has its visibility timeout and a redrive policy to the DLQ's ARN
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    attributes = sqs.get_queue_attributes(QueueUrl=first["WorkQueue"].url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "180"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": first["WorkDLQ"].arn,
        "maxReceiveCount": 2,
    }
    # and the bucket exists, versioned
    s3 = boto3.client("s3", endpoint_url=endpoint)
    assert s3.get_bucket_versioning(Bucket=first["WorkBucket"].name)["Status"] == "Enabled"
    assert first["WorkBucket"].name == "t-create-work-bucket"


def test_resolve_evaluates_intrinsics_against_created_resources(fake_template, endpoint):
    # Given created resources
    physical = cloud.create_resources(fake_template, endpoint, prefix="t-resolve")
    queue, dlq = physical["WorkQueue"], physical["WorkDLQ"]
    # When function environments and single intrinsics are resolved
    (echo,) = [s for s in cloud.functions(fake_template, physical) if s.logical_id == "EchoFunction"]
    # Then Ref of a queue is its URL, of a table its name; GetAtt gives name and ARN; Sub and Join work
    assert echo.environment["WORK_QUEUE_URL"] == queue.url
    assert echo.environment["WORK_TABLE"] == "t-resolve-work-table"
    assert echo.environment["WORK_DLQ_NAME"] == dlq.name
    assert echo.environment["DLQ_ARN"] == dlq.arn
    assert echo.environment["STAGE_LABEL"] == "t-resolve-test-us-east-1"
    assert cloud.resolve({"Fn::GetAtt": ["WorkQueue", "QueueUrl"]}, physical) == queue.url
    assert cloud.resolve({"Fn::Sub": "${WorkDLQ.Arn}/x/${!Literal}"}, physical) == f"{dlq.arn}/x/${{Literal}}"
    assert cloud.resolve({"Fn::If": ["IsBig", 1, 2]}, physical, fake_template, {"Tier": "big"}) == 1
    assert cloud.resolve({"a": {"Ref": "AWS::NoValue"}, "b": [1, {"Ref": "AWS::NoValue"}]}, physical) == {"b": [1]}
    with pytest.raises(cloud.UnresolvableReference):
        cloud.resolve({"Ref": "Nowhere"}, physical, fake_template)


def test_the_real_template_serves_every_route_of_the_layout(template):
    # Given template.yaml
    # When its functions are read
    specs = {spec.logical_id: spec for spec in cloud.functions(template)}
    routes = {(r.method, r.path): r.function for s in specs.values() for r in s.api_routes}
    # Then docs/LAYOUT.md's functions, folders, handlers and routes are all there (others may be added)
    expected = {
        ("GET", "/health"): "MetaFunction",
        ("GET", "/api/ml/openapi.json"): "MetaFunction",
        ("POST", "/api/ml/style-profile/create"): "ProfileFunction",
        ("POST", "/api/ml/style-profile/update"): "ProfileFunction",
        ("GET", "/api/ml/style-profile/{user_id}"): "ProfileFunction",
        ("POST", "/api/ml/prompt/optimize"): "OptimizeFunction",
        ("POST", "/api/ml/validate"): "ValidateFunction",
        ("POST", "/api/ml/select/diverse"): "SelectFunction",
        ("POST", "/api/ml/feedback/submit"): "FeedbackFunction",
        ("POST", "/api/ml/rlhf/train"): "FeedbackFunction",
        ("GET", "/api/ml/rlhf/model/{user_id}"): "FeedbackFunction",
    }
    assert expected.items() <= routes.items()
    assert (
        specs["RetrainFunction"].code_dir
        == specs["FeedbackFunction"].code_dir
        == cloud.REPO_ROOT / "functions/feedback"
    )
    assert specs["RetrainFunction"].handler_module == "retrain"
    (source,) = specs["RetrainFunction"].sqs_sources
    assert source.queue == "RetrainQueue" and source.report_batch_item_failures


def test_aws_env_holds_the_real_templates_resources(aws_env):
    # Given the aws_env fixture on template.yaml
    # When its tables and queues are described
    dynamodb = aws_env.client("dynamodb")
    feedback = dynamodb.describe_table(TableName=aws_env.environment["FEEDBACK_TABLE"])["Table"]
    profiles = dynamodb.describe_table(TableName=aws_env.environment["PROFILES_TABLE"])["Table"]
    redrive = aws_env.client("sqs").get_queue_attributes(
        QueueUrl=aws_env.environment["RETRAIN_QUEUE_URL"], AttributeNames=["RedrivePolicy"]
    )["Attributes"]["RedrivePolicy"]
    # Then they follow docs/LAYOUT.md, and the environment names them
    assert [k["AttributeName"] for k in profiles["KeySchema"]] == ["user_id"]
    assert [k["AttributeName"] for k in feedback["KeySchema"]] == ["user_id", "event_key"]
    assert json.loads(redrive)["deadLetterTargetArn"] == aws_env.physical["RetrainDLQ"].arn
    aws_env.client("s3").head_bucket(Bucket=aws_env.environment["ARTIFACTS_BUCKET"])
