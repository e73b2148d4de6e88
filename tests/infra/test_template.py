"""template.yaml against the contract (docs/LAYOUT.md) and the access bars of QUALITY.md.

Access bar: API key on every route but /health; each function can touch only its own
tables/prefixes; bucket private, encrypted, TLS-only; tables encrypted with point-in-time
recovery; cfn-lint clean. Plus the retrain queue's failure handling and the alarms.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from infra_contract import (
    REPO,
    TEMPLATE_PATH,
    LayoutFunction,
    api_routes,
    events,
    function_setting,
    functions,
    layout_functions,
    resources,
    template,
)

LAYOUT = layout_functions()
API_FUNCTIONS = [f for f in LAYOUT if f.routes]
UNAUTHENTICATED_ROUTES = {("GET", "/health")}


def _ids(rows: list[LayoutFunction] | tuple[LayoutFunction, ...]) -> list[str]:
    return [f.logical_id for f in rows]


def _ref(value: Any) -> str | None:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` points at, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else str(target).split(".")[0]
    return None


# Lint


def test_cfn_lint_reports_nothing():
    # Given cfn-lint from the development environment
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    executable = str(cfn_lint) if cfn_lint.exists() else shutil.which("cfn-lint")
    assert executable, "cfn-lint is not installed (it is in requirements-dev.lock)"

    # When it lints the template
    result = subprocess.run(
        [executable, "--", str(TEMPLATE_PATH)], capture_output=True, text=True, timeout=180, cwd=REPO
    )

    # Then it finds no error and no warning
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# Functions and routes


def test_template_declares_exactly_the_functions_of_the_layout():
    # Given the function table of docs/LAYOUT.md
    expected = {f.logical_id for f in LAYOUT}

    # When the template's functions are listed
    declared = set(functions())

    # Then they are the same
    assert declared == expected


@pytest.mark.parametrize("row", LAYOUT, ids=_ids(LAYOUT))
def test_function_is_an_image_built_from_its_folder(row: LayoutFunction):
    # Given a function of the layout
    resource = functions()[row.logical_id]
    props = resource["Properties"]

    # When its packaging is read
    metadata = resource.get("Metadata", {})

    # Then it is a container image whose command is the layout's handler, built from its folder
    assert props.get("PackageType") == "Image"
    assert props.get("ImageConfig", {}).get("Command") == [row.handler]
    assert metadata.get("Dockerfile") == f"{row.folder}/Dockerfile"
    assert metadata.get("DockerContext") == "."
    assert metadata.get("DockerTag")
    assert (REPO / metadata["Dockerfile"]).is_file()
    assert (REPO / row.folder / "requirements.txt").is_file()


@pytest.mark.parametrize("row", API_FUNCTIONS, ids=_ids(API_FUNCTIONS))
def test_function_serves_exactly_its_layout_routes_on_the_api(row: LayoutFunction):
    # Given a function of the layout that serves routes
    # When its Api events are read
    routes = api_routes(row.logical_id)

    # Then they are the layout's routes, all on the one REST API
    assert set(routes) == set(row.routes)
    for props in routes.values():
        assert props.get("RestApiId") == {"Ref": "Api"}


def test_no_route_is_served_twice():
    # Given every Api event of every function
    seen: dict[tuple[str, str], str] = {}
    duplicates = []

    # When they are collected by (method, path)
    for logical_id in functions():
        for route in api_routes(logical_id):
            if route in seen:
                duplicates.append((route, seen[route], logical_id))
            seen[route] = logical_id

    # Then no route has two functions
    assert not duplicates


def _defines_name(module_source: str, name: str) -> bool:
    tree = ast.parse(module_source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((alias.asname or alias.name.split(".")[0]) == name for alias in node.names):
                return True
    return False


@pytest.mark.parametrize("row", LAYOUT, ids=_ids(LAYOUT))
def test_handler_named_by_the_template_exists(row: LayoutFunction):
    # Given the handler the template's ImageConfig.Command names
    command = functions()[row.logical_id]["Properties"]["ImageConfig"]["Command"][0]
    module, _, attribute = command.rpartition(".")
    path = REPO / row.folder / (module.replace(".", "/") + ".py")

    # When its module is read (not imported: no AWS, no dependencies needed)
    assert path.is_file(), f"{path.relative_to(REPO)} does not exist"
    source = path.read_text(encoding="utf-8")

    # Then it defines the handler at module level
    assert _defines_name(source, attribute), f"{path.relative_to(REPO)} defines no {attribute}"


def test_functions_read_the_layout_environment_from_globals():
    # Given the environment every function reads (docs/LAYOUT.md)
    expected = {
        "PROFILES_TABLE": {"Ref": "ProfilesTable"},
        "FEEDBACK_TABLE": {"Ref": "FeedbackTable"},
        "ARTIFACTS_BUCKET": {"Ref": "ArtifactsBucket"},
        "RETRAIN_QUEUE_URL": {"Ref": "RetrainQueue"},
        "POWERTOOLS_SERVICE_NAME": "designer-ml",
        "POWERTOOLS_METRICS_NAMESPACE": "DesignerML",
        "LOG_LEVEL": {"Ref": "LogLevel"},
        "OPENBLAS_NUM_THREADS": "1",
    }

    # When the template's Globals are read
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]

    # Then they set exactly these, and every function is traced
    assert variables == expected
    for logical_id in functions():
        assert function_setting(logical_id, "Tracing") == "Active"
        own = functions()[logical_id]["Properties"].get("Environment", {}).get("Variables", {})
        assert not set(own) & set(expected), f"{logical_id} overrides {sorted(set(own) & set(expected))}"


def test_api_functions_answer_within_api_gateways_limit():
    # Given API Gateway's 29 s integration timeout
    for row in API_FUNCTIONS:
        # When a serving function's timeout is read
        timeout = function_setting(row.logical_id, "Timeout")

        # Then it is not longer than that
        assert timeout <= 29, row.logical_id


# API key and throttling


def test_api_requires_a_key_by_default():
    # Given the REST API
    api = resources("AWS::Serverless::Api")["Api"]["Properties"]

    # When its default auth is read
    # Then every method needs an API key unless it says otherwise
    assert api["Auth"]["ApiKeyRequired"] is True


@pytest.mark.parametrize("row", API_FUNCTIONS, ids=_ids(API_FUNCTIONS))
def test_every_route_but_health_requires_the_api_key(row: LayoutFunction):
    # Given a function's routes
    for route, props in api_routes(row.logical_id).items():
        # When the route's own auth is read
        required = props.get("Auth", {}).get("ApiKeyRequired", True)

        # Then only /health is open
        if route in UNAUTHENTICATED_ROUTES:
            assert required is False, route
        else:
            assert required is True, route


def test_usage_plan_throttles_and_caps_the_api_key():
    # Given the API's usage plan
    plan = resources("AWS::Serverless::Api")["Api"]["Properties"]["Auth"]["UsagePlan"]

    # When its limits are read
    # Then SAM creates it with an API key, a rate limit, a burst limit and a quota
    assert plan["CreateUsagePlan"] in ("PER_API", "SHARED")
    assert plan["Throttle"]["RateLimit"] and plan["Throttle"]["BurstLimit"]
    assert plan["Quota"]["Limit"] and plan["Quota"]["Period"] in ("DAY", "WEEK", "MONTH")


def test_stage_throttling_covers_the_open_health_route():
    # Given the API stage's method settings
    settings = resources("AWS::Serverless::Api")["Api"]["Properties"].get("MethodSettings", [])

    # When the catch-all setting is looked up
    catch_all = [s for s in settings if s.get("ResourcePath") == "/*" and s.get("HttpMethod") == "*"]

    # Then it throttles every method, keyed or not
    assert catch_all and catch_all[0].get("ThrottlingRateLimit") and catch_all[0].get("ThrottlingBurstLimit")


# Data at rest


@pytest.mark.parametrize(
    ("logical_id", "key_schema"),
    [
        ("ProfilesTable", [("user_id", "HASH")]),
        ("FeedbackTable", [("user_id", "HASH"), ("event_key", "RANGE")]),
    ],
)
def test_table_is_encrypted_recoverable_and_keyed_as_the_layout_says(logical_id, key_schema):
    # Given a table of the layout
    table = resources("AWS::DynamoDB::Table")[logical_id]
    props = table["Properties"]

    # When its settings are read
    keys = [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]]
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}

    # Then it is on-demand, encrypted, point-in-time recoverable, kept on stack deletion,
    # and keyed by string attributes as LAYOUT.md says
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table.get("DeletionPolicy") == "Retain"
    assert keys == key_schema
    assert all(types[name] == "S" for name, _ in key_schema)


def test_artifacts_bucket_is_private_encrypted_and_versioned():
    # Given the artifacts bucket
    props = resources("AWS::S3::Bucket")["ArtifactsBucket"]["Properties"]

    # When its settings are read
    block = props["PublicAccessBlockConfiguration"]
    rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    # Then no public access of any kind, encryption by default, versioning on
    assert all(
        block.get(flag) is True
        for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    assert rules and rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms", "aws:kms:dsse")
    assert props["VersioningConfiguration"]["Status"] == "Enabled"


def test_artifacts_bucket_refuses_requests_without_tls():
    # Given the bucket policies that apply to the artifacts bucket
    policies = [
        p["Properties"]["PolicyDocument"]
        for p in resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": "ArtifactsBucket"}
    ]

    # When their statements are searched for a TLS-only rule
    denies = [
        s
        for doc in policies
        for s in doc["Statement"]
        if s["Effect"] == "Deny"
        and s.get("Principal") in ("*", {"AWS": "*"})
        and str(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
    ]

    # Then one denies every S3 action on the bucket and on its objects
    assert denies, "no Deny on aws:SecureTransport false"
    deny = denies[0]
    actions = deny["Action"] if isinstance(deny["Action"], list) else [deny["Action"]]
    assert "s3:*" in actions
    resources_covered = deny["Resource"] if isinstance(deny["Resource"], list) else [deny["Resource"]]
    assert {"Fn::GetAtt": ["ArtifactsBucket", "Arn"]} in resources_covered
    assert {"Fn::Sub": "${ArtifactsBucket.Arn}/*"} in resources_covered


# Retrain queue


def test_retrain_queue_hands_poison_messages_to_the_dlq():
    # Given the retrain queue and its dead-letter queue
    queues = resources("AWS::SQS::Queue")
    queue, dlq = queues["RetrainQueue"]["Properties"], queues["RetrainDLQ"]["Properties"]

    # When their redrive and encryption settings are read
    redrive = queue["RedrivePolicy"]

    # Then a message that fails three times lands in the DLQ, which keeps it longer than the
    # queue would, and both queues are encrypted
    assert _ref(redrive["deadLetterTargetArn"]) == "RetrainDLQ"
    assert int(redrive["maxReceiveCount"]) == 3
    assert dlq.get("MessageRetentionPeriod", 345600) > queue.get("MessageRetentionPeriod", 345600)
    for props in (queue, dlq):
        assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId")


def test_retrain_queue_visibility_is_six_times_the_retrain_timeout():
    # Given the retrain function's timeout
    timeout = function_setting("RetrainFunction", "Timeout")

    # When the queue's visibility timeout is read
    visibility = resources("AWS::SQS::Queue")["RetrainQueue"]["Properties"]["VisibilityTimeout"]

    # Then a message in flight stays hidden for six function timeouts (Lambda's SQS guidance)
    assert visibility >= 6 * timeout


def test_retrain_function_reports_partial_batch_failures():
    # Given the retrain function's SQS event
    sqs = list(events("RetrainFunction", "SQS").values())
    assert len(sqs) == 1
    source = sqs[0]

    # When its settings are read
    # Then it polls the retrain queue in batches of 10 and retries only the failed messages
    assert source["Queue"] == {"Fn::GetAtt": ["RetrainQueue", "Arn"]}
    assert source["BatchSize"] == 10
    assert "ReportBatchItemFailures" in source["FunctionResponseTypes"]
    assert "MaximumBatchingWindowInSeconds" in source


def test_only_the_retrain_function_consumes_the_retrain_queue():
    # Given every function's SQS events
    consumers = [logical_id for logical_id in functions() if events(logical_id, "SQS")]

    # When the consumers are listed
    # Then the retrain function is the only one
    assert consumers == ["RetrainFunction"]


# Alarms


def _alarms() -> list[dict[str, Any]]:
    return [a["Properties"] for a in resources("AWS::CloudWatch::Alarm").values()]


def _fires_on_any(alarm: dict[str, Any]) -> bool:
    op, threshold = alarm["ComparisonOperator"], float(alarm["Threshold"])
    return (op == "GreaterThanThreshold" and threshold == 0) or (
        op == "GreaterThanOrEqualToThreshold" and threshold == 1
    )


def test_alarm_fires_when_the_dlq_holds_a_message():
    # Given the alarms of the template
    # When the ones on the DLQ's depth are picked
    dlq_alarms = [
        a
        for a in _alarms()
        if a["Namespace"] == "AWS/SQS"
        and a["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and any(_ref(d["Value"]) == "RetrainDLQ" for d in a.get("Dimensions", []))
    ]

    # Then one fires on a single message and notifies someone
    assert dlq_alarms and any(_fires_on_any(a) and a.get("AlarmActions") for a in dlq_alarms)


@pytest.mark.parametrize("logical_id", list(functions()))
def test_alarm_fires_when_a_function_errors(logical_id: str):
    # Given a function of the template
    # When the alarms on its Errors metric are picked
    error_alarms = [
        a
        for a in _alarms()
        if a["Namespace"] == "AWS/Lambda"
        and a["MetricName"] == "Errors"
        and any(d["Name"] == "FunctionName" and _ref(d["Value"]) == logical_id for d in a.get("Dimensions", []))
    ]

    # Then one fires on a single error and notifies someone
    assert error_alarms and any(_fires_on_any(a) and a.get("AlarmActions") for a in error_alarms)


# Least privilege

READ, WRITE = "read", "write"
R, W, RW = frozenset({READ}), frozenset({WRITE}), frozenset({READ, WRITE})

# What each function may touch: a table or queue by logical id, or "ArtifactsBucket:<key pattern>".
EXPECTED_GRANTS: dict[str, dict[str, frozenset[str]]] = {
    "MetaFunction": {},
    "ProfileFunction": {
        "ProfilesTable": RW,
        "ArtifactsBucket:records/*": RW,
        "ArtifactsBucket:models/*/style/*": RW,
    },
    "OptimizeFunction": {"ProfilesTable": R, "FeedbackTable": R, "ArtifactsBucket:models/*": R},
    "ValidateFunction": {"ProfilesTable": R, "ArtifactsBucket:models/*": R},
    # Select stores coverage gaps on the profile item.
    "SelectFunction": {"ProfilesTable": RW, "ArtifactsBucket:models/*": R},
    # Submit writes the event and the designer's feedback state (both in FeedbackTable); the
    # profile item is only read (GET /rlhf/model).
    "FeedbackFunction": {
        "FeedbackTable": RW,
        "ProfilesTable": R,
        "RetrainQueue": W,
        "ArtifactsBucket:models/*": R,
    },
    # Export reads everything of a user; erasure deletes it.
    "UsersFunction": {
        "ProfilesTable": RW,
        "FeedbackTable": RW,
        "ArtifactsBucket:records/*": RW,
        "ArtifactsBucket:models/*": RW,
        # erasure rewrites the population reward model without the designer
        "ArtifactsBucket:models/_population/*": frozenset({"write"}),
    },
    # Polling the retrain queue comes with the SQS event, not from these policies.
    "RetrainFunction": {"FeedbackTable": RW, "ProfilesTable": RW, "ArtifactsBucket:models/*": RW},
}

# SAM policy templates the template may use: (parameter naming the resource, access they grant).
SAM_POLICY_TEMPLATES: dict[str, tuple[str, frozenset[str]]] = {
    "DynamoDBReadPolicy": ("TableName", R),
    "DynamoDBWritePolicy": ("TableName", W),
    "DynamoDBCrudPolicy": ("TableName", RW),
    "SQSSendMessagePolicy": ("QueueName", W),
    "SQSPollerPolicy": ("QueueName", RW),
    # Whole-bucket templates: they can never match a prefix grant, so using one fails the test.
    "S3ReadPolicy": ("BucketName", R),
    "S3WritePolicy": ("BucketName", W),
    "S3CrudPolicy": ("BucketName", RW),
}

_READ_VERBS = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "ConditionCheck", "Head")
_ARN_SUB = re.compile(r"^\$\{(\w+)\.Arn\}(?:/(.*))?$")


def _access(action: str) -> str:
    service, _, verb = action.partition(":")
    assert service and verb and "*" not in action, f"wildcard or malformed action {action!r}"
    return READ if verb.startswith(_READ_VERBS) else WRITE


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statement_targets(statement: dict[str, Any]) -> list[str]:
    targets = []
    for resource in _as_list(statement["Resource"]):
        ref = _ref(resource)
        if ref is None and isinstance(resource, dict) and "Fn::Sub" in resource:
            sub = resource["Fn::Sub"]
            match = _ARN_SUB.match(sub if isinstance(sub, str) else sub[0])
            assert match, f"unscoped resource {resource!r}"
            ref, suffix = match.group(1), match.group(2)
            if suffix and not suffix.startswith("index/"):
                ref = f"{ref}:{suffix}"
        assert ref is not None, f"unscoped resource {resource!r}"
        if ref == "ArtifactsBucket":
            # Bucket-level actions (ListBucket): scoped by the s3:prefix condition or whole bucket.
            prefixes = []
            for operator in ("StringLike", "StringEquals"):
                prefixes += _as_list(statement.get("Condition", {}).get(operator, {}).get("s3:prefix", []))
            targets += [f"ArtifactsBucket:{p}" for p in prefixes] or ["ArtifactsBucket:*"]
        else:
            targets.append(ref)
    return targets


def grants(logical_id: str) -> dict[str, frozenset[str]]:
    """{target: access} that one function's Policies grant."""
    found: dict[str, set[str]] = {}
    for policy in function_setting(logical_id, "Policies") or []:
        assert isinstance(policy, dict), f"managed policy {policy!r}: grants more than one function needs"
        for name, value in policy.items():
            if name == "Statement":
                for statement in value:
                    assert (
                        statement["Effect"] == "Allow"
                        and "NotAction" not in statement
                        and "NotResource" not in statement
                    )
                    access = {_access(a) for a in _as_list(statement["Action"])}
                    for target in _statement_targets(statement):
                        found.setdefault(target, set()).update(access)
            else:
                assert name in SAM_POLICY_TEMPLATES, f"policy template {name} is not reviewed by this test"
                parameter, access = SAM_POLICY_TEMPLATES[name]
                target = _ref(value[parameter])
                assert target, f"{name} on an unscoped {parameter}"
                if parameter == "BucketName":
                    target = f"{target}:*"
                found.setdefault(target, set()).update(access)
    return {target: frozenset(access) for target, access in found.items()}


def test_every_function_has_a_reviewed_grant():
    # Given the functions of the template
    # When they are compared with the reviewed grants
    # Then none is missing from the review
    assert set(functions()) == set(EXPECTED_GRANTS)


@pytest.mark.parametrize("logical_id", list(EXPECTED_GRANTS))
def test_function_can_touch_only_its_own_tables_prefixes_and_queue(logical_id: str):
    # Given a function's reviewed grant
    expected = EXPECTED_GRANTS[logical_id]

    # When its policies are reduced to (resource, read/write)
    granted = grants(logical_id)

    # Then they grant exactly that: nothing more, and nothing it needs is missing
    assert granted == expected


@pytest.mark.parametrize("logical_id", list(functions()))
def test_function_has_its_own_role(logical_id: str):
    # Given a function
    props = functions()[logical_id]["Properties"]

    # When its role is read
    # Then SAM builds one role per function from its own policies (no shared role)
    assert "Role" not in props
    assert function_setting(logical_id, "Role") is None


def test_meta_function_has_no_policies():
    # Given the meta function (liveness and the OpenAPI document)
    # When its policies are read
    # Then it has none: it touches no data
    assert not functions()["MetaFunction"]["Properties"].get("Policies")


@pytest.mark.parametrize("logical_id", ["OptimizeFunction", "ValidateFunction"])
def test_read_only_functions_cannot_write(logical_id: str):
    # Given a function that only reads
    # When its grants are read
    granted = grants(logical_id)

    # Then none allows a write
    assert granted and all(access == R for access in granted.values())


# Outputs


def test_outputs_give_the_api_url_key_and_resource_names():
    # Given the template's outputs
    outputs = template()["Outputs"]

    # When the ones a deployer needs are read
    # Then the URL points at the stage, the key id at the usage plan's key, and names are there
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/${Stage}/"
    }
    assert outputs["ApiKeyId"]["Value"] == {"Ref": "ApiApiKey"}
    named = {_ref(o["Value"]) for o in outputs.values()}
    assert {"ProfilesTable", "FeedbackTable", "ArtifactsBucket", "RetrainQueue", "RetrainDLQ"} <= named
