"""A user's style bundle as other stages read it: numpy and onnxruntime only.

The bundle lives under the prefix the profile item's ``style_model`` pointer names
(``models/{user_id}/style/v{n}-{token}/``): ``vocabulary.json``, ``style.onnx`` (PCA + mixture:
float32 rows (n, n_features) -> ``probabilities`` (n, k), ``score_samples`` (n, 1)),
``novelty.onnx`` + ``novelty.json`` (the off-style model, when fitted) and ``manifest.json``
(schema hash, ONNX column -> stable cluster id, cluster summaries). A reader never fails because
of the bundle: a missing or corrupt artifact makes :func:`load_style_bundle` return None and log.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from designer_ml.errors import ModelIntegrityError, StorageUnavailable
from designer_ml.observability import logger
from designer_ml.onnx_models import cached_session, run
from designer_ml.storage import Storage
from designer_ml.style.features import style_matrix
from designer_ml.vlt import ParsedRecord, Vocabulary

VOCABULARY = "vocabulary.json"
STYLE_MODEL = "style.onnx"
MANIFEST = "manifest.json"
NOVELTY_MODEL = "novelty.onnx"
NOVELTY_CALIBRATION = "novelty.json"
BUNDLE_FORMAT = 1

_BUNDLES: OrderedDict[str, StyleBundle] = OrderedDict()
_BUNDLES_SIZE = 32
_LOCK = threading.Lock()


@dataclass
class StyleBundle:
    """One stored version of a user's style model.

    Attributes
    ----------
    cluster_ids : ndarray of shape (n_clusters,), int
        Stable cluster id of each column of the model's ``probabilities``.
    """

    user_id: str
    version: int
    prefix: str
    vocab: Vocabulary
    manifest: dict[str, Any]
    cluster_ids: np.ndarray
    _storage: Storage = field(repr=False)
    _json: dict[str, Any] = field(default_factory=dict, repr=False)

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def session(self, name: str = STYLE_MODEL) -> Any | None:
        """The onnxruntime session of an artifact (cached per versioned key), or None."""
        key = self.key(name)
        try:
            return cached_session(key, lambda: self._storage.get_bytes(key))
        except (ModelIntegrityError, StorageUnavailable) as exc:
            logger.warning("style bundle artifact unusable", extra={"key": key, "error": str(exc)})
            return None

    def json(self, name: str) -> Any | None:
        """A JSON artifact of the bundle (e.g. ``novelty.json``), or None when missing or corrupt."""
        if name not in self._json:
            key = self.key(name)
            try:
                self._json[name] = self._storage.get_json(key)
            except (ValueError, StorageUnavailable) as exc:
                logger.warning("style bundle artifact unusable", extra={"key": key, "error": str(exc)})
                self._json[name] = None
        return self._json[name]

    def features(self, records: Sequence[Mapping[str, Any] | ParsedRecord]) -> np.ndarray:
        """The style model's input rows, shape (n_records, n_features), float32."""
        return style_matrix(self.vocab, self.vocab.transform(list(records)).X)

    def score(self, records: Sequence[Mapping[str, Any] | ParsedRecord]) -> tuple[np.ndarray, np.ndarray]:
        """Mode probabilities (n, n_clusters) and log-likelihood under the model (n,)."""
        session = self.session(STYLE_MODEL)
        if session is None:
            raise ModelIntegrityError(f"{self.key(STYLE_MODEL)}: not loadable")
        X = self.features(records)
        if len(X) == 0:
            return np.zeros((0, len(self.cluster_ids)), np.float32), np.zeros(0, np.float32)
        return run(session, X, "probabilities"), run(session, X, "score_samples").reshape(-1)

    def place(self, records: Sequence[Mapping[str, Any] | ParsedRecord]) -> tuple[np.ndarray, np.ndarray]:
        """The style mode of each record.

        Returns
        -------
        cluster_ids : ndarray of shape (n_records,), int
            The stable cluster id of the most probable mode.
        probabilities : ndarray of shape (n_records, n_clusters), float32
            Column ``j`` is the probability of cluster ``self.cluster_ids[j]``.
        """
        probabilities, _ = self.score(records)
        if len(probabilities) == 0:
            return np.zeros(0, dtype=np.int64), probabilities
        return self.cluster_ids[probabilities.argmax(axis=1)], probabilities


def _load(storage: Storage, user_id: str, version: int, prefix: str) -> StyleBundle:
    manifest = storage.get_json(f"{prefix}{MANIFEST}")
    vocab_doc = storage.get_json(f"{prefix}{VOCABULARY}")
    if not isinstance(manifest, dict) or not isinstance(vocab_doc, dict):
        raise ModelIntegrityError(f"{prefix}: manifest or vocabulary missing")
    vocab = Vocabulary.from_dict(vocab_doc)
    if manifest.get("schema_hash") != vocab.schema_hash:
        raise ModelIntegrityError(f"{prefix}: manifest schema hash does not match the vocabulary")
    ids = np.asarray(manifest["component_cluster_ids"], dtype=np.int64)
    bundle = StyleBundle(
        user_id=user_id,
        version=version,
        prefix=prefix,
        vocab=vocab,
        manifest=manifest,
        cluster_ids=ids,
        _storage=storage,
    )
    session = bundle.session(STYLE_MODEL)
    if session is None:
        raise ModelIntegrityError(f"{prefix}{STYLE_MODEL}: missing or not loadable")
    shape = session.get_inputs()[0].shape
    outputs = {o.name: o.shape for o in session.get_outputs()}
    if shape[-1] != vocab.n_features or "probabilities" not in outputs or outputs["probabilities"][-1] != len(ids):
        raise ModelIntegrityError(f"{prefix}{STYLE_MODEL}: shape does not match the vocabulary or manifest")
    return bundle


def load_style_bundle(storage: Storage, user_id: str, item: Mapping[str, Any] | None = None) -> StyleBundle | None:
    """The user's current style bundle, or None (no profile, or an artifact missing or corrupt).

    ``item`` is the profile item when the caller has read it already. Bundles are cached per
    versioned prefix, so a warm container reads each version once.
    """
    try:
        if item is None:
            item = storage.get_item(storage.profiles, {"user_id": user_id})
        pointer = (item or {}).get("style_model")
        if not isinstance(pointer, Mapping) or not pointer.get("prefix"):
            return None
        prefix = str(pointer["prefix"])
        with _LOCK:
            if prefix in _BUNDLES:
                _BUNDLES.move_to_end(prefix)
                return _BUNDLES[prefix]
        bundle = _load(storage, user_id, int(pointer.get("version", 0)), prefix)
    except (ModelIntegrityError, StorageUnavailable, ValueError, KeyError, TypeError) as exc:
        logger.warning("style bundle unavailable", extra={"user_id": user_id, "error": str(exc)})
        return None
    with _LOCK:
        _BUNDLES[prefix] = bundle
        while len(_BUNDLES) > _BUNDLES_SIZE:
            _BUNDLES.popitem(last=False)
    return bundle


def clear_cache() -> None:
    with _LOCK:
        _BUNDLES.clear()
