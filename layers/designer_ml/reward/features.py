"""Features of the reward model: what a (prompt, spec, style mode) looks like to it.

One fixed layout shared by every designer and the population model, so that evidence adds up
across designers and a model's rows mean the same thing everywhere:

====================  =========================================================================
columns               what
====================  =========================================================================
``0``                 intercept
``1 .. V``            phrase indicators (the prompt vocabulary, ``vocabulary.PHRASES``)
``V+1 .. V+H``        spec attributes: every ``slot=value`` of the parsed VLT spec
                      (``designer_ml.vlt.parse_record``), signed-hashed into ``H`` columns
``V+H+1 .. V+H+K``    style mode: the probabilities of the designer's style clusters (id mod K)
====================  =========================================================================

Spec attributes are hashed rather than one-hot over a fitted vocabulary because the layout
must not depend on which designers' data a model saw (population evidence is summed across
designers) and real VLT output keeps inventing values; collisions cost a little accuracy on
the spec part only. The first ``SHARED_D`` columns are the ones the population model knows;
style-mode columns mean something only for one designer (cluster ids are per designer).

Phrase x attribute interactions are not in the layout: for one request the spec is fixed, so
they would only matter if designers liked a phrase for some garments and not others; the
bench's simulated designers have no such preference and the data to learn them (about V x H
more weights) is not there after a few hundred events.

numpy is imported inside the functions that build arrays: the feedback submit path needs only
the layout constants and the spec tokens, and a feedback function's cold start should not load
numpy for them (tests/infra/test_import_tree.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from designer_ml.reward.vocabulary import N_PHRASES, PHRASES, VOCABULARY_HASH
from designer_ml.vlt import ParsedRecord, parse_record

if TYPE_CHECKING:
    import numpy as np

HASH_BUCKETS = 64
STYLE_MODES = 10

INTERCEPT = 0
PHRASE_START = 1
SPEC_START = PHRASE_START + N_PHRASES
STYLE_START = SPEC_START + HASH_BUCKETS
SHARED_D = STYLE_START
D = STYLE_START + STYLE_MODES

FEATURE_SCHEMA = hashlib.sha256(f"{VOCABULARY_HASH}:{HASH_BUCKETS}:{STYLE_MODES}:signed-md5".encode()).hexdigest()[:16]

# Slots that describe the record rather than the garment.
_IGNORED_SLOTS = frozenset({"source", "confidence"})


@lru_cache(maxsize=8192)
def bucket(token: str) -> tuple[int, float]:
    """(column within the spec block, sign) of a ``slot=value`` token."""
    digest = hashlib.md5(token.encode(), usedforsecurity=False).digest()
    return digest[0] % HASH_BUCKETS, (1.0 if digest[1] & 1 else -1.0)


def spec_tokens(parsed: ParsedRecord) -> list[str]:
    """The ``slot=value`` tokens of a parsed spec (sorted, bounded)."""
    tokens = [
        f"{slot}={value}"
        for slot, values in parsed.categorical.items()
        if slot not in _IGNORED_SLOTS
        for value in values
    ]
    return sorted(tokens)[:64]


def spec_vector(tokens: Iterable[str]) -> np.ndarray:
    """Signed-hashed spec columns, shape (HASH_BUCKETS,), scaled to unit norm per spec.

    Unit norm keeps a richly described spec from dominating a sparse one (real analyser
    output ranges from 2 to 20 values).
    """
    return spec_matrix([tokens])[0]


def spec_matrix(token_lists: Iterable[Iterable[str]]) -> np.ndarray:
    """:func:`spec_vector` of each spec, shape (n, HASH_BUCKETS), in one array (select scores
    200 specs a request; a vector and a norm per spec cost ~1 ms of it)."""
    import numpy as np

    rows = [list(tokens) for tokens in token_lists]
    out = np.zeros((len(rows), HASH_BUCKETS))
    for i, tokens in enumerate(rows):
        for token in tokens:
            j, sign = bucket(token)
            out[i, j] += sign
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norm, out=out, where=norm > 0)


def style_vector(probs: Mapping[int, float] | None) -> np.ndarray:
    """Style-mode columns, shape (STYLE_MODES,): cluster id -> probability (id mod K)."""
    import numpy as np

    out = np.zeros(STYLE_MODES)
    for cluster, p in (probs or {}).items():
        out[int(cluster) % STYLE_MODES] += float(p)
    return out


def context_row(spec_tokens_: Sequence[str], style_probs: Mapping[int, float] | None = None) -> np.ndarray:
    """The row of a prompt with no phrases for this spec and style mode, shape (D,)."""
    import numpy as np

    row = np.zeros(D)
    row[INTERCEPT] = 1.0
    row[SPEC_START:STYLE_START] = spec_vector(spec_tokens_)
    row[STYLE_START:D] = style_vector(style_probs)
    return row


def phrase_matrix(phrase_sets: Sequence[Sequence[int]]) -> np.ndarray:
    """Phrase indicator block, shape (n, N_PHRASES)."""
    import numpy as np

    out = np.zeros((len(phrase_sets), N_PHRASES))
    for i, indices in enumerate(phrase_sets):
        if len(indices):
            out[i, list(indices)] = 1.0
    return out


def rows_for(context: np.ndarray, phrase_sets: Sequence[Sequence[int]]) -> np.ndarray:
    """Rows of several prompts sharing one context (spec + style), shape (n, D)."""
    import numpy as np

    X = np.repeat(context[None, :], len(phrase_sets), axis=0)
    X[:, PHRASE_START:SPEC_START] = phrase_matrix(phrase_sets)
    return X


def event_row(
    phrase_indices: Sequence[int], tokens: Sequence[str], style_probs: Mapping[int, float] | None = None
) -> np.ndarray:
    """The row of one feedback event, shape (D,)."""
    row = context_row(tokens, style_probs)
    if len(phrase_indices):
        row[[PHRASE_START + i for i in phrase_indices]] = 1.0
    return row


def spec_tokens_of(raw: Mapping[str, Any] | None) -> list[str]:
    """Tokens of a raw VLT spec dict (None: no tokens)."""
    return spec_tokens(parse_record(raw)) if raw else []


def column_names() -> list[str]:
    """A name per column, for explanations."""
    names = ["intercept"] + [p.text for p in PHRASES]
    names += [f"spec#{j}" for j in range(HASH_BUCKETS)] + [f"style_mode#{k}" for k in range(STYLE_MODES)]
    return names
