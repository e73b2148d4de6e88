"""Style profiles: create, update and read, over storage.

The fit (scikit-learn) is imported only when a profile is fitted, so reading a profile and
importing the handler stay light. Every write goes: records, then the style bundle under a
fresh prefix, then the profile item with a conditional write on its ``version``; a writer that
loses the race removes what it wrote, re-reads, re-merges, refits and tries again.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from designer_ml import limits
from designer_ml.embedding import embedding_matrix, embedding_of
from designer_ml.errors import (
    Conflict,
    DomainError,
    ModelIntegrityError,
    NotFound,
    PayloadTooLarge,
    Unprocessable,
    VersionConflict,
)
from designer_ml.observability import logger
from designer_ml.onnx_models import TARGET_OPSET, with_documents
from designer_ml.storage import Storage
from designer_ml.style import bundle as bundles
from designer_ml.style.features import FEATURES_VERSION
from designer_ml.style.summary import clusters_of, feature_importance, statistics_of
from designer_ml.vlt import ParsedRecord, parse_record

if TYPE_CHECKING:
    from designer_ml.style.fit import StyleFit

# Attempts at the conditional write before answering 409 (20 concurrent writers all land).
MAX_WRITE_ATTEMPTS = 30
# DynamoDB items stop at 400 KB; a larger document goes to S3 and the item keeps a pointer.
DOCUMENT_INLINE_BYTES = 300_000
# An update waits this long for the writer of an older pending batch before fitting itself.
LEADER_PATIENCE_SECONDS = 15.0
# A pending batch older than a Lambda can live belongs to a request that failed: never merged.
ORPHAN_PENDING_SECONDS = 900.0
# A cluster the current model did not have is a new style mode once it holds this many records.
NEW_MODE_MIN_RECORDS = 4


class ModelExportFailed(DomainError):
    """The exported model disagrees with the fitted one: nothing was stored."""

    status = 500
    code = "model_integrity_error"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def usable_records(records: Sequence[Mapping[str, Any]], field: str = "vlt_records") -> list[ParsedRecord]:
    """Parse every record; a record with nothing usable is a 422 naming its id."""
    parsed = []
    for i, raw in enumerate(records):
        rec = parse_record(raw)
        if not rec.usable:
            rid = raw.get("id")
            raise Unprocessable(
                f"{field}[{i}] (id {rid!r}): record has no usable attributes",
                [{"field": f"{field}[{i}]", "id": rid, "message": "record has no usable attributes"}],
            )
        parsed.append(rec)
    return parsed


def _profile_item(storage: Storage, user_id: str) -> dict[str, Any] | None:
    return storage.get_item(storage.profiles, {"user_id": user_id})


def _read_document(storage: Storage, item: Mapping[str, Any]) -> dict[str, Any]:
    if item.get("document_key"):
        full = storage.get_json(str(item["document_key"]))
        if isinstance(full, dict):
            return full
    return json.loads(item["document"])


def get_profile(storage: Storage, user_id: str) -> dict[str, Any]:
    """The user's current profile document; 404 when there is none."""
    item = _profile_item(storage, user_id)
    if not item or "document" not in item:
        raise NotFound(f"user_id: no style profile for {user_id!r}")
    return _read_document(storage, item)


def create_profile(
    storage: Storage, user_id: str, records: Sequence[Mapping[str, Any]], n_clusters: int | None = None
) -> dict[str, Any]:
    """Fit a profile from a whole portfolio (replacing any earlier one) and store it."""
    parsed = usable_records(records)
    for attempt in range(MAX_WRITE_ATTEMPTS):
        item = _profile_item(storage, user_id)
        expected = item.get("version") if item else None
        notes = []
        if item and "document" in item:
            notes.append(f"replaced the previous profile (version {expected}) and its portfolio")
        try:
            return _fit_and_store(storage, user_id, list(records), parsed, n_clusters, expected, None, notes)
        except VersionConflict:
            _backoff(attempt)
    raise Conflict(f"user_id: profile of {user_id!r} kept changing; {MAX_WRITE_ATTEMPTS} attempts lost the race")


def update_profile(storage: Storage, user_id: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Add records to a profile (a record whose id is already there replaces it) and refit,
    warm-started from the current model, keeping cluster ids; 404 when there is no profile.

    Concurrent updates commit as a group: each first leaves its records under
    ``records/{user_id}/pending/``, and whichever writer lands includes every pending batch it
    saw. A writer that lost the race then finds its records already in the profile and is done
    without a refit, so 20 concurrent updates cost a few fits, not 20 serial ones.
    """
    usable_records(records)
    item = _profile_item(storage, user_id)
    if not item or "document" not in item:
        raise NotFound(f"user_id: no style profile for {user_id!r}; create one first")
    _check_embedding_dimension(records, _read_document(storage, item))
    own_key = f"{_pending_prefix(user_id)}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
    storage.put_json(own_key, list(records))
    try:
        for attempt in range(MAX_WRITE_ATTEMPTS):
            if attempt:
                item = _profile_item(storage, user_id)
            if not item or "document" not in item:
                raise NotFound(f"user_id: no style profile for {user_id!r}; create one first")
            stored = storage.get_json(str(item["records_key"])) or []
            if attempt and _contains(stored, records):
                return _read_document(storage, item)
            waiting = sorted(storage.list_keys(_pending_prefix(user_id)))
            if waiting and waiting[0] != own_key and _age_seconds(waiting[0]) < LEADER_PATIENCE_SECONDS:
                # An older batch's writer is fitting and will most likely include ours: let it.
                _backoff(attempt)
                continue
            keys, incoming = _pending(storage, waiting, own_key, records)
            merged, replaced = _merge(stored, incoming)
            if len(merged) > limits.MAX_PORTFOLIO_RECORDS:
                raise PayloadTooLarge(
                    f"vlt_records: the portfolio would hold {len(merged)} records, over the limit of "
                    f"{limits.MAX_PORTFOLIO_RECORDS} records per profile"
                )
            previous = _read_document(storage, item)
            try:
                document = _fit_and_store(
                    storage,
                    user_id,
                    merged,
                    [parse_record(r) for r in merged],
                    previous.get("model", {}).get("requested_n_clusters"),
                    item["version"],
                    _Previous(storage, item, previous, merged, incoming, replaced),
                    [],
                )
            except VersionConflict:
                _backoff(attempt)
                continue
            _discard(storage, keys)
            return document
        raise Conflict(f"user_id: profile of {user_id!r} kept changing; {MAX_WRITE_ATTEMPTS} attempts lost the race")
    finally:
        _discard(storage, [own_key])


def _check_embedding_dimension(records: Sequence[Mapping[str, Any]], document: Mapping[str, Any]) -> None:
    """An update's embeddings have the profile's dimension (422 naming the record otherwise)."""
    dim = document.get("model", {}).get("embedding_dim")
    if dim is None:
        return
    for i, raw in enumerate(records):
        embedding = embedding_of(raw)
        if embedding is not None and len(embedding) != dim:
            message = f"{len(embedding)} dimensions, but the profile's embeddings have {dim}"
            raise Unprocessable(
                f"vlt_records[{i}].embedding: {message}",
                [{"field": f"vlt_records[{i}].embedding", "id": raw.get("id"), "message": message}],
            )


def _pending_prefix(user_id: str) -> str:
    return f"records/{user_id}/pending/"


def _age_seconds(pending_key: str) -> float:
    try:
        return (time.time_ns() - int(pending_key.rsplit("/", 1)[-1].split("-", 1)[0])) / 1e9
    except ValueError:
        return float("inf")


def _pending(
    storage: Storage, waiting: Sequence[str], own_key: str, own: Sequence[Mapping[str, Any]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Every pending batch of the user, oldest first (later ones replace earlier same ids)."""
    keys, records = [], []
    for key in waiting:
        if key != own_key and _age_seconds(key) > ORPHAN_PENDING_SECONDS:
            continue
        batch = own if key == own_key else storage.get_json(key)
        if isinstance(batch, list):
            keys.append(key)
            records.extend(dict(r) for r in batch if isinstance(r, Mapping))
    if own_key not in keys:
        keys.append(own_key)
        records.extend(dict(r) for r in own)
    return keys, records


def _contains(stored: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]) -> bool:
    by_id = {str(r.get("id")): r for r in stored}
    return all(by_id.get(str(r.get("id"))) == r for r in records)


def _backoff(attempt: int) -> None:
    # Jittered exponential backoff: concurrent writers spread out instead of refitting in lockstep.
    time.sleep(random.uniform(0.0, min(2.0, 0.05 * 2**attempt)))


def _merge(
    stored: Sequence[Mapping[str, Any]], incoming: Sequence[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], set[str]]:
    """The stored records with incoming ones replacing same ids in place, new ones appended."""
    merged = [dict(r) for r in stored]
    position = {str(r.get("id")): i for i, r in enumerate(merged)}
    replaced: set[str] = set()
    for rec in incoming:
        rid = str(rec.get("id"))
        if rid in position:
            merged[position[rid]] = dict(rec)
            replaced.add(rid)
        else:
            position[rid] = len(merged)
            merged.append(dict(rec))
    return merged, replaced


class _Previous:
    """The current profile as an update sees it: old assignments, old model, which ids are new."""

    def __init__(
        self,
        storage: Storage,
        item: Mapping[str, Any],
        document: dict[str, Any],
        merged: Sequence[Mapping[str, Any]],
        incoming: Sequence[Mapping[str, Any]],
        replaced: set[str],
    ):
        self.document = document
        self.bundle = bundles.load_style_bundle(storage, document["user_id"], item)
        incoming_ids = {str(r.get("id")) for r in incoming}
        self.is_new = np.array([str(r.get("id")) in incoming_ids for r in merged])
        self.n_replaced = len(replaced)
        old = document.get("assignments", {})
        labels = np.array(
            [old.get(str(r.get("id")), -1) if not new else -1 for r, new in zip(merged, self.is_new, strict=True)]
        )
        self.old_labels = labels.astype(np.int64)
        self.old_ll: np.ndarray | None = None
        self.placed = self.old_labels.copy()
        if self.bundle is not None:
            try:
                ids, _ = self.bundle.place([merged[i] for i in np.flatnonzero(self.is_new)])
                _, ll = self.bundle.score(list(merged))
                self.placed[self.is_new] = ids
                self.old_ll = ll
            except ModelIntegrityError as exc:
                logger.warning("current style model unusable; update fits cold", extra={"error": str(exc)})
        self.max_cluster_id = int(document.get("model", {}).get("max_cluster_id", -1))


def _fit_and_store(
    storage: Storage,
    user_id: str,
    records: list[dict[str, Any]],
    parsed: list[ParsedRecord],
    n_clusters: int | None,
    expected_version: int | None,
    previous: _Previous | None,
    notes: list[str],
) -> dict[str, Any]:
    from designer_ml.style import fit as fitting

    warm = fitting.WarmStart(labels=previous.placed) if previous is not None else None
    embeddings = embedding_matrix(records)
    model = fitting.fit_style(parsed, n_clusters=n_clusters, warm=warm, embeddings=embeddings)
    # A concurrent writer may have landed while we fitted: find out before the costlier export.
    _still_at(storage, user_id, expected_version)
    if previous is not None:
        shared = previous.old_labels >= 0
        ids = fitting.stable_ids(
            previous.old_labels[shared], model.components[shared], model.n_clusters, previous.max_cluster_id + 1
        )
    else:
        ids = list(range(model.n_clusters))
    labels = np.asarray(ids, dtype=np.int64)[model.components]
    version = (expected_version or 0) + 1
    token = uuid.uuid4().hex[:10]
    prefix = f"models/{user_id}/style/v{version}-{token}/"
    records_key = f"records/{user_id}/v{version}-{token}.json"
    now = _now()

    document = _document(user_id, version, model, ids, labels, records, n_clusters, notes, now)
    if previous is not None:
        document["created_at"] = previous.document.get("created_at", now)
        document["model"]["max_cluster_id"] = max(previous.max_cluster_id, *ids)
        document["drift"] = _drift(previous, labels, ids)
    manifest = {
        "format": bundles.BUNDLE_FORMAT,
        "user_id": user_id,
        "version": version,
        "created_at": now,
        "schema_hash": model.vocab.schema_hash,
        "features_version": FEATURES_VERSION,
        "n_records": len(records),
        "n_features": int(model.X.shape[1]),
        "component_cluster_ids": ids,
        "max_cluster_id": document["model"]["max_cluster_id"],
        "clusters": [
            {k: c[k] for k in ("id", "size", "percentage", "dominant_attributes", "style_summary")}
            for c in document["clusters"]
        ],
        "style_model": {
            "file": bundles.STYLE_MODEL,
            "input": "X",
            "outputs": ["label", "probabilities", "score_samples"],
            "target_opset": TARGET_OPSET,
        },
    }
    if model.embedding is not None:
        manifest["embedding"] = model.embedding.to_dict()
    try:
        onnx_bytes, diff = fitting.export_onnx(
            model,
            {
                "user_id": user_id,
                "version": str(version),
                "schema_hash": model.vocab.schema_hash,
                "n_records": str(len(records)),
                "features_version": str(FEATURES_VERSION),
                "cluster_ids": json.dumps(ids),
            },
        )
    except ModelIntegrityError as exc:
        logger.error("style model export failed its parity check", extra={"user_id": user_id, "error": str(exc)})
        raise ModelExportFailed(
            f"style model for {user_id!r} failed its ONNX parity check; nothing was stored"
        ) from exc
    manifest["style_model"]["parity_max_abs_diff"] = diff
    document["model"]["onnx_parity_max_abs_diff"] = diff
    novelty = fitting.fit_novelty_model(
        model.vocab, parsed, embeddings=embeddings if model.embedding is not None else None
    )
    manifest["novelty"] = (
        {"model": bundles.NOVELTY_MODEL, "calibration": bundles.NOVELTY_CALIBRATION} if novelty is not None else None
    )
    if novelty is not None and novelty.embedding_onnx_bytes is not None:
        manifest["novelty"]["embedding_model"] = bundles.NOVELTY_EMBEDDING_MODEL

    _still_at(storage, user_id, expected_version)
    written: list[str] = []
    try:
        storage.put_json(records_key, records)
        written.append(records_key)
        # Each model also carries the documents its readers need (bundle.py reads one object).
        documents = {bundles.MANIFEST: manifest, bundles.VOCABULARY: model.vocab.to_dict()}
        storage.put_json(prefix + bundles.VOCABULARY, documents[bundles.VOCABULARY])
        written.append(prefix)
        storage.put_bytes(
            prefix + bundles.STYLE_MODEL,
            with_documents(onnx_bytes, documents),
            metadata={"schema-hash": model.vocab.schema_hash},
        )
        if novelty is not None:
            storage.put_bytes(
                prefix + bundles.NOVELTY_MODEL,
                with_documents(novelty.onnx_bytes, {**documents, bundles.NOVELTY_CALIBRATION: novelty.calibration}),
            )
            storage.put_json(prefix + bundles.NOVELTY_CALIBRATION, novelty.calibration)
            if novelty.embedding_onnx_bytes is not None:
                storage.put_bytes(prefix + bundles.NOVELTY_EMBEDDING_MODEL, novelty.embedding_onnx_bytes)
        storage.put_json(prefix + bundles.MANIFEST, manifest)
        attributes: dict[str, Any] = {
            "style_model": {"version": version, "prefix": prefix},
            "records_key": records_key,
        }
        text = json.dumps(document, separators=(",", ":"))
        if len(text.encode()) > DOCUMENT_INLINE_BYTES:
            document_key = f"{prefix}profile.json"
            storage.put_json(document_key, document)
            slim = dict(document, assignments={}, assignments_key=document_key)
            attributes["document"] = json.dumps(slim, separators=(",", ":"))
            attributes["document_key"] = document_key
        else:
            attributes["document"] = text
            attributes["document_key"] = None
        storage.put_versioned(storage.profiles, {"user_id": user_id}, attributes, expected_version)
    except BaseException:
        _discard(storage, written)
        raise
    logger.info("style profile stored", extra={"user_id": user_id, "version": version, "n_records": len(records)})
    return document


def _still_at(storage: Storage, user_id: str, expected_version: int | None) -> None:
    item = _profile_item(storage, user_id)
    if (item or {}).get("version") != expected_version:
        raise VersionConflict(f"profile of {user_id!r} moved on from version {expected_version}")


def _discard(storage: Storage, keys: list[str]) -> None:
    for key in keys:
        try:
            storage.delete_prefix(key)
        except DomainError:
            logger.warning("could not remove an unused artifact", extra={"key": key})


def _document(
    user_id: str,
    version: int,
    model: StyleFit,
    ids: list[int],
    labels: np.ndarray,
    records: Sequence[Mapping[str, Any]],
    requested: int | None,
    notes: list[str],
    now: str,
) -> dict[str, Any]:
    clusters = clusters_of(model.parsed, labels, ids)
    described = model.describe()
    described.update({"requested_n_clusters": requested, "max_cluster_id": max(ids)})
    return {
        "user_id": user_id,
        "version": version,
        "n_clusters": model.n_clusters,
        "n_records": len(records),
        "clusters": clusters,
        "assignments": {str(r.get("id")): int(c) for r, c in zip(records, labels.tolist(), strict=True)},
        "feature_importance": feature_importance(model.parsed, labels),
        "statistics": statistics_of(model.parsed),
        "model": described,
        "warnings": list(notes) + list(model.warnings),
        "created_at": now,
        "updated_at": now,
    }


def _drift(previous: _Previous, labels: np.ndarray, ids: list[int]) -> dict[str, Any]:
    """How far the new records sit from the current modes, and whether a new mode appeared."""
    is_new = previous.is_new
    old_ids = {c["id"] for c in previous.document.get("clusters", [])}
    fresh = sorted(set(ids) - old_ids)
    in_fresh = np.isin(labels, fresh)
    report: dict[str, Any] = {
        "n_new_records": int(is_new.sum()) - previous.n_replaced,
        "n_replaced_records": previous.n_replaced,
        "new_cluster_ids": fresh,
        "retired_cluster_ids": sorted(old_ids - set(ids)),
        "new_mode_share": round(float(in_fresh[is_new].mean()), 4) if is_new.any() else 0.0,
        "new_mode_detected": bool(in_fresh.sum() >= NEW_MODE_MIN_RECORDS),
        "mean_nll_new": None,
        "mean_nll_existing": None,
        "nll_shift_sd": None,
        "off_style_share": None,
    }
    ll = previous.old_ll
    if ll is not None and is_new.any() and (~is_new).any():
        existing = -ll[~is_new].astype(np.float64)
        new = -ll[is_new].astype(np.float64)
        spread = float(existing.std()) or 1.0
        report.update(
            mean_nll_new=round(float(new.mean()), 4),
            mean_nll_existing=round(float(existing.mean()), 4),
            nll_shift_sd=round((float(new.mean()) - float(existing.mean())) / spread, 4),
            off_style_share=round(float((new > np.quantile(existing, 0.95)).mean()), 4),
        )
    return report
