"""Request and response models of every endpoint (API.md); the OpenAPI document comes from them.

Request bodies are exactly what the seed's Node.js client sends, plus optional fields.
Response models allow extra fields so a stage can add what users expect without a schema break.

Cold start (bench/bench_coldstart.py): the annotations are evaluated as the classes are created,
not kept as strings (no ``from __future__ import annotations``), because pydantic would otherwise
``eval`` each one; and every model defers its validator until first use, because each function
imports all of them and uses a few. Together ~12 ms less of every serving function's import.
"""

import math
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from designer_ml import limits


class ApiModel(BaseModel):
    """Every request and response model: built on first use (see the module docstring)."""

    model_config = ConfigDict(defer_build=True)


USER_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"

UserId = Annotated[
    str,
    Field(
        pattern=USER_ID_PATTERN, min_length=1, max_length=128, description="The designer's id", examples=["user_123"]
    ),
]


# A user_id in a route's path ("/api/ml/style-profile/{user_id}"), checked like the body field.
UserIdPath = Annotated[str, Path(pattern=USER_ID_PATTERN, max_length=128, description="The designer's id")]


def _id_to_str(value: Any) -> Any:
    # The Node side sends numeric ids as often as strings; both name the same record.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    return value


RECORD_ID_DESCRIPTION = "Record or image id (an integer is taken as its string)"

# The document says what is accepted: a string, or an integer (the seed's records carry either).
# Documented as a string only, clients typed from it refused what the service takes, and
# schemathesis's coverage phase found integer ids "accepted against the schema".
RecordId = Annotated[
    str,
    BeforeValidator(_id_to_str),
    Field(min_length=1, max_length=256, description=RECORD_ID_DESCRIPTION),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "minLength": 1, "maxLength": 256}, {"type": "integer"}],
            "description": RECORD_ID_DESCRIPTION,
        }
    ),
]
# An optional one, documented flat (a nested anyOf loses the limits in API.md and index.d.ts).
OptionalRecordId = Annotated[
    RecordId | None,
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "minLength": 1, "maxLength": 256}, {"type": "integer"}, {"type": "null"}],
            "description": RECORD_ID_DESCRIPTION,
        }
    ),
]


def _number_only(value: Any) -> Any:
    # Lax pydantic reads true as 1 and "0.5" as 0.5; the documented type is a JSON number
    # (schemathesis found `"diversity_weight": true` answered 200).
    if isinstance(value, bool | str):
        raise ValueError(f"must be a number, not {type(value).__name__}")
    return value


Number = BeforeValidator(_number_only)
Unit = Annotated[float, Number, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


MAX_NUMBER = 1e125


def _valid_leaf(value: Any) -> bool:
    # JSON numbers past float range (1e400) parse as infinity, and DynamoDB stores numbers up to
    # 9.9e125 with 38 digits: a record holding a larger one could never be stored.
    if isinstance(value, str):
        return len(value) <= limits.MAX_VALUE_CHARS
    if isinstance(value, float):
        return math.isfinite(value) and abs(value) <= MAX_NUMBER
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) < 10**38
    return True


def _walk_record(data: Any) -> tuple[int, bool]:
    """(how many keys, lists and values ``data`` holds, whether every value is valid), in one
    walk that builds no paths: select validates 200 records a request, and a recursive walk
    naming every value's path was ~1/4 of its CPU."""
    nodes = 0
    valid = True
    stack = [data]
    while stack:
        value = stack.pop()
        nodes += 1
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif valid:
            valid = _valid_leaf(value)
    return nodes, valid


def _check_values(value: Any, path: str) -> None:
    """Raise naming the path of the first value :func:`_valid_leaf` refuses."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_values(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_values(v, f"{path}[{i}]")
    elif not _valid_leaf(value):
        if isinstance(value, str):
            raise ValueError(f"{path}: value longer than {limits.MAX_VALUE_CHARS} characters")
        if isinstance(value, float):
            raise ValueError(f"{path}: number out of range (at most {MAX_NUMBER:g} in magnitude)")
        raise ValueError(f"{path}: number out of range (at most 38 digits)")


def _embedding_values(value: Any) -> Any:
    # Checked here rather than by list[float] so the message says which element is wrong and why
    # (lax pydantic would also read true as 1.0 and "0.5" as 0.5).
    if not isinstance(value, list):
        raise ValueError(f"must be an array of numbers, not {type(value).__name__}")
    for j, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"[{j}] must be a number, not {type(v).__name__}")
        if not (math.isfinite(v) and abs(v) <= MAX_NUMBER):
            raise ValueError(f"[{j}] must be a finite number of at most {MAX_NUMBER:g} in magnitude")
    return value


Embedding = Annotated[
    list[float],
    BeforeValidator(_embedding_values),
    Field(
        min_length=1,
        max_length=limits.MAX_EMBEDDING_DIM,
        description=(
            "Optional image embedding from the image analysis (finite numbers, one dimension for every record and "
            "image of a designer). Used by the style modes, the off-style check and the diverse selection "
            "when present; everything works without it."
        ),
    ),
]


def _same_dimension(items: list[Any], field: str) -> None:
    """Every embedding in ``items`` has one dimension (items without one are fine)."""
    first: tuple[str, int] | None = None
    for i, item in enumerate(items):
        embedding = getattr(item, "embedding", None)
        if embedding is None:
            continue
        if first is None:
            first = (f"{field}[{i}].embedding", len(embedding))
        elif len(embedding) != first[1]:
            raise ValueError(
                f"{field}[{i}].embedding: {len(embedding)} dimensions, but {first[0]} has {first[1]}; "
                "every embedding of a request has the same dimension"
            )


class VLTRecord(ApiModel):
    """The attribute analysis of one garment image. Any group may be missing or null; extra
    groups and keys are kept and become features."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "id": "1",
                    "garment_type": "dress",
                    "attributes": {"silhouette": "A-line", "neckline": "V-neck", "sleeveLength": "sleeveless"},
                    "colors": {"primary": "black", "finish": "matte"},
                    "style": {"overall": "elegant", "mood": "sophisticated"},
                }
            ]
        },
    )

    id: OptionalRecordId = None
    garment_type: str | list[str] | None = Field(default=None, max_length=limits.MAX_VALUE_CHARS)
    attributes: dict[str, Any] | None = None
    colors: dict[str, Any] | None = None
    style: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _bounded(self) -> "VLTRecord":
        # What raw() gives, without serialising: a declared embedding is checked by its own
        # type (its numbers are not VLT keys); one sent to a model without it is an extra key.
        data = {name: getattr(self, name) for name in type(self).model_fields if name != "embedding"}
        data.update(self.model_extra or {})
        nodes, all_valid = _walk_record(data)
        if nodes > limits.MAX_VLT_KEYS:
            raise ValueError(f"record has more than {limits.MAX_VLT_KEYS} keys and values")
        if not all_valid:
            _check_values(data, "record")  # again, for the path of the bad value
        return self

    def raw(self) -> dict[str, Any]:
        """The record as the client sent it (extra keys included), for the encoder."""
        data = self.model_dump(exclude_none=False)
        if "embedding" in data and data["embedding"] is None:
            del data["embedding"]  # absent stays absent: stored records are what they were without it
        return data


class PortfolioRecord(VLTRecord):
    """A portfolio record: like a VLT record, but its id is required (assignments are keyed by it)."""

    id: RecordId
    embedding: Embedding | None = None


def _unique_ids(items: list[Any], field: str) -> None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.id in seen:
            raise ValueError(f"{field}[{i}]: duplicate id {item.id!r}")
        seen.add(item.id)


# --- common -----------------------------------------------------------------------------------


class ErrorBody(ApiModel):
    code: str = Field(description="Machine-readable error code", examples=["validation_error"])
    message: str = Field(description="What went wrong, naming the field")
    details: list[dict[str, Any]] = Field(default_factory=list)
    request_id: str | None = None


class ErrorResponse(ApiModel):
    """The one error shape of every endpoint."""

    error: ErrorBody


class Health(ApiModel):
    status: Literal["ok"] = "ok"
    version: str


# --- stage 2: style profile -------------------------------------------------------------------


class CreateProfileRequest(ApiModel):
    user_id: UserId
    vlt_records: list[PortfolioRecord] = Field(min_length=1, max_length=limits.MAX_RECORDS)
    n_clusters: Annotated[int | None, Number] = Field(
        default=None, ge=1, le=10, description="null: chosen by BIC over 3..7"
    )

    @model_validator(mode="after")
    def _ids(self) -> "CreateProfileRequest":
        _unique_ids(self.vlt_records, "vlt_records")
        _same_dimension(self.vlt_records, "vlt_records")
        return self


class UpdateProfileRequest(ApiModel):
    user_id: UserId
    vlt_records: list[PortfolioRecord] = Field(min_length=1, max_length=limits.MAX_RECORDS)

    @model_validator(mode="after")
    def _ids(self) -> "UpdateProfileRequest":
        _unique_ids(self.vlt_records, "vlt_records")
        _same_dimension(self.vlt_records, "vlt_records")
        return self


class Cluster(ApiModel):
    model_config = ConfigDict(extra="allow")

    id: int
    size: int
    percentage: float
    dominant_attributes: dict[str, list[Any]] = Field(
        description="slot -> [value, count], the most common value of each slot in this mode"
    )
    style_summary: str


class FeatureImportance(ApiModel):
    attribute: str
    importance: float


class Profile(ApiModel):
    model_config = ConfigDict(extra="allow")

    user_id: str
    version: int
    n_clusters: int
    n_records: int
    clusters: list[Cluster]
    assignments: dict[str, int]
    feature_importance: list[FeatureImportance] = Field(default_factory=list)
    statistics: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    created_at: str
    updated_at: str


class ProfileResponse(ApiModel):
    model_config = ConfigDict(extra="allow")

    profile: Profile


# --- stage 5: prompt optimisation -------------------------------------------------------------


class FeedbackHistoryItem(ApiModel):
    model_config = ConfigDict(extra="allow")

    feedback_type: Literal["like", "dislike", "outlier"] | None = None
    prompt_used: str | None = Field(default=None, max_length=limits.MAX_PROMPT_CHARS)
    vlt_spec: VLTRecord | None = None
    quality_score: Unit | None = None


class OptimizeRequest(ApiModel):
    user_id: UserId
    base_prompt: str | None = Field(default=None, max_length=limits.MAX_PROMPT_CHARS)
    vlt_spec: VLTRecord
    style_profile: dict[str, Any] | None = None
    feedback_history: list[FeedbackHistoryItem] | None = Field(default=None, max_length=limits.MAX_FEEDBACK_HISTORY)
    n_candidates: Annotated[int | None, Number] = Field(default=None, ge=1, le=limits.MAX_CANDIDATES)
    explore: Annotated[bool, Field(strict=True)] = True
    seed: Annotated[int | None, Number] = Field(default=None, ge=0, le=2**32 - 1)


class RlhfAdjustment(ApiModel):
    model_config = ConfigDict(extra="allow")

    phrase: str
    action: Literal["added", "dropped", "kept"]
    weight: float


class Adjustments(ApiModel):
    model_config = ConfigDict(extra="allow")

    cluster: int | None = None
    rlhf: list[RlhfAdjustment] = Field(default_factory=list)
    coverage: list[Any] = Field(default_factory=list)
    persona: Any = None


class OptimizeMetadata(ApiModel):
    model_config = ConfigDict(extra="allow")

    cluster_used: int | None = None
    style_mode: str | None = None
    reward_model_version: int | None = None
    candidates_scored: int
    policy: Literal["thompson", "ucb", "greedy"]
    seed: int | None = None
    chosen_probability: float | None = None
    served: Literal["base", "model"] | None = Field(
        default=None, description="Whether the prompt is the base prompt (apprentice mode) or the model's choice."
    )


class OptimizeResponse(ApiModel):
    model_config = ConfigDict(extra="allow")

    prompt: str
    negative_prompt: str
    confidence: float
    improvement: float
    adjustments: Adjustments
    metadata: OptimizeMetadata


# --- stage 10: feedback -----------------------------------------------------------------------


class LoggedDecision(ApiModel):
    """How the prompt of this feedback was chosen: the optimize answer's ``metadata``, sent back
    as is (other keys are ignored). Lets the service evaluate its policy off-line."""

    model_config = ConfigDict(extra="ignore")

    # Optional, as in OptimizeMetadata, so that `decision: answer.metadata` type-checks; an
    # event is logged for off-policy evaluation only when both are there.
    chosen_probability: Annotated[float | None, Number] = Field(default=None, gt=0.0, le=1.0)
    served: Literal["base", "model"] | None = None


class FeedbackRequest(ApiModel):
    user_id: UserId
    generation_id: RecordId
    asset_id: RecordId
    feedback_type: Literal["like", "dislike", "outlier"]
    prompt_used: str | None = Field(default=None, max_length=limits.MAX_PROMPT_CHARS)
    vlt_spec: VLTRecord | None = None
    quality_score: Unit | None = None
    decision: LoggedDecision | None = Field(
        default=None,
        description="Optional: the metadata of the optimize answer whose prompt this is (for off-policy evaluation).",
    )


class FeedbackResponse(ApiModel):
    feedback_id: str
    queued: bool
    duplicate: bool


class TrainRequest(ApiModel):
    user_id: UserId


class TrainResponse(ApiModel):
    queued: bool


class PhraseWeight(ApiModel):
    phrase: str
    weight: float


class RewardModelInfo(ApiModel):
    model_config = ConfigDict(extra="allow")

    user_id: str
    version: int
    n_events: int
    metrics: dict[str, Any] = Field(default_factory=dict)
    likes_most: list[PhraseWeight] = Field(default_factory=list)
    dislikes_most: list[PhraseWeight] = Field(default_factory=list)
    updated_at: str | None = None


# --- stage 8: validation ----------------------------------------------------------------------


class ImageIn(ApiModel):
    model_config = ConfigDict(extra="allow")

    id: RecordId
    vlt: VLTRecord
    url: str | None = Field(default=None, max_length=2048)
    quality_score: Unit | None = None
    embedding: Embedding | None = None


class ValidateRequest(ApiModel):
    generation_id: OptionalRecordId = None
    images: list[ImageIn] = Field(min_length=1, max_length=limits.MAX_VALIDATE_IMAGES)
    target_vlt: VLTRecord
    user_id: UserId | None = None
    consistency_threshold: Unit = 0.6

    @field_validator("images", mode="before")
    @classmethod
    def _vlt_present(cls, images: Any) -> Any:
        if isinstance(images, list):
            for i, image in enumerate(images):
                if isinstance(image, dict) and image.get("vlt") is None:
                    raise ValueError(f"images[{i}] (id {image.get('id')!r}): missing its vlt analysis")
        return images

    @model_validator(mode="after")
    def _ids(self) -> "ValidateRequest":
        _unique_ids(self.images, "images")
        _same_dimension(self.images, "images")
        return self


class ImageValidation(ApiModel):
    model_config = ConfigDict(extra="allow")

    image_id: str
    consistency_score: float
    is_outlier: bool = Field(description="Off-style by the designer's style model; false when no style check ran.")
    outlier_score: float | None = Field(description="The style model's score; null when no style check ran.")
    is_rejected: bool
    reasons: list[str]
    attribute_matches: dict[str, bool]
    vlt_analysis: dict[str, Any]


class ValidationSummary(ApiModel):
    model_config = ConfigDict(extra="allow")

    total: int
    passed: int
    rejected: int
    avg_consistency: float


class ValidateResponse(ApiModel):
    model_config = ConfigDict(extra="allow")

    validations: list[ImageValidation]
    summary: ValidationSummary
    outliers: list[ImageValidation]
    warnings: list[str] = Field(default_factory=list)


# --- stage 9: diverse selection ---------------------------------------------------------------


class SelectRequest(ApiModel):
    # repr=False: Powertools logs f"{route_args}" eagerly (even at INFO), and the repr of 200
    # images cost ~3 ms of the 15 ms select budget.
    images: list[ImageIn] = Field(min_length=1, max_length=limits.MAX_SELECT_IMAGES, repr=False)
    target_count: Annotated[int, Number] = Field(
        ge=1,
        le=limits.MAX_SELECT_IMAGES,
        description="Images to select; more than the pool selects the whole pool, ranked, with a warning.",
    )
    diversity_weight: Unit = Field(
        default=0.7,
        description=(
            "Weight of diversity in the DPP objective quality_weight*sum(u_i) + diversity_weight*log det S_Y "
            "(S: attribute similarity of the selected images). Only the ratio of the two weights matters: "
            "L = diag(q) S diag(q), q_i = exp(a*u_i), a = quality_weight / (2*max(diversity_weight, 0.01)), "
            "positive semidefinite for every pair. 0: quality decides, diversity only breaks near-ties."
        ),
    )
    quality_weight: Unit = Field(
        default=0.3,
        description=(
            "Weight of image quality u_i: quality_score (0.5 when absent), averaged with the designer's learned "
            "reward when user_id has one. 0: quality is ignored."
        ),
    )
    user_id: UserId | None = Field(
        default=None,
        description=(
            "Designer whose reward model refines quality and whose style modes define coverage.gaps; the gaps "
            "are stored on the profile for the next optimize."
        ),
    )
    method: Literal["greedy", "sample"] = Field(
        default="greedy",
        description=(
            "greedy: deterministic greedy MAP (Chen, Zhang and Zhou 2018), the default; sample: one exact "
            "k-DPP sample of exactly target_count images."
        ),
    )
    seed: Annotated[int | None, Number] = Field(
        default=None, ge=0, le=2**32 - 1, description="Seed of method sample; echoed in metadata.seed."
    )

    @model_validator(mode="after")
    def _ids(self) -> "SelectRequest":
        _unique_ids(self.images, "images")
        _same_dimension(self.images, "images")
        return self


class Coverage(ApiModel):
    model_config = ConfigDict(extra="allow")

    per_attribute: dict[str, Any]
    gaps: list[Any]


class SelectResponse(ApiModel):
    model_config = ConfigDict(extra="allow")

    selected: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    diversity_score: float
    coverage: Coverage
    warnings: list[str] = Field(default_factory=list)


# --- a designer's data ------------------------------------------------------------------------


class UserExport(ApiModel):
    """Everything stored about one designer."""

    model_config = ConfigDict(extra="allow")

    user_id: str
    profile: dict[str, Any] | None
    records: dict[str, Any]
    feedback: list[dict[str, Any]]
    model_artifacts: list[str]


class UserDeletion(ApiModel):
    user_id: str
    deleted: dict[str, int] = Field(description="Items and objects removed, by kind")
