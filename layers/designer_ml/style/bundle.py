"""A user's style bundle as other stages read it: numpy and onnxruntime only.

The bundle lives under the prefix the profile item's ``style_model`` pointer names
(``models/{user_id}/style/v{n}-{token}/``): ``vocabulary.json``, ``style.onnx`` (PCA + mixture:
float32 rows (n, n_features) -> ``probabilities`` (n, k), ``score_samples`` (n, 1)),
``novelty.onnx`` + ``novelty.json`` (the off-style model, when fitted) and ``manifest.json``
(schema hash, ONNX column -> stable cluster id, cluster summaries and, when the portfolio had
image embeddings, the ``embedding`` block whose columns follow the attribute columns). A reader never fails because
of the bundle: a missing or corrupt artifact makes :func:`load_style_bundle` return None and log.

Loading reads the models the caller names, together, and builds their ONNX sessions as their
bytes arrive. Each model carries the bundle's manifest and vocabulary (the novelty model its
calibration too; ``onnx_models.with_documents``), so a cold start reads one S3 object per model
(a bundle stored before they did has its documents read as files, in a second round trip). An
artifact not named is read on first use. The JSON files are still written, for other readers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from designer_ml.embedding import EmbeddingBlock, embedding_matrix
from designer_ml.errors import ModelIntegrityError, StorageUnavailable
from designer_ml.observability import logger
from designer_ml.onnx_models import cached_session, documents, run
from designer_ml.storage import Storage
from designer_ml.style.features import style_matrix
from designer_ml.vlt import ParsedRecord, Vocabulary

VOCABULARY = "vocabulary.json"
STYLE_MODEL = "style.onnx"
MANIFEST = "manifest.json"
NOVELTY_MODEL = "novelty.onnx"
NOVELTY_CALIBRATION = "novelty.json"
NOVELTY_EMBEDDING_MODEL = "novelty_embedding.onnx"
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
    embedding: EmbeddingBlock | None = None
    _json: dict[str, Any] = field(default_factory=dict, repr=False)
    _style_checked: bool = field(default=False, repr=False)

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def session(self, name: str = STYLE_MODEL) -> Any | None:
        """The onnxruntime session of an artifact (cached per versioned key), or None."""
        return _session(self._storage, self.key(name))

    def json(self, name: str) -> Any | None:
        """A JSON artifact of the bundle (e.g. ``novelty.json``), or None when missing or corrupt."""
        if name not in self._json:
            self._json[name] = _json(self._storage, self.key(name))
        return self._json[name]

    def style_session(self) -> Any:
        """The style model's session, checked once against the vocabulary and the manifest."""
        session = self.session(STYLE_MODEL)
        if session is None:
            raise ModelIntegrityError(f"{self.key(STYLE_MODEL)}: missing or not loadable")
        if not self._style_checked:
            shape = session.get_inputs()[0].shape
            outputs = {o.name: o.shape for o in session.get_outputs()}
            probabilities = outputs.get("probabilities")
            if shape[-1] != self.n_features or probabilities is None or probabilities[-1] != len(self.cluster_ids):
                raise ModelIntegrityError(f"{self.key(STYLE_MODEL)}: shape does not match the vocabulary or manifest")
            self._style_checked = True
        return session

    @property
    def n_features(self) -> int:
        """Width of the style model's input: the attribute columns, then the embedding's."""
        return self.vocab.n_features + (self.embedding.dim if self.embedding is not None else 0)

    def features(self, records: Sequence[Mapping[str, Any] | ParsedRecord]) -> np.ndarray:
        """The style model's input rows, shape (n_records, n_features), float32.

        With an embedding block, a raw record's ``embedding`` fills its columns; a record
        without one (or a ParsedRecord) sits at the portfolio's average embedding.
        """
        records = list(records)
        X = style_matrix(self.vocab, self.vocab.transform(records).X)
        if self.embedding is None:
            return X
        E = embedding_matrix(records, self.embedding.dim)
        return np.hstack([X, self.embedding.rows(E, len(records))])

    def score(self, records: Sequence[Mapping[str, Any] | ParsedRecord]) -> tuple[np.ndarray, np.ndarray]:
        """Mode probabilities (n, n_clusters) and log-likelihood under the model (n,)."""
        session = self.style_session()
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


def _session(storage: Storage, key: str) -> Any | None:
    try:
        return cached_session(key, lambda: storage.get_bytes(key))
    except (ModelIntegrityError, StorageUnavailable) as exc:
        logger.warning("style bundle artifact unusable", extra={"key": key, "error": str(exc)})
        return None


def _json(storage: Storage, key: str) -> Any | None:
    try:
        return storage.get_json(key)
    except (ValueError, StorageUnavailable) as exc:
        logger.warning("style bundle artifact unusable", extra={"key": key, "error": str(exc)})
        return None


def _fetch(storage: Storage, key: str) -> Any | None:
    """A JSON artifact decoded, an ONNX one as its session; None when missing or unusable."""
    return _session(storage, key) if key.endswith(".onnx") else _json(storage, key)


def _fetch_all(storage: Storage, prefix: str, names: Sequence[str]) -> dict[str, Any]:
    """``_fetch`` of each name under ``prefix``, the reads overlapping when there are several."""
    if len(names) <= 1:
        return {name: _fetch(storage, f"{prefix}{name}") for name in names}
    # Threads, because the reads wait on the network (the GIL is free meanwhile) and the first
    # ONNX session's onnxruntime import overlaps the other reads.
    with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="style-bundle") as pool:
        futures = {name: pool.submit(_fetch, storage, f"{prefix}{name}") for name in names}
        return {name: future.result() for name, future in futures.items()}


def _load(storage: Storage, user_id: str, version: int, prefix: str, artifacts: Collection[str]) -> StyleBundle:
    names = list(dict.fromkeys([MANIFEST, VOCABULARY, *artifacts]))
    models = [name for name in names if name.endswith(".onnx")]
    fetched = _fetch_all(storage, prefix, models)
    # A model stored since its bundle's documents travel with it carries them (the manifest, the
    # vocabulary, the novelty calibration: onnx_models.with_documents); an older bundle's are read
    # as files, in a second round trip.
    for name in models:
        if fetched[name] is not None:
            for document, value in documents(fetched[name]).items():
                fetched.setdefault(document, value)
    fetched.update(_fetch_all(storage, prefix, [name for name in names if name not in fetched]))
    manifest, vocab_doc = fetched[MANIFEST], fetched[VOCABULARY]
    if not isinstance(manifest, dict) or not isinstance(vocab_doc, dict):
        raise ModelIntegrityError(f"{prefix}: manifest or vocabulary missing")
    vocab = Vocabulary.from_dict(vocab_doc)
    if manifest.get("schema_hash") != vocab.schema_hash:
        raise ModelIntegrityError(f"{prefix}: manifest schema hash does not match the vocabulary")
    ids = np.asarray(manifest["component_cluster_ids"], dtype=np.int64)
    # A bundle stored before embeddings existed has no "embedding" entry: attributes only.
    block = manifest.get("embedding")
    bundle = StyleBundle(
        user_id=user_id,
        version=version,
        prefix=prefix,
        vocab=vocab,
        manifest=manifest,
        cluster_ids=ids,
        _storage=storage,
        _json={name: doc for name, doc in fetched.items() if name.endswith(".json")},
        embedding=EmbeddingBlock.from_dict(block) if block else None,
    )
    if STYLE_MODEL in fetched:
        bundle.style_session()
    return bundle


def load_style_bundle(
    storage: Storage,
    user_id: str,
    item: Mapping[str, Any] | None = None,
    artifacts: Collection[str] = (STYLE_MODEL,),
) -> StyleBundle | None:
    """The user's current style bundle, or None (no profile, or an artifact missing or corrupt).

    ``item`` is the profile item when the caller has read it already. ``artifacts``: what the
    caller will use besides the manifest and vocabulary (default: the style model, which is then
    checked here); read together with them. Bundles are cached per versioned prefix, so a warm
    container reads each version once.
    """
    try:
        if item is None:
            item = storage.get_item(storage.profiles, {"user_id": user_id}, attributes=("style_model",))
        pointer = (item or {}).get("style_model")
        if not isinstance(pointer, Mapping) or not pointer.get("prefix"):
            return None
        prefix = str(pointer["prefix"])
        with _LOCK:
            if prefix in _BUNDLES:
                _BUNDLES.move_to_end(prefix)
                return _BUNDLES[prefix]
        bundle = _load(storage, user_id, int(pointer.get("version", 0)), prefix, artifacts)
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
