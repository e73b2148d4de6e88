"""ONNX models: sessions created once per artifact and cached; parity checks before storing.

Serving code uses only onnxruntime and numpy from here. Training code (profile, retrain) calls
:func:`check_parity` on held-out rows before an artifact is stored: a model that disagrees with
the estimator it came from is never stored or served.

A model can carry the JSON documents its readers need with it (:func:`with_documents`, read back
by :func:`documents`): a serving function's cold start then reads one S3 object per model, not
the model and then its manifest, vocabulary or metadata (each S3 read is a round trip, and on a
cold container a new connection; bench/bench_coldstart.py).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from designer_ml.errors import ModelIntegrityError

# Opsets pinned for every export (IsolationForest needs ai.onnx.ml 3).
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
PARITY_TOLERANCE = 1e-4
# The metadata property that holds a model's documents (a JSON object: file name -> document).
DOCUMENTS_KEY = "designer_ml.documents"

_CACHE: OrderedDict[str, Any] = OrderedDict()
_CACHE_SIZE = 64
_LOCK = threading.Lock()


def make_session(model_bytes: bytes) -> Any:
    """An onnxruntime session on one intra-op thread (Lambda gives us ~1 vCPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelIntegrityError(f"not a loadable ONNX model: {exc}") from exc


def with_documents(model_bytes: bytes, documents: Mapping[str, Any]) -> bytes:
    """The model with ``documents`` (JSON-able, by file name) in its metadata, replacing any there.

    Training side only (imports ``onnx``). The graph is untouched: a parity check made on
    ``model_bytes`` holds for the result.
    """
    import onnx

    model = onnx.load_from_string(model_bytes)
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != DOCUMENTS_KEY]
    del model.metadata_props[:]
    for key, value in [*kept, (DOCUMENTS_KEY, json.dumps(documents, separators=(",", ":")))]:
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    return model.SerializeToString()


def documents(session: Any) -> dict[str, Any]:
    """The documents a model carries (:func:`with_documents`); {} for a model stored without them."""
    text = session.get_modelmeta().custom_metadata_map.get(DOCUMENTS_KEY)
    if not text:
        return {}
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def cached_session(cache_key: str, load_bytes: Any) -> Any:
    """The session for ``cache_key`` (an artifact's versioned S3 key), loading it at most once.

    ``load_bytes`` is called on a miss and returns the model bytes (or None: nothing cached).
    """
    with _LOCK:
        if cache_key in _CACHE:
            _CACHE.move_to_end(cache_key)
            return _CACHE[cache_key]
    data = load_bytes()
    if data is None:
        return None
    session = make_session(data)
    with _LOCK:
        _CACHE[cache_key] = session
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return session


def run(session: Any, X: np.ndarray, output: str | int = 0) -> np.ndarray:
    """Run a single-input model on float32 rows and return one output as an array."""
    name = session.get_inputs()[0].name
    outputs = session.run(None, {name: np.ascontiguousarray(X, dtype=np.float32)})
    if isinstance(output, int):
        return np.asarray(outputs[output])
    names = [o.name for o in session.get_outputs()]
    return np.asarray(outputs[names.index(output)])


def check_parity(
    model_bytes: bytes, X: np.ndarray, expected: np.ndarray, output: str | int = 0, tolerance: float = PARITY_TOLERANCE
) -> float:
    """Max abs difference between the ONNX model and the reference on rows ``X``; raises if over."""
    got = run(make_session(model_bytes), X, output).reshape(np.shape(expected))
    diff = float(np.max(np.abs(got.astype(np.float64) - np.asarray(expected, dtype=np.float64)))) if got.size else 0.0
    if not np.isfinite(diff) or diff > tolerance:
        raise ModelIntegrityError(f"ONNX parity check failed: max abs difference {diff:.3g} > {tolerance}")
    return diff


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()
