"""Every DynamoDB, S3 and SQS call of the service, behind one small interface.

``ClientError`` never leaves this module: a lost conditional write becomes
:class:`~designer_ml.errors.VersionConflict` (callers re-read and retry), a missing object
``None``, anything else :class:`~designer_ml.errors.StorageUnavailable`. Items are stored with
plain numbers (floats go in as DynamoDB numbers, numbers come back as ``int``/``float``).
Clients are botocore's, created once per process on first use, and honour ``AWS_ENDPOINT_URL``
(moto locally).

Why botocore and not boto3: importing boto3 imports s3transfer, and a boto3 ``Session`` adds
its resource loaders; together ~15 ms of every cold start for nothing the service calls
(bench/bench_coldstart.py). The clients are the same botocore clients boto3 would return.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import marshal
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from functools import lru_cache
from pathlib import Path
from typing import Any

import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from designer_ml.errors import StorageRefused, StorageUnavailable, VersionConflict
from designer_ml.observability import logger
from designer_ml.settings import Settings, get_settings

_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=10)
_SERVICES = ("dynamodb", "s3", "sqs")
# DynamoDB's number type: 38 significant digits, exponent -130..125 (boto3's DYNAMODB_CONTEXT).
_NUMBERS = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])


def _number(value: int | float | Decimal) -> str:
    if isinstance(value, float):
        # DynamoDB's smallest magnitude is 1e-130: anything smaller is stored as the 0 it rounds to
        # (ValidationException otherwise, for e.g. a quality_score of 2e-134).
        # float(): numpy 2 floats repr as "np.float64(...)".
        value = Decimal(repr(float(value))) if abs(value) >= 1e-130 or value == 0.0 else Decimal(0)
    if isinstance(value, Decimal) and not value.is_finite():
        raise TypeError("Infinity and NaN not supported")
    return str(_NUMBERS.create_decimal(value))


def serialize(value: Any) -> dict[str, Any]:
    """Python value -> DynamoDB attribute value (``{"S": ...}``, ``{"N": ...}``, ``{"M": ...}`` ...).

    Own code rather than boto3's ``TypeSerializer`` because that module imports boto3 (see the
    module docstring); the rules are boto3's, plus floats, which are stored as their ``repr``.
    """
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": _number(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): serialize(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [serialize(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        if all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        if all(isinstance(v, (bytes, bytearray)) for v in value):
            return {"BS": [bytes(v) for v in value]}
        if all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in value):
            return {"NS": [_number(v) for v in value]}
    raise TypeError(f"Unsupported type {type(value)!r} for value {value!r}")


def _plain_number(text: str) -> int | float:
    try:
        return int(text)  # most stored numbers are counters, versions and timestamps
    except ValueError:
        number = Decimal(text)
        return int(number) if number == number.to_integral_value() else float(number)


def deserialize(attribute: Mapping[str, Any]) -> Any:
    """DynamoDB attribute value -> plain Python (numbers as int or float, sets as lists)."""
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return _plain_number(value)
    if kind == "M":
        return {k: deserialize(v) for k, v in value.items()}
    if kind == "L":
        return [deserialize(v) for v in value]
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(value)
    if kind == "SS":
        return list(value)
    if kind == "NS":
        return [_plain_number(v) for v in value]
    if kind == "BS":
        return [bytes(v) for v in value]
    raise TypeError(f"Unknown DynamoDB type {kind!r}")


def _dump(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: serialize(v) for k, v in mapping.items()}


def _load(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: deserialize(v) for k, v in mapping.items()}


def projection(paths: Sequence[str], keys: Sequence[str] = ()) -> dict[str, Any]:
    """``ProjectionExpression`` and ``ExpressionAttributeNames`` reading only ``paths`` (dotted
    attribute paths, e.g. ``reward_model.key``) and the key attributes ``keys``.

    Every name is a placeholder: ``key``, ``schema`` and ``document`` are reserved words.
    """
    names: dict[str, str] = {}
    expressions = []
    for path in dict.fromkeys([*keys, *paths]):
        parts = []
        for part in path.split("."):
            placeholder = names.setdefault(part, f"#p{len(names)}")
            parts.append(placeholder)
        expressions.append(".".join(parts))
    return {
        "ProjectionExpression": ", ".join(expressions),
        "ExpressionAttributeNames": {placeholder: name for name, placeholder in names.items()},
    }


class Table:
    """One DynamoDB table with the resource layer's call shapes, on the low-level client.

    boto3's resource layer costs ~0.1 s more of every cold start than the client (measured in
    bench/bench_coldstart.py); items are (de)serialised here (:func:`serialize`).
    """

    def __init__(self, storage: Storage, name: str):
        self._storage = storage
        self.name = name

    @property
    def _client(self) -> Any:
        return self._storage.dynamodb

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        for field in ("Key", "Item", "ExpressionAttributeValues"):
            if field in kwargs:
                kwargs[field] = _dump(kwargs[field])
        answer = getattr(self._client, operation)(TableName=self.name, **kwargs)
        if "Item" in answer:
            answer["Item"] = _load(answer["Item"])
        if "Items" in answer:
            answer["Items"] = [_load(i) for i in answer["Items"]]
        if "Attributes" in answer:
            answer["Attributes"] = _load(answer["Attributes"])
        return answer

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("get_item", **kwargs)

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("put_item", **kwargs)

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("update_item", **kwargs)

    def delete_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("delete_item", **kwargs)

    def query(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("query", **kwargs)


# botocore's data files as this package last decoded them, in marshal's format: the clients a
# cold start creates read ~4 MB of (mostly gzip'd) JSON, ~17 ms of its CPU; marshal reads the
# same data in about half of that (bench/bench_coldstart.py). The images fill this folder at
# build time (build_data_cache, in every Dockerfile), because Lambda's code folder is read-only;
# anywhere else the first process to decode a file fills it. Only this package writes here, as
# it writes its own bytecode: marshal is Python's own .pyc format.
_DATA_CACHE = Path(__file__).resolve().parent / "_botocore_data"


def _cache_file(path: str, size: int) -> Path:
    """The cache file of a botocore data file, named by what makes its content: botocore's
    version, the file's path inside botocore's data folder (not where it is installed: the images
    build in one folder and run from another) and size; and the interpreter's (marshal's format)."""
    inside = path.replace(os.sep, "/").rsplit("/botocore/data/", 1)[-1]
    key = f"{botocore.__version__}:{inside}:{size}:{sys.version}"
    return _DATA_CACHE / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".marshal")


def _remember(cached: Path, data: Any) -> None:
    """Write a cache file when the folder can be written; atomically, for concurrent processes."""
    try:
        cached.parent.mkdir(exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
        partial.write_bytes(marshal.dumps(data))
        os.replace(partial, cached)
    except (OSError, ValueError):
        pass


class _PlainJSONFileLoader(botocore.loaders.JSONFileLoader):
    """botocore's model files, decoded into plain dicts, through the marshal cache.

    botocore decodes them with ``object_pairs_hook=OrderedDict``, which makes decoding twice as
    slow; plain dicts keep insertion order too, and botocore only reads these mappings. A file
    whose cache entry is missing or unreadable is decoded from JSON as before.
    """

    def load_file(self, file_path: str) -> Any:
        for extension, opener in ((".json", open), (".json.gz", gzip.open)):
            path = file_path + extension
            try:
                size = os.stat(path).st_size
            except OSError:
                continue
            cached = _cache_file(path, size)
            try:
                # One read, then loads: marshal.load on the file object reads in small pieces and
                # loses most of the gain.
                return marshal.loads(cached.read_bytes())
            except (OSError, EOFError, ValueError, TypeError):
                pass
            with opener(path, "rb") as fh:
                data = json.loads(fh.read())
            _remember(cached, data)
            return data
        return None


def build_data_cache() -> list[Path]:
    """Decode every botocore data file the service's clients read into the cache (image build)."""
    session = new_session()
    for service in _SERVICES:
        session.create_client(service, region_name=session.get_config_variable("region") or "us-east-1")
    return sorted(_DATA_CACHE.glob("*.marshal"))


class _KnownServicesLoader(botocore.loaders.Loader):
    """botocore's data loader, told which services exist instead of listing its data folder.

    Before loading a model botocore checks the service's name against every service directory
    it ships (~430, listed and stat'ed once per model type: ~15 ms of a cold start); the
    service calls three.
    """

    def list_available_services(self, type_name: str) -> list[str]:
        return sorted(_SERVICES)


def new_session() -> botocore.session.Session:
    """A botocore session whose data loader knows the service's three services and reads plain dicts."""
    session = botocore.session.Session()
    paths = session.get_config_variable("data_path") or ""
    extra = [os.path.expanduser(p) for p in paths.split(os.pathsep) if p]
    loader = _KnownServicesLoader(extra_search_paths=extra, file_loader=_PlainJSONFileLoader())
    session.register_component("data_loader", loader)
    return session


class Storage:
    """The service's tables, bucket and queue.

    Parameters
    ----------
    settings : Settings
        Table, bucket and queue names.
    session : botocore.session.Session, optional
        Session to build clients from (default: :func:`new_session`).
    """

    def __init__(self, settings: Settings, session: botocore.session.Session | None = None):
        self.settings = settings
        self._session = session or new_session()
        self._clients: dict[str, Any] = {}
        # Held while a client is created: a request's threads (optimize reads its style and
        # reward models at once) may ask for the same one; botocore clients are thread-safe once
        # built, their session is not.
        self._clients_lock = threading.Lock()

    # -- clients (created once, on first use) ----------------------------------------------
    def _client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            with self._clients_lock:
                client = self._clients.get(service)
                if client is None:
                    client = self._clients[service] = self._session.create_client(service, config=_CONFIG)
        return client

    @property
    def dynamodb(self) -> Any:
        return self._client("dynamodb")

    @property
    def s3(self) -> Any:
        return self._client("s3")

    @property
    def sqs(self) -> Any:
        return self._client("sqs")

    def table(self, name: str) -> Table:
        return Table(self, name)

    @property
    def profiles(self) -> Any:
        return self.table(self.settings.profiles_table)

    @property
    def feedback(self) -> Any:
        return self.table(self.settings.feedback_table)

    # -- DynamoDB ------------------------------------------------------------------------------
    def get_item(
        self,
        table: Any,
        key: Mapping[str, Any],
        consistent: bool = True,
        attributes: Sequence[str] | None = None,
    ) -> dict[str, Any] | None:
        """The item, or None. ``attributes``: read only these (dotted) paths, as :func:`projection`
        (an item holding none of them reads as empty)."""
        extra = projection(attributes) if attributes else {}
        try:
            item = table.get_item(Key=dict(key), ConsistentRead=consistent, **extra).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable("read", table.name, exc) from exc
        return item

    def get_items(
        self,
        requests: Sequence[tuple[Any, Mapping[str, Any]]],
        consistent: bool = True,
        attributes: Mapping[str, Sequence[str]] | None = None,
    ) -> list[dict[str, Any] | None]:
        """Several items, of one or more tables, in one BatchGetItem round trip.

        ``requests``: (table, key) pairs, at most 100 distinct keys. Returns the items in the
        order asked (None where there is no item). Keys DynamoDB leaves unprocessed (throttling,
        the 16 MB answer limit) are asked again, then one by one. ``attributes``: per table name,
        read only these paths of its items (and their keys), as :func:`get_item`.
        """
        attributes = attributes or {}
        asked: dict[tuple[str, tuple[tuple[str, Any], ...]], dict[str, Any] | None] = {}
        by_table: dict[str, list[dict[str, Any]]] = {}
        tables = {table.name: table for table, _ in requests}
        for table, key in requests:
            ident = (table.name, tuple(sorted(key.items())))
            if ident not in asked:
                asked[ident] = None
                by_table.setdefault(table.name, []).append(dict(key))
        if len(asked) > 100:
            raise ValueError(f"get_items: {len(asked)} keys, BatchGetItem takes at most 100")
        pending = {
            name: {
                "Keys": [_dump(k) for k in keys],
                "ConsistentRead": consistent,
                **(projection(attributes[name], list(keys[0])) if attributes.get(name) else {}),
            }
            for name, keys in by_table.items()
        }
        for attempt in range(3):
            try:
                answer = self.dynamodb.batch_get_item(RequestItems=pending)
            except (ClientError, BotoCoreError) as exc:
                raise _unavailable("read", ", ".join(sorted(pending)), exc) from exc
            for name, items in answer.get("Responses", {}).items():
                names = list(by_table[name][0])
                for raw in items:
                    item = _load(raw)
                    asked[(name, tuple(sorted((k, item.get(k)) for k in names)))] = item
            pending = answer.get("UnprocessedKeys") or {}
            if not pending:
                break
            time.sleep(0.01 * 2**attempt)
        for name, request in pending.items():
            for raw_key in request.get("Keys", []):
                key = _load(raw_key)
                asked[(name, tuple(sorted(key.items())))] = self.get_item(
                    tables[name], key, consistent, attributes.get(name)
                )
        return [asked[(table.name, tuple(sorted(key.items())))] for table, key in requests]

    def put_item(self, table: Any, item: Mapping[str, Any], only_if_absent: str | None = None) -> bool:
        """Put an item; with ``only_if_absent`` (a key attribute) return False if it exists."""
        kwargs: dict[str, Any] = {"Item": dict(item)}
        if only_if_absent:
            kwargs["ConditionExpression"] = "attribute_not_exists(#k)"
            kwargs["ExpressionAttributeNames"] = {"#k": only_if_absent}
        return _conditional_write(table, "put_item", kwargs) is not None

    def put_versioned(
        self,
        table: Any,
        key: Mapping[str, Any],
        attributes: Mapping[str, Any],
        expected_version: int | None,
        version_attribute: str = "version",
    ) -> int:
        """Set ``attributes`` and bump the version, only if the stored version is the expected one.

        ``expected_version=None`` means the item must not exist yet. Attributes not named are
        left as they are (other stages keep their own attributes on the same item). Returns the
        new version; raises :class:`VersionConflict` when another writer got there first.
        """
        new_version = (expected_version or 0) + 1
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = dict(zip((f":a{i}" for i in range(len(attributes))), attributes.values(), strict=True))
        sets = [f"#a{i} = :a{i}" for i in range(len(attributes))] + ["#v = :new"]
        names["#v"] = version_attribute
        values[":new"] = new_version
        if expected_version is None:
            condition = "attribute_not_exists(#v)"
        else:
            condition = "#v = :old"
            values[":old"] = expected_version
        kwargs = {
            "Key": dict(key),
            "UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if _conditional_write(table, "update_item", kwargs) is None:
            raise VersionConflict(f"{table.name} {dict(key)}: version moved on")
        return new_version

    def set_attributes(
        self, table: Any, key: Mapping[str, Any], attributes: Mapping[str, Any], must_exist: str | None = None
    ) -> bool:
        """Set some attributes of an item without touching its version (e.g. coverage gaps).

        With ``must_exist`` (a key attribute), do nothing and return False when there is no item.
        """
        names = {f"#a{i}": name for i, name in enumerate(attributes)}
        values = dict(zip((f":a{i}" for i in range(len(attributes))), attributes.values(), strict=True))
        kwargs: dict[str, Any] = {
            "Key": dict(key),
            "UpdateExpression": "SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(attributes))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if must_exist:
            kwargs["ConditionExpression"] = "attribute_exists(#k)"
            names["#k"] = must_exist
        return _conditional_write(table, "update_item", kwargs) is not None

    def update_expression(
        self,
        table: Any,
        key: Mapping[str, Any],
        expression: str,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        condition: str | None = None,
        return_values: str = "NONE",
    ) -> dict[str, Any] | None:
        """Apply an UpdateExpression that the helpers above cannot express (list appends,
        REMOVE, ADD), under an optional ConditionExpression.

        Returns None when the condition failed, else the attributes ``return_values`` asks
        for (e.g. ``"UPDATED_NEW"``; an empty dict for ``"NONE"``).
        """
        kwargs: dict[str, Any] = {"Key": dict(key), "UpdateExpression": expression, "ReturnValues": return_values}
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        if values:
            kwargs["ExpressionAttributeValues"] = dict(values)
        if condition:
            kwargs["ConditionExpression"] = condition
        answer = _conditional_write(table, "update_item", kwargs)
        return None if answer is None else answer.get("Attributes") or {}

    def query_user(self, table: Any, user_id: str) -> list[dict[str, Any]]:
        """Every item of one user (all pages)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "#u = :u",
            "ExpressionAttributeNames": {"#u": "user_id"},
            "ExpressionAttributeValues": {":u": user_id},
            "ConsistentRead": True,
        }
        try:
            while True:
                page = table.query(**kwargs)
                items.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return items
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable("read", table.name, exc) from exc

    def delete_item(self, table: Any, key: Mapping[str, Any]) -> None:
        try:
            table.delete_item(Key=dict(key))
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable("delete", table.name, exc) from exc

    # -- S3 ------------------------------------------------------------------------------------
    def put_bytes(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        try:
            self.s3.put_object(
                Bucket=self.settings.artifacts_bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                Metadata={k: str(v) for k, v in (metadata or {}).items()},
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable("write", f"s3://{self.settings.artifacts_bucket}/{key}", exc) from exc

    def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""
        try:
            return self.s3.get_object(Bucket=self.settings.artifacts_bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise _unavailable("read", f"s3://{self.settings.artifacts_bucket}/{key}", exc) from exc
        except BotoCoreError as exc:
            raise _unavailable("read", f"s3://{self.settings.artifacts_bucket}/{key}", exc) from exc

    def put_json(self, key: str, document: Any) -> None:
        self.put_bytes(key, json.dumps(document, separators=(",", ":")).encode(), "application/json")

    def get_json(self, key: str) -> Any | None:
        data = self.get_bytes(key)
        return None if data is None else json.loads(data)

    def list_keys(self, prefix: str) -> Iterator[str]:
        try:
            paginator = self.s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.settings.artifacts_bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"]
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable("list", f"s3://{self.settings.artifacts_bucket}/{prefix}", exc) from exc

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.list_keys(prefix))
        try:
            for start in range(0, len(keys), 1000):
                chunk = keys[start : start + 1000]
                self.s3.delete_objects(
                    Bucket=self.settings.artifacts_bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable("delete", f"s3://{self.settings.artifacts_bucket}/{prefix}", exc) from exc
        return len(keys)

    # -- SQS -----------------------------------------------------------------------------------
    def send_message(self, body: Mapping[str, Any], delay_seconds: int = 0) -> str:
        try:
            answer = self.sqs.send_message(
                QueueUrl=self.settings.retrain_queue_url,
                MessageBody=json.dumps(body, separators=(",", ":")),
                DelaySeconds=max(0, min(900, int(delay_seconds))),
            )
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable("send", "retrain queue", exc) from exc
        return str(answer["MessageId"])


def _conditional_write(table: Table, operation: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """One conditional write (``put_item``/``update_item``): its answer, or None when its
    condition failed; any other failure is raised as :func:`_unavailable` says."""
    try:
        return getattr(table, operation)(**kwargs)
    except ClientError as exc:
        if _is_conditional(exc):
            return None
        raise _unavailable("write", table.name, exc) from exc
    except BotoCoreError as exc:
        raise _unavailable("write", table.name, exc) from exc


def _is_conditional(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


# Error codes by which a backend says the request itself was malformed: our bug, which no
# retry mends. Everything else (throttling, 5xx, connection errors, and also a missing table,
# bucket or queue, which a deploy in progress or a restored stack mends) is "unavailable".
_REFUSED_CODES = frozenset(
    {
        "InvalidArgument",
        "InvalidMessageContents",
        "InvalidParameterCombination",
        "InvalidParameterValue",
        "InvalidRequest",
        "MalformedXML",
        "MissingParameter",
        "ParamValidationError",  # botocore's own check, before anything is sent
        "SerializationException",
        "ValidationException",
    }
)


def _unavailable(action: str, where: str, exc: Exception) -> StorageUnavailable | StorageRefused:
    """The error a failed backend call becomes.

    A request the backend (or botocore, before sending it) refuses as malformed
    (``ValidationException``...) gives ``StorageRefused``, logged as an error: our bug, so the
    client gets a 500 rather than a 503 telling it to retry what can never succeed. Any other
    failure is ``StorageUnavailable`` (503, retry later).
    """
    code = type(exc).__name__ if isinstance(exc, ParamValidationError) else None
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
    if code in _REFUSED_CODES:
        logger.error("storage refused the request", extra={"action": action, "where": where, "error": str(exc)})
        return StorageRefused(f"{code}: could not {action} {where}")
    logger.warning("storage call failed", extra={"action": action, "where": where, "error": str(exc)})
    return StorageUnavailable(f"storage unavailable: could not {action} {where}; retry later")


@lru_cache(maxsize=1)
def get_storage() -> Storage:
    """The process's storage (clients created once per warm container)."""
    return Storage(get_settings())


def reset_for_tests() -> None:
    """Forget cached settings and clients (tests that change the environment call this)."""
    get_storage.cache_clear()
    get_settings.cache_clear()
