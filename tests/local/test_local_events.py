"""local.events: the API Gateway and SQS events handlers receive, as Powertools reads them."""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent, SQSEvent

from local.cloud import ApiRoute
from local.events import allowed_methods, build_api_event, match_route, sqs_event

ROUTES = [
    ApiRoute("Fn", "a", "GET", "/items/{item_id}", True),
    ApiRoute("Fn", "b", "GET", "/items/special", True),
    ApiRoute("Fn", "c", "ANY", "/files/{key+}", False),
    ApiRoute("Fn", "d", "POST", "/items", True),
]


def test_literal_paths_win_over_parameters_and_greedy_parameters_take_the_rest():
    # Given routes with a literal, a parameter and a greedy parameter
    # When paths are matched
    special = match_route(ROUTES, "GET", "/items/special")
    item = match_route(ROUTES, "get", "/items/u%401")
    files = match_route(ROUTES, "DELETE", "/files/a/b/c.txt")
    # Then the literal route wins, parameters are captured, ANY takes every method
    assert special is not None and special[0].event == "b"
    assert item is not None and item[1] == {"item_id": "u%401"}
    assert files is not None and files[1] == {"key": "a/b/c.txt"}
    assert match_route(ROUTES, "PUT", "/items") is None
    assert match_route(ROUTES, "GET", "/nowhere") is None


def test_the_resource_is_chosen_before_the_method_as_api_gateway_does():
    # Given /items/special (GET) beside /items/{item_id} (GET) and /items (POST)
    routes = [*ROUTES, ApiRoute("Fn", "e", "DELETE", "/items/{item_id}", True)]
    # When the literal resource is asked for a method only the parameter resource serves
    deleted_special = match_route(routes, "DELETE", "/items/special")
    # Then there is no route (API Gateway does not fall back to a less specific resource),
    # and the methods allowed are the chosen resource's own
    assert deleted_special is None
    assert allowed_methods(routes, "/items/special") == ["GET"]
    assert allowed_methods(routes, "/items/u1") == ["DELETE", "GET"]
    assert allowed_methods(routes, "/items") == ["POST"]
    assert allowed_methods(routes, "/files/a/b") == ["ANY"]
    assert allowed_methods(routes, "/nowhere") == []


def test_api_event_has_the_rest_proxy_shape():
    # Given a request with a path parameter, repeated query keys and repeated headers
    headers = [("Content-Type", "application/json"), ("X-Tag", "a"), ("X-Tag", "b"), ("User-Agent", "t/1")]
    # When its event is built
    route, event = build_api_event(
        ROUTES, "get", "/items/u1?x=1&x=2&y=", headers=headers, body=b"", source_ip="10.0.0.9", request_id="rid-1"
    )
    # Then it is the REST (v1) proxy event, as Powertools reads it
    assert route is not None and route.event == "a"
    parsed = APIGatewayProxyEvent(event)
    assert parsed.http_method == "GET"
    assert parsed.path == "/items/u1"
    assert parsed.resource == "/items/{item_id}"
    assert parsed.path_parameters == {"item_id": "u1"}
    assert parsed.query_string_parameters == {"x": "2", "y": ""}
    assert parsed.multi_value_query_string_parameters == {"x": ["1", "2"], "y": [""]}
    assert parsed.multi_value_headers["X-Tag"] == ["a", "b"]
    assert parsed.headers["x-tag"] == "b"
    assert parsed.body is None and parsed.is_base64_encoded is False
    context = parsed.request_context
    assert (context.request_id, context.stage, context.resource_path) == ("rid-1", "local", "/items/{item_id}")
    assert context.identity.source_ip == "10.0.0.9"
    assert context.http_method == "GET"


def test_api_event_without_query_or_parameters_has_nulls_as_api_gateway_sends():
    # Given a plain POST
    _, event = build_api_event(ROUTES, "POST", "/items", body='{"a": 1}')
    # Then absent maps are null and the body is the raw text
    assert event["queryStringParameters"] is None and event["multiValueQueryStringParameters"] is None
    assert event["pathParameters"] is None
    assert event["body"] == '{"a": 1}'
    assert event["requestContext"]["requestId"]


def test_sqs_event_has_lambdas_record_shape():
    # Given messages as ReceiveMessage returns them
    messages = [
        {
            "MessageId": "m1",
            "ReceiptHandle": "r1",
            "Body": '{"user_id": "u1"}',
            "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
            "MessageAttributes": {
                "kind": {"StringValue": "retrain", "DataType": "String"},
                "blob": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
            },
        }
    ]
    # When the event is built
    event = SQSEvent(sqs_event(messages, "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1"))
    # Then Powertools reads every field Lambda sends
    (record,) = list(event.records)
    assert (record.message_id, record.receipt_handle, record.body) == ("m1", "r1", '{"user_id": "u1"}')
    assert record.attributes.approximate_receive_count == "2"
    assert record.message_attributes["kind"].string_value == "retrain"
    assert record.message_attributes["blob"].binary_value == "AAE="
    assert (record.event_source, record.event_source_arn, record.aws_region) == (
        "aws:sqs",
        "arn:aws:sqs:us-east-1:123456789012:q",
        "us-east-1",
    )
