"""The style model's input: the shared encoder's matrix, with missing slots and rare values handled.

numpy only: the training code (``fit``) and the serving loader (``bundle``) both call
:func:`style_matrix`, so the ONNX model sees exactly the rows it was trained on.

Two adjustments on top of :meth:`designer_ml.vlt.Vocabulary.transform`, both derived from the
vocabulary alone (no extra artifact):

- a slot the record does not fill (missing, null, or a value the vocabulary never saw) gets the
  slot's average one-hot row instead of zeros, so that *what the analyser left out* does not
  form clusters of its own (real analyser output leaves most attributes out);
- each one-hot column is scaled by ``frequency ** -RARITY_EXPONENT``, a damped form of the
  column masses of multiple correspondence analysis: without it PCA sees almost only the most
  common values, with the full ``-1/2`` rare values and typos dominate (bench/bench_profile.py).
"""

from __future__ import annotations

import numpy as np

from designer_ml.vlt import Vocabulary

RARITY_EXPONENT = 0.25
FEATURES_VERSION = 1


def _layout(vocab: Vocabulary) -> tuple[list[tuple[int, int, np.ndarray]], np.ndarray]:
    """Per categorical slot (start, stop, weighted mean row); and the per-column scale."""
    cached = getattr(vocab, "_style_layout", None)
    if cached is not None:
        return cached
    n = max(vocab.n_records, 1)
    blocks: list[tuple[int, int, np.ndarray]] = []
    scale = np.ones(vocab.n_features, dtype=np.float64)
    start = 0
    for slot, values in vocab.categories.items():
        counts = np.fromiter(values.values(), dtype=np.float64, count=len(values))
        freq = np.maximum(counts / n, 1.0 / n)
        stop = start + len(values)
        blocks.append((start, stop, vocab.weight(slot) * freq))
        scale[start:stop] = freq**-RARITY_EXPONENT
        start = stop
    cached = (blocks, scale)
    object.__setattr__(vocab, "_style_layout", cached)
    return cached


def style_matrix(vocab: Vocabulary, X: np.ndarray) -> np.ndarray:
    """The style model's rows from the encoder's rows.

    Parameters
    ----------
    vocab : Vocabulary
        The vocabulary that produced ``X``.
    X : ndarray of shape (n_records, vocab.n_features)
        ``vocab.transform(records).X``.

    Returns
    -------
    ndarray of shape (n_records, vocab.n_features), float32
    """
    blocks, scale = _layout(vocab)
    out = np.array(X, dtype=np.float64, copy=True)
    for start, stop, mean_row in blocks:
        block = out[:, start:stop]
        empty = ~block.any(axis=1)
        if empty.any():
            block[empty] = mean_row
    out *= scale
    return out.astype(np.float32)
