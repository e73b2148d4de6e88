"""The shared fixtures of tests/conftest.py, run on fake_template.yaml instead of template.yaml."""

from __future__ import annotations

import json
import os
from pathlib import Path

import boto3
import pytest

from local import cloud
from local.events import sqs_event

FAKE_TEMPLATE = Path(__file__).resolve().parent / "fake_template.yaml"


@pytest.fixture(scope="module")
def template():
    return cloud.load_template(FAKE_TEMPLATE)


def test_aws_env_points_boto3_at_moto_with_the_templates_resources(aws_env):
    # Given the aws_env fixture
    # When boto3 is used the way handlers use it (no endpoint, no region given)
    tables = boto3.client("dynamodb").list_tables()["TableNames"]
    # Then it reaches moto, where the template's resources are, named by the environment
    assert os.environ["AWS_ENDPOINT_URL"] == aws_env.endpoint
    assert os.environ["WORK_TABLE"] in tables
    assert os.environ["WORK_QUEUE_URL"] == aws_env.physical["WorkQueue"].url
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"


def test_aws_env_starts_every_test_empty(aws_env):
    # Given a fresh aws_env, after the previous tests wrote to it
    table = boto3.resource("dynamodb").Table(os.environ["WORK_TABLE"])
    assert table.scan()["Items"] == []
    # When this test writes
    table.put_item(Item={"item_id": "left-behind", "kind": "x"})
    # Then only this test sees it (the next test checks the table is empty again)
    assert len(table.scan()["Items"]) == 1


def test_aws_env_starts_every_test_empty_again(aws_env):
    assert boto3.resource("dynamodb").Table(os.environ["WORK_TABLE"]).scan()["Items"] == []


def test_invoke_calls_the_handler_the_template_names(invoke, api_event, lambda_context):
    # Given an API Gateway event for a route of the template
    event = api_event("GET", "/items/u-1?x=1", headers={"x-api-key": "k"})
    # When the function is invoked
    result = invoke("EchoFunction", event, lambda_context)
    # Then its handler got the event with path parameters
    assert result["statusCode"] == 200
    echoed = json.loads(result["body"])
    assert echoed["event"]["pathParameters"] == {"item_id": "u-1"}
    assert echoed["context"]["function_name"] == lambda_context.function_name


def test_invoke_runs_an_sqs_function_against_moto(aws_env, invoke):
    # Given an SQS event for the worker
    event = sqs_event(
        [{"MessageId": "m1", "ReceiptHandle": "r", "Body": json.dumps({"id": "x1"})}],
        aws_env.physical["WorkQueue"].arn,
    )
    # When it is invoked (with the function's own environment)
    result = invoke("WorkerFunction", event)
    # Then it wrote to the template's table and reported no failure
    assert result == {"batchItemFailures": []}
    assert os.environ["WORKER_ONLY"] == "yes"
    item = aws_env.resource("dynamodb").Table(os.environ["WORK_TABLE"]).get_item(Key={"item_id": "x1"})["Item"]
    assert item["receive_count"] == "1"
