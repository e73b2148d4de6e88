"""Local data across restarts of ``make run``: a snapshot of the tables and the bucket in one file.

Why not moto's own recorder (``MOTO_ENABLE_RECORDING``, ``/moto-api/recorder/replay-recording``):
it logs every request, reads included, and replays them all in order. The SQS poller's long
poll alone adds a line a second (a day of idle server replays for a day), and a replayed
``DeleteMessage`` carries the old receipt handle, which the new queue does not know: consumed
retrain messages come back after every restart. moto server has no other persistence.

What is kept: every item of every table and the current version of every object of every
bucket the template defines, by logical id (so a changed stack prefix still finds them).
What is not: queue messages (retrain requests; a designer's next feedback or ``rlhf/train``
queues a lost one again) and old object versions. The file is written on a clean stop
(Ctrl-C, SIGTERM) and read once at start, before the first request.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from local import cloud

FORMAT = 1


def _encode(value: Any) -> Any:
    # DynamoDB JSON is JSON except binary attributes (B, BS): carried as base64 text.
    if isinstance(value, bytes | bytearray):
        return {"__base64__": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, Mapping):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__base64__"}:
            return base64.b64decode(value["__base64__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def snapshot(client: Callable[[str], Any], physical: Mapping[str, cloud.PhysicalResource]) -> dict[str, Any]:
    """Every table's items and every bucket's current objects, by logical id.

    ``client(service)`` returns a boto3 client of the local backend.
    """
    dynamodb, s3 = client("dynamodb"), client("s3")
    tables: dict[str, list[Any]] = {}
    buckets: dict[str, list[Any]] = {}
    for logical_id, resource in physical.items():
        if resource.type == cloud.TABLE:
            items: list[Any] = []
            for page in dynamodb.get_paginator("scan").paginate(TableName=resource.name, ConsistentRead=True):
                items.extend(page.get("Items", []))
            tables[logical_id] = _encode(items)
        elif resource.type == cloud.BUCKET:
            objects = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=resource.name):
                for listed in page.get("Contents", []):
                    got = s3.get_object(Bucket=resource.name, Key=listed["Key"])
                    objects.append(
                        {
                            "key": listed["Key"],
                            "content_type": got.get("ContentType") or "application/octet-stream",
                            "metadata": got.get("Metadata") or {},
                            "body": base64.b64encode(got["Body"].read()).decode(),
                        }
                    )
            buckets[logical_id] = objects
    return {"format": FORMAT, "tables": tables, "buckets": buckets}


def restore(
    client: Callable[[str], Any], physical: Mapping[str, cloud.PhysicalResource], state: Mapping[str, Any]
) -> dict[str, int]:
    """Put a snapshot's items and objects into the created resources; returns counts by logical id.

    Resources of the snapshot the template no longer defines are skipped.
    """
    if state.get("format") != FORMAT:
        raise ValueError(f"state file format {state.get('format')!r}, expected {FORMAT}")
    dynamodb, s3 = client("dynamodb"), client("s3")
    counts: dict[str, int] = {}
    for logical_id, items in (state.get("tables") or {}).items():
        if logical_id not in physical:
            continue
        name = physical[logical_id].name
        decoded = _decode(items)
        for start in range(0, len(decoded), 25):
            requests = [{"PutRequest": {"Item": item}} for item in decoded[start : start + 25]]
            while requests:
                unprocessed = dynamodb.batch_write_item(RequestItems={name: requests}).get("UnprocessedItems", {})
                requests = unprocessed.get(name, [])
        counts[logical_id] = len(decoded)
    for logical_id, objects in (state.get("buckets") or {}).items():
        if logical_id not in physical:
            continue
        for stored in objects:
            s3.put_object(
                Bucket=physical[logical_id].name,
                Key=stored["key"],
                Body=base64.b64decode(stored["body"]),
                ContentType=stored["content_type"],
                Metadata=stored["metadata"],
            )
        counts[logical_id] = len(objects)
    return counts


def save(path: str | Path, client: Callable[[str], Any], physical: Mapping[str, cloud.PhysicalResource]) -> None:
    """Write the snapshot to ``path`` atomically (a crash mid-write leaves the previous file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = json.dumps(snapshot(client, physical), separators=(",", ":"))
    handle, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as file:
            file.write(document)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(
    path: str | Path, client: Callable[[str], Any], physical: Mapping[str, cloud.PhysicalResource]
) -> dict[str, int] | None:
    """Restore the snapshot at ``path``; None when there is no file yet."""
    path = Path(path)
    if not path.exists():
        return None
    return restore(client, physical, json.loads(path.read_text()))
