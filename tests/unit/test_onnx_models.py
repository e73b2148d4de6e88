"""A model's documents travel in its ONNX metadata: written by training, read by serving."""

from __future__ import annotations

import numpy as np

from designer_ml import onnx_models
from designer_ml.reward import features as F
from designer_ml.reward import model as M


def _model() -> bytes:
    rng = np.random.default_rng(0)
    return M.export_onnx(rng.normal(size=F.D), np.eye(F.D), {"kind": "designer", "version": 1})


def test_documents_ride_along_and_leave_the_graph_and_other_metadata_alone() -> None:
    plain = _model()
    carried = onnx_models.with_documents(plain, {"meta.json": {"n": 1, "x": [0.5, "a"]}})
    again = onnx_models.with_documents(carried, {"meta.json": {"n": 2}})

    X = np.vstack([np.eye(F.D)[:8], np.ones((1, F.D))]).astype(np.float32)
    outputs = [onnx_models.run(onnx_models.make_session(b), X) for b in (plain, carried, again)]
    session = onnx_models.make_session(again)
    other = session.get_modelmeta().custom_metadata_map

    assert onnx_models.documents(onnx_models.make_session(plain)) == {}
    assert onnx_models.documents(onnx_models.make_session(carried)) == {"meta.json": {"n": 1, "x": [0.5, "a"]}}
    # Written again: replaced, not added twice
    assert onnx_models.documents(session) == {"meta.json": {"n": 2}}
    assert other["kind"] == "designer" and other["version"] == "1"
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])


def test_unreadable_documents_read_as_no_documents() -> None:
    plain = _model()
    import onnx

    model = onnx.load_from_string(plain)
    prop = model.metadata_props.add()
    prop.key, prop.value = onnx_models.DOCUMENTS_KEY, "{not json"
    assert onnx_models.documents(onnx_models.make_session(model.SerializeToString())) == {}
