"""VLT records and the one encoder from messy records to features.

A VLT record is the attribute analysis of one garment image (API.md). Real records are messy:
groups missing or null, extra keys, lists, numbers, case and spelling variants. Everything here
turns them into *slots* (``"garment_type"``, ``"attributes.silhouette"``, ``"colors.primary"``)
holding normalised categorical values or a number, and then into a feature matrix with a
frozen, serialisable vocabulary.

Every stage uses this module: profile (fit), validate (consistency and rarity), select (the
DPP similarity), optimize and feedback (spec features of the reward model).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# Top-level keys that identify or decorate a record rather than describe the garment. An image
# embedding is a feature block of its own (designer_ml.embedding), never a VLT slot.
NON_ATTRIBUTE_KEYS = frozenset({"id", "url", "image_url", "quality_score", "ground_truth", "text", "vlt", "embedding"})
# Group weights by default: style and garment type say more about a designer's style mode than
# finish or details (issue 4; measured in bench/bench_profile.py).
DEFAULT_GROUP_WEIGHTS: dict[str, float] = {
    "garment_type": 2.0,
    "style": 1.5,
    "attributes": 1.0,
    "colors": 1.0,
    "colors.finish": 0.5,
    "details": 0.5,
    "attributes.details": 0.5,
}
MAX_DEPTH = 3

_SEPARATORS = re.compile(r"[\s\-_/]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^\w\s.&+#]")


# Cached: the same few keys and values recur in every record, and the regexes dominated parsing
# (200 records: 7 ms uncached, 1 ms cached; the select p50 bar is 15 ms).
@functools.lru_cache(maxsize=8192)
def normalize_value(value: str) -> str:
    """Case, spaces and hyphens folded: "A-Line", "a line", " A_line " all become "a line"."""
    text = _NON_WORD.sub(" ", str(value).strip().lower())
    return _SEPARATORS.sub(" ", text).strip()


@functools.lru_cache(maxsize=8192)
def normalize_key(key: str) -> str:
    """Key spelling folded: "sleeveLength", "Sleeve Length", "sleeve-length" -> "sleeve_length"."""
    text = _CAMEL.sub("_", str(key).strip())
    return _SEPARATORS.sub("_", _NON_WORD.sub(" ", text.lower())).strip("_")


def group_of(slot: str) -> str:
    """The attribute group of a slot: "colors.primary" -> "colors"."""
    return slot.split(".", 1)[0]


@dataclass(frozen=True)
class ParsedRecord:
    """One record as slots: categorical values (a tuple, multi-valued allowed) and numbers."""

    categorical: dict[str, tuple[str, ...]]
    numeric: dict[str, float]

    @property
    def usable(self) -> bool:
        return bool(self.categorical) or bool(self.numeric)

    def values(self, slot: str) -> tuple[str, ...]:
        return self.categorical.get(slot, ())


_EMPTY_VALUES = frozenset({"", "none", "null", "n a", "unknown"})


def _walk(prefix: str, value: Any, depth: int, cat: dict[str, list[str]], num: dict[str, float]) -> None:
    # Strings first and dict before the Mapping ABC: select parses 200 records a request.
    if isinstance(value, str):
        text = normalize_value(value)
        if text not in _EMPTY_VALUES:
            if prefix in cat:
                cat[prefix].append(text)
            else:
                cat[prefix] = [text]
    elif value is None:
        return
    elif isinstance(value, bool):
        cat.setdefault(prefix, []).append("true" if value else "false")
    elif isinstance(value, (int, float)):
        if math.isfinite(value):
            num[prefix] = float(value)
    elif isinstance(value, (dict, Mapping)):
        if depth >= MAX_DEPTH:
            return
        for key, inner in value.items():
            name = normalize_key(key)
            if name:
                _walk(f"{prefix}.{name}" if prefix else name, inner, depth + 1, cat, num)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, (Mapping, list, tuple)):
                continue  # lists of objects carry no attribute we can name
            _walk(prefix, item, depth, cat, num)


def parse_record(record: Mapping[str, Any] | None) -> ParsedRecord:
    """Normalise one raw VLT record into slots. Never raises on any JSON value."""
    cat: dict[str, list[str]] = {}
    num: dict[str, float] = {}
    if isinstance(record, Mapping):
        for key, value in record.items():
            name = normalize_key(key)
            if not name or name in NON_ATTRIBUTE_KEYS:
                continue
            _walk(name, value, 1, cat, num)
    categorical = {slot: tuple(sorted(set(values))) for slot, values in cat.items()}
    return ParsedRecord(categorical=categorical, numeric=num)


@dataclass
class EncodedBatch:
    """Features of a batch of records under one vocabulary.

    Attributes
    ----------
    X : ndarray of shape (n_records, n_features), float32
        Weighted one-hot (multi-hot for lists) plus standardised numbers.
    unseen : dict of group -> ndarray of shape (n_records,), bool
        True where the record had a value (or a slot) in that group the vocabulary never saw.
    unseen_values : list of list of (slot, value)
        Per record, every value the vocabulary never saw (for reasons a designer can act on).
    rarity : ndarray of shape (n_records, n_slots), float32
        Per vocabulary slot, ``-log`` of the smoothed frequency of the record's value in the
        fitted records (1 for unseen values high, 0 when the slot is missing in the record).
    """

    X: np.ndarray
    unseen: dict[str, np.ndarray]
    unseen_values: list[list[tuple[str, str]]]
    rarity: np.ndarray
    parsed: list[ParsedRecord]


@dataclass
class Vocabulary:
    """The frozen feature vocabulary fitted on a set of records.

    ``categories[slot]`` maps each seen value to its count; ``numeric[slot]`` holds (mean, std).
    Serialisable with :meth:`to_dict` / :meth:`from_dict`; :attr:`schema_hash` names the exact
    feature layout (stamped on every exported model).
    """

    categories: dict[str, dict[str, int]]
    numeric: dict[str, tuple[float, float]]
    n_records: int
    group_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_GROUP_WEIGHTS))

    # -- fitting -------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        records: Iterable[Mapping[str, Any] | ParsedRecord],
        group_weights: Mapping[str, float] | None = None,
    ) -> Vocabulary:
        import numpy as np  # here, not at the top: parsing records (feedback submit) needs no numpy

        parsed = [r if isinstance(r, ParsedRecord) else parse_record(r) for r in records]
        counts: dict[str, Counter[str]] = {}
        numbers: dict[str, list[float]] = {}
        for rec in parsed:
            for slot, values in rec.categorical.items():
                count = counts.get(slot)
                if count is None:
                    count = counts[slot] = Counter()
                for value in values:  # not Counter.update: its type checks cost more than the counting
                    count[value] += 1
            for slot, number in rec.numeric.items():
                numbers.setdefault(slot, []).append(number)
        categories = {slot: dict(sorted(c.items())) for slot, c in sorted(counts.items())}
        numeric = {slot: (float(np.mean(v)), float(np.std(v)) or 1.0) for slot, v in sorted(numbers.items())}
        weights = dict(DEFAULT_GROUP_WEIGHTS if group_weights is None else group_weights)
        return cls(categories=categories, numeric=numeric, n_records=len(parsed), group_weights=weights)

    # -- layout --------------------------------------------------------------------------
    @property
    def slots(self) -> list[str]:
        return sorted(set(self.categories) | set(self.numeric))

    @property
    def groups(self) -> list[str]:
        return sorted({group_of(s) for s in self.slots} | {"garment_type", "attributes", "colors", "style"})

    @property
    def columns(self) -> list[str]:
        names = [f"{slot}={value}" for slot, values in self.categories.items() for value in values]
        return names + list(self.numeric)

    @property
    def n_features(self) -> int:
        return sum(len(v) for v in self.categories.values()) + len(self.numeric)

    def weight(self, slot: str) -> float:
        """A slot's weight: its own entry, else its group's, else 1."""
        if slot in self.group_weights:
            return float(self.group_weights[slot])
        return float(self.group_weights.get(group_of(slot), 1.0))

    @property
    def schema_hash(self) -> str:
        layout = {"columns": self.columns, "weights": {s: self.weight(s) for s in self.slots}}
        return hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()[:16]

    def frequency(self, slot: str, value: str) -> float:
        """Share of fitted records whose ``slot`` holds ``value`` (0 when never seen)."""
        if self.n_records == 0:
            return 0.0
        return self.categories.get(slot, {}).get(value, 0) / self.n_records

    def _index(self) -> tuple[dict[tuple[str, str], int], dict[str, int], dict[str, int]]:
        cached = getattr(self, "_cached_index", None)
        if cached is None:
            col: dict[tuple[str, str], int] = {}
            i = 0
            for slot, values in self.categories.items():
                for value in values:
                    col[(slot, value)] = i
                    i += 1
            num = {slot: i + j for j, slot in enumerate(self.numeric)}
            slot_pos = {slot: k for k, slot in enumerate(self.slots)}
            cached = (col, num, slot_pos)
            object.__setattr__(self, "_cached_index", cached)
        return cached

    # -- transform -----------------------------------------------------------------------
    def transform(self, records: Sequence[Mapping[str, Any] | ParsedRecord]) -> EncodedBatch:
        """Encode records; values never seen are flagged per group, never silently dropped."""
        import numpy as np

        col, num_col, slot_pos = self._index()
        parsed = [r if isinstance(r, ParsedRecord) else parse_record(r) for r in records]
        n = len(parsed)
        X = np.zeros((n, self.n_features), dtype=np.float32)
        rarity = np.zeros((n, len(slot_pos)), dtype=np.float32)
        unseen = {g: np.zeros(n, dtype=bool) for g in self.groups}
        unseen_values: list[list[tuple[str, str]]] = []
        smoothing = 1.0 / (self.n_records + 1.0)
        weights = {slot: self.weight(slot) for rec in parsed for slot in rec.categorical}
        for i, rec in enumerate(parsed):
            missed: list[tuple[str, str]] = []
            for slot, values in rec.categorical.items():
                w = weights[slot] / math.sqrt(len(values))
                seen_counts = self.categories.get(slot)
                rare = 0.0
                for value in values:
                    j = col.get((slot, value))
                    if j is None:
                        missed.append((slot, value))
                        unseen.setdefault(group_of(slot), np.zeros(n, dtype=bool))[i] = True
                        rare = max(rare, -math.log(smoothing))
                    else:
                        X[i, j] = w
                        freq = (seen_counts[value] + 1.0) / (self.n_records + 1.0) if seen_counts else smoothing
                        rare = max(rare, -math.log(freq))
                k = slot_pos.get(slot)
                if k is not None:
                    rarity[i, k] = rare
            for slot, number in rec.numeric.items():
                j = num_col.get(slot)
                if j is None:
                    missed.append((slot, repr(number)))
                    unseen.setdefault(group_of(slot), np.zeros(n, dtype=bool))[i] = True
                    continue
                mean, std = self.numeric[slot]
                X[i, j] = self.weight(slot) * float(np.clip((number - mean) / std, -3.0, 3.0))
            unseen_values.append(missed)
        return EncodedBatch(X=X, unseen=unseen, unseen_values=unseen_values, rarity=rarity, parsed=parsed)

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": self.categories,
            "numeric": {k: list(v) for k, v in self.numeric.items()},
            "n_records": self.n_records,
            "group_weights": self.group_weights,
            "schema_hash": self.schema_hash,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        vocab = cls(
            categories={k: dict(v) for k, v in data["categories"].items()},
            numeric={k: (float(v[0]), float(v[1])) for k, v in data["numeric"].items()},
            n_records=int(data["n_records"]),
            group_weights=dict(data["group_weights"]),
        )
        if data.get("schema_hash") not in (None, vocab.schema_hash):
            raise ValueError("vocabulary schema hash does not match its content")
        return vocab
