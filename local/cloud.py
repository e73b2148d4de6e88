"""template.yaml's resources, created on any AWS endpoint, and its functions, read as data.

The local server and the test fixtures both use this module, so a table's keys, a queue's
redrive policy and a function's environment are defined once: in the template.

- ``load_template`` reads template.yaml (short intrinsic tags accepted).
- ``create_resources`` creates every ``AWS::DynamoDB::Table``, ``AWS::S3::Bucket`` and
  ``AWS::SQS::Queue`` from the template's own Properties, idempotently, and returns the
  physical resources by logical id.
- ``resolve`` evaluates intrinsic functions (Ref, GetAtt, Sub, Join, If, ...) against them.
- ``functions`` describes each ``AWS::Serverless::Function`` (Globals merged): code folder,
  handler, resolved environment, Api routes and SQS event sources.

Physical names are ``{prefix}-{kebab-case logical id}`` (``designer-ml-local-profiles-table``)
whatever names the template gives, so that one prefix isolates one local stack; the
functions find them through the environment variables the template sets, as in AWS.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from local import cfn_yaml

__all__ = [
    "REPO_ROOT",
    "ApiRoute",
    "FunctionSpec",
    "Physical",
    "PhysicalResource",
    "SqsSource",
    "UnresolvableReference",
    "create_resources",
    "functions",
    "load_template",
    "merge_globals",
    "physical_name",
    "resolve",
]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PREFIX = "designer-ml-local"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's account

TABLE = "AWS::DynamoDB::Table"
BUCKET = "AWS::S3::Bucket"
QUEUE = "AWS::SQS::Queue"
FUNCTION = "AWS::Serverless::Function"
CREATED_TYPES = (TABLE, BUCKET, QUEUE)


class UnresolvableReference(ValueError):
    """An intrinsic function refers to something neither the template nor the stack defines."""


class _NoValue:
    """``AWS::NoValue``: the property or list item is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class PhysicalResource:
    """One created resource: its name, ARN and, for a queue, URL."""

    logical_id: str
    type: str
    name: str
    arn: str
    url: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """What ``!Ref`` returns: a queue's URL, otherwise the name."""
        return self.url if self.type == QUEUE and self.url else self.name

    def get_att(self, attribute: str) -> str:
        """What ``!GetAtt logical_id.attribute`` returns."""
        if attribute == "Arn":
            return self.arn
        if attribute in self.attributes:
            return self.attributes[attribute]
        raise UnresolvableReference(f"{self.logical_id} ({self.type}) has no attribute {attribute!r} locally")


class Physical(dict[str, PhysicalResource]):
    """Created resources by logical id, plus the pseudo parameters they were created with."""

    def __init__(
        self,
        resources: Mapping[str, PhysicalResource] | None = None,
        *,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        stack_name: str = DEFAULT_PREFIX,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(resources or {})
        self.region = region
        self.account_id = account_id
        self.stack_name = stack_name
        self.endpoint = endpoint


@dataclass(frozen=True)
class ApiRoute:
    """One ``Type: Api`` event: method and path served by a function."""

    function: str
    event: str
    method: str  # upper case; "ANY" matches every method
    path: str  # API Gateway resource path, e.g. /api/ml/style-profile/{user_id}
    api_key_required: bool


@dataclass(frozen=True)
class SqsSource:
    """One ``Type: SQS`` event: the event source mapping of a function."""

    function: str
    event: str
    queue: str  # logical id of the queue
    batch_size: int
    function_response_types: tuple[str, ...]
    maximum_batching_window_s: int = 0
    enabled: bool = True

    @property
    def report_batch_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.function_response_types


@dataclass(frozen=True)
class FunctionSpec:
    """An ``AWS::Serverless::Function`` with its Globals merged in."""

    logical_id: str
    code_dir: Path
    handler_module: str
    handler_attr: str
    environment: Mapping[str, str]
    timeout_s: int
    memory_mb: int
    api_routes: tuple[ApiRoute, ...]
    sqs_sources: tuple[SqsSource, ...]


def load_template(path: str | Path | None = None) -> dict[str, Any]:
    """Read a SAM template (the repository root's template.yaml by default).

    The template's own path is kept in ``template["__path__"]``: ``functions`` finds code
    folders relative to it.
    """
    template_path = Path(path) if path is not None else REPO_ROOT / "template.yaml"
    template = cfn_yaml.load_file(template_path)
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise ValueError(f"{template_path}: not a CloudFormation template (no Resources)")
    template["__path__"] = str(template_path.resolve())
    return template


def physical_name(prefix: str, logical_id: str, resource_type: str = "", fifo: bool = False) -> str:
    """The local name of a resource: ``{prefix}-{kebab-case logical id}``, valid for its type."""
    kebab = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", logical_id).lower()
    name = f"{prefix}-{kebab}"
    if resource_type == BUCKET:
        name = re.sub(r"[^a-z0-9.-]", "-", name.lower())[:63].rstrip("-.")
    elif resource_type == QUEUE:
        name = re.sub(r"[^A-Za-z0-9_-]", "-", name)[: 80 - (5 if fifo else 0)]
        if fifo:
            name += ".fifo"
    return name


def _clients_factory(session_or_endpoint: Any) -> tuple[Any, str]:
    """A ``client(service_name)`` callable and the region, from a Session, an URL or None."""
    if isinstance(session_or_endpoint, boto3.session.Session):
        session = session_or_endpoint
        region = session.region_name or DEFAULT_REGION
        return (lambda service: session.client(service, region_name=region)), region
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    endpoint = session_or_endpoint  # None: boto3 honours AWS_ENDPOINT_URL itself
    return (lambda service: boto3.client(service, region_name=region, endpoint_url=endpoint)), region


def _references(value: Any) -> set[str]:
    """Logical ids that ``value`` refers to (Ref, GetAtt, Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).partition(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                if isinstance(text, str):
                    found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!][^}]*)\}", text))
            found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def _creation_order(resources: Mapping[str, Any]) -> list[str]:
    """Logical ids of the resources to create, each after the ones it refers to (a DLQ first)."""
    wanted = {lid for lid, res in resources.items() if isinstance(res, dict) and res.get("Type") in CREATED_TYPES}
    deps: dict[str, set[str]] = {}
    for lid in wanted:
        depends_on = resources[lid].get("DependsOn") or []
        named = _references(resources[lid].get("Properties", {})) | set(
            depends_on if isinstance(depends_on, list) else [depends_on]
        )
        deps[lid] = (named & wanted) - {lid}
    order: list[str] = []
    while deps:
        ready = sorted(lid for lid, needs in deps.items() if not needs - set(order))
        if not ready:
            raise ValueError(f"circular references between {sorted(deps)}")
        for lid in ready:
            order.append(lid)
            del deps[lid]
    return order


def create_resources(
    template: Mapping[str, Any],
    session_or_endpoint: Any = None,
    prefix: str = DEFAULT_PREFIX,
    parameters: Mapping[str, Any] | None = None,
) -> Physical:
    """Create the template's tables, buckets and queues; return them by logical id.

    ``session_or_endpoint`` is a ``boto3.Session``, an endpoint URL (``http://127.0.0.1:5000``)
    or None (boto3's own configuration, ``AWS_ENDPOINT_URL`` included). Creating twice is fine:
    existing resources are reused (a queue's attributes are brought up to date).
    """
    client, region = _clients_factory(session_or_endpoint)
    endpoint = session_or_endpoint if isinstance(session_or_endpoint, str) else None
    physical = Physical(region=region, stack_name=prefix, endpoint=endpoint)
    resources = template["Resources"]
    clients: dict[str, Any] = {}

    def get_client(service: str) -> Any:
        if service not in clients:
            clients[service] = client(service)
        return clients[service]

    for logical_id in _creation_order(resources):
        resource = resources[logical_id]
        if "Condition" in resource and not _Resolver(template, physical, parameters).condition(resource["Condition"]):
            continue
        properties = _Resolver(template, physical, parameters).resolve(resource.get("Properties", {}))
        if resource["Type"] == TABLE:
            created = _create_table(get_client("dynamodb"), logical_id, properties, prefix)
        elif resource["Type"] == BUCKET:
            created = _create_bucket(get_client("s3"), logical_id, properties, prefix, region)
        else:
            created = _create_queue(get_client("sqs"), logical_id, properties, prefix)
        physical[logical_id] = created
        account = created.arn.split(":")[4] if created.arn.count(":") >= 5 else ""
        if account:
            physical.account_id = account
        logger.debug("created %s %s as %s", resource["Type"], logical_id, created.name)
    return physical


def _create_table(client: Any, logical_id: str, props: Mapping[str, Any], prefix: str) -> PhysicalResource:
    name = physical_name(prefix, logical_id, TABLE)
    billing = props.get("BillingMode", "PROVISIONED")
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
    if props.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": gsi["IndexName"],
                "KeySchema": gsi["KeySchema"],
                "Projection": gsi.get("Projection", {"ProjectionType": "ALL"}),
                **(
                    {"ProvisionedThroughput": _throughput(gsi.get("ProvisionedThroughput"))}
                    if billing == "PROVISIONED"
                    else {}
                ),
            }
            for gsi in props["GlobalSecondaryIndexes"]
        ]
    if props.get("LocalSecondaryIndexes"):
        request["LocalSecondaryIndexes"] = [
            {
                "IndexName": lsi["IndexName"],
                "KeySchema": lsi["KeySchema"],
                "Projection": lsi.get("Projection", {"ProjectionType": "ALL"}),
            }
            for lsi in props["LocalSecondaryIndexes"]
        ]
    stream = props.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    try:
        description = client.create_table(**request)["TableDescription"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
        description = client.describe_table(TableName=name)["Table"]
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ttl = props.get("TimeToLiveSpecification")
    if ttl and _truthy(ttl.get("Enabled")):
        try:
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        except ClientError as error:  # already enabled
            if error.response["Error"]["Code"] != "ValidationException":
                raise
    attributes = {}
    if description.get("LatestStreamArn"):
        attributes["StreamArn"] = description["LatestStreamArn"]
    return PhysicalResource(logical_id, TABLE, name, description["TableArn"], attributes=attributes)


def _throughput(value: Mapping[str, Any] | None) -> dict[str, int]:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }


def _create_bucket(
    client: Any, logical_id: str, props: Mapping[str, Any], prefix: str, region: str
) -> PhysicalResource:
    name = physical_name(prefix, logical_id, BUCKET)
    request: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(**request)
    except ClientError as error:
        if error.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    versioning = (props.get("VersioningConfiguration") or {}).get("Status")
    if versioning == "Enabled":
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    attributes = {
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
        "DualStackDomainName": f"{name}.s3.dualstack.{region}.amazonaws.com",
        "WebsiteURL": f"http://{name}.s3-website-{region}.amazonaws.com",
    }
    return PhysicalResource(logical_id, BUCKET, name, f"arn:aws:s3:::{name}", attributes=attributes)


_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


def _create_queue(client: Any, logical_id: str, props: Mapping[str, Any], prefix: str) -> PhysicalResource:
    # KmsMasterKeyId is left out: the key is a resource of the stack that is not created locally.
    fifo = _truthy(props.get("FifoQueue"))
    name = physical_name(prefix, logical_id, QUEUE, fifo=fifo)
    attributes: dict[str, str] = {}
    for key in _QUEUE_ATTRIBUTES:
        if key not in props:
            continue
        value = props[key]
        if isinstance(value, dict | list):
            value = json.dumps(value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        attributes[key] = str(value)
    try:
        url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
            raise
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
        mutable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
        if mutable:
            client.set_queue_attributes(QueueUrl=url, Attributes=mutable)
    arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return PhysicalResource(logical_id, QUEUE, name, arn, url=url, attributes={"QueueName": name, "QueueUrl": url})


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class _Resolver:
    """Evaluates CloudFormation intrinsic functions against a local stack."""

    def __init__(
        self,
        template: Mapping[str, Any] | None,
        physical: Mapping[str, PhysicalResource],
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        self.template = template or {}
        self.physical = physical
        self.parameters = dict(parameters or {})
        self.region = getattr(physical, "region", None) or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
        self.account_id = getattr(physical, "account_id", DEFAULT_ACCOUNT_ID)
        self.stack_name = getattr(physical, "stack_name", DEFAULT_PREFIX)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
                    return self._intrinsic(key, argument)
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
        return value

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise UnresolvableReference(f"unknown condition {name!r}")
        return bool(self.resolve(conditions[name]))

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        declared = (self.template.get("Parameters") or {}).get(name)
        if declared is not None:
            if "Default" not in declared:
                raise UnresolvableReference(f"parameter {name!r} has no Default: pass it in parameters")
            return declared["Default"]
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.physical:
            return self.physical[name].ref
        if name in (self.template.get("Resources") or {}):
            # A resource that is not created locally (a function, the Api, a role): its name.
            return physical_name(self.stack_name, name)
        raise UnresolvableReference(f"!Ref {name}: no such parameter or resource")

    def get_att(self, name: str, attribute: str) -> Any:
        if name in self.physical:
            return self.physical[name].get_att(attribute)
        resource = (self.template.get("Resources") or {}).get(name)
        if resource is None:
            raise UnresolvableReference(f"!GetAtt {name}.{attribute}: no such resource")
        service = str(resource.get("Type", "AWS::Local::X")).split("::")[1].lower()
        local_name = physical_name(self.stack_name, name)
        if attribute == "Arn":
            return f"arn:aws:{service}:{self.region}:{self.account_id}:{local_name}"
        return f"{local_name}.{attribute}"

    def _sub(self, argument: Any) -> str:
        text, variables = (argument[0], argument[1]) if isinstance(argument, list) else (argument, {})
        variables = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                resource, _, attribute = expression.partition(".")
                return str(self.get_att(resource, attribute))
            return str(self.ref(expression))

        return re.sub(r"\$\{([^}]*)\}", replace, text)

    def _intrinsic(self, key: str, argument: Any) -> Any:
        if key == "Ref":
            return self.ref(argument)
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::GetAtt":
            name, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
            return self.get_att(name, self.resolve(attribute))
        if key == "Fn::Sub":
            return self._sub(argument)
        if key == "Fn::Join":
            separator, items = argument
            return str(separator).join(str(item) for item in self.resolve(items))
        if key == "Fn::Select":
            index, items = argument
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            separator, text = argument
            return str(self.resolve(text)).split(separator)
        if key == "Fn::If":
            condition, if_true, if_false = argument
            return self.resolve(if_true if self.condition(condition) else if_false)
        if key == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.resolve(argument[0])
        if key == "Fn::And":
            return all(self.resolve(item) for item in argument)
        if key == "Fn::Or":
            return any(self.resolve(item) for item in argument)
        if key == "Fn::FindInMap":
            mapping, top, second = (self.resolve(item) for item in argument[:3])
            return self.template["Mappings"][mapping][top][second]
        if key == "Fn::GetAZs":
            return [f"{self.region}{zone}" for zone in "abc"]
        if key == "Fn::Base64":
            return base64.b64encode(str(self.resolve(argument)).encode()).decode()
        if key == "Fn::ToJsonString":
            return json.dumps(self.resolve(argument), separators=(",", ":"))
        if key == "Fn::Length":
            return len(self.resolve(argument))
        if key == "Fn::ImportValue":
            # Another stack's export: there is none locally, the export name stands in.
            return str(self.resolve(argument))
        raise UnresolvableReference(f"{key} is not supported locally")


def resolve(
    value: Any,
    physical: Mapping[str, PhysicalResource],
    template: Mapping[str, Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Any:
    """Evaluate the intrinsic functions in ``value`` against created resources.

    ``!Ref`` of a queue is its URL, of a table or bucket its name; ``!GetAtt X.Arn``,
    ``X.QueueName``, ``X.QueueUrl``, ``X.StreamArn``, a bucket's domain names; ``!Sub``,
    ``!Join``, ``!If`` (with the template's Conditions), parameters' defaults (or
    ``parameters``) and pseudo parameters are evaluated too.
    """
    return _Resolver(template, physical, parameters).resolve(value)


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals rule: maps merge (the resource wins), lists concatenate, scalars override."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value


def _environment_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def functions(
    template: Mapping[str, Any],
    physical: Mapping[str, PhysicalResource] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> list[FunctionSpec]:
    """Every ``AWS::Serverless::Function`` of the template, Globals.Function merged in.

    The environment is resolved against ``physical`` (names that were not created are
    predicted from the stack prefix).
    """
    template_dir = Path(template.get("__path__", REPO_ROOT / "template.yaml")).parent
    resources = template["Resources"]
    global_function = (template.get("Globals") or {}).get("Function") or {}
    global_api = (template.get("Globals") or {}).get("Api") or {}
    resolver = _Resolver(template, physical if physical is not None else Physical(), parameters)
    specs: list[FunctionSpec] = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != FUNCTION:
            continue
        props = merge_globals(global_function, resource.get("Properties") or {})
        metadata = resource.get("Metadata") or {}
        if props.get("PackageType", "Zip" if "Handler" in props else "Image") == "Image":
            context_dir = template_dir / str(metadata.get("DockerContext", "."))
            if "Dockerfile" not in metadata:
                raise ValueError(f"{logical_id}: an Image function needs Metadata.Dockerfile")
            code_dir = (context_dir / str(metadata["Dockerfile"])).parent
            command = (props.get("ImageConfig") or {}).get("Command") or []
            if not command:
                raise ValueError(f"{logical_id}: ImageConfig.Command names no handler")
            handler = str(command[0])
        else:
            code_dir = template_dir / str(props.get("CodeUri", "."))
            handler = str(props["Handler"])
        module, _, attribute = handler.rpartition(".")
        variables = resolver.resolve((props.get("Environment") or {}).get("Variables") or {})
        environment = {name: _environment_string(value) for name, value in variables.items()}
        routes: list[ApiRoute] = []
        sources: list[SqsSource] = []
        for event_name, event in (props.get("Events") or {}).items():
            event_props = event.get("Properties") or {}
            if event.get("Type") == "Api":
                routes.append(
                    ApiRoute(
                        function=logical_id,
                        event=event_name,
                        method=str(event_props["Method"]).upper(),
                        path=str(event_props["Path"]),
                        api_key_required=_api_key_required(event_props, resources, global_api),
                    )
                )
            elif event.get("Type") == "SQS":
                queue = event_props["Queue"]
                queue_id = queue["Fn::GetAtt"][0] if isinstance(queue, dict) and "Fn::GetAtt" in queue else None
                if queue_id is None:
                    raise ValueError(f"{logical_id}.{event_name}: Queue must be !GetAtt <Queue>.Arn locally")
                sources.append(
                    SqsSource(
                        function=logical_id,
                        event=event_name,
                        queue=queue_id,
                        batch_size=int(resolver.resolve(event_props.get("BatchSize", 10))),
                        function_response_types=tuple(resolver.resolve(event_props.get("FunctionResponseTypes") or [])),
                        maximum_batching_window_s=int(
                            resolver.resolve(event_props.get("MaximumBatchingWindowInSeconds", 0))
                        ),
                        enabled=_truthy(resolver.resolve(event_props.get("Enabled", True))),
                    )
                )
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                code_dir=code_dir.resolve(),
                handler_module=module,
                handler_attr=attribute,
                environment=environment,
                timeout_s=int(resolver.resolve(props.get("Timeout", 3))),
                memory_mb=int(resolver.resolve(props.get("MemorySize", 128))),
                api_routes=tuple(routes),
                sqs_sources=tuple(sources),
            )
        )
    return specs


def _api_key_required(
    event_props: Mapping[str, Any], resources: Mapping[str, Any], global_api: Mapping[str, Any]
) -> bool:
    """The event's Auth.ApiKeyRequired, else its Api's default (Globals.Api merged), else False."""
    auth = event_props.get("Auth") or {}
    if "ApiKeyRequired" in auth:
        return _truthy(auth["ApiKeyRequired"])
    api_props: Mapping[str, Any] = global_api
    rest_api = event_props.get("RestApiId")
    if isinstance(rest_api, dict) and rest_api.get("Ref") in resources:
        api_props = merge_globals(global_api, resources[rest_api["Ref"]].get("Properties") or {})
    return _truthy((api_props.get("Auth") or {}).get("ApiKeyRequired", False))
