"""Bad input by hand, per endpoint: a 4xx naming the field, in the one error shape, nothing stored.

Each case is sent through the handler the template names (the API Gateway event the local
server builds); afterwards the tables, the bucket and the queues are listed and must be empty.
Cases of a stage switch on when its handler is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from reliability_helpers import error_of, image, nothing_stored, record, records, require_route

from designer_ml import limits

CREATE = ("POST", "/api/ml/style-profile/create")
UPDATE = ("POST", "/api/ml/style-profile/update")
GET_PROFILE = ("GET", "/api/ml/style-profile/{user_id}")
OPTIMIZE = ("POST", "/api/ml/prompt/optimize")
FEEDBACK = ("POST", "/api/ml/feedback/submit")
TRAIN = ("POST", "/api/ml/rlhf/train")
GET_MODEL = ("GET", "/api/ml/rlhf/model/{user_id}")
VALIDATE = ("POST", "/api/ml/validate")
SELECT = ("POST", "/api/ml/select/diverse")
EXPORT = ("GET", "/api/ml/users/{user_id}/export")
DELETE = ("DELETE", "/api/ml/users/{user_id}")

# A valid body of every POST route; each case breaks one thing in it.
VALID: dict[tuple[str, str], dict[str, Any]] = {
    CREATE: {"user_id": "u1", "vlt_records": records(6)},
    UPDATE: {"user_id": "u1", "vlt_records": records(2, start=6)},
    OPTIMIZE: {"user_id": "u1", "base_prompt": "a dress", "vlt_spec": record(0)},
    FEEDBACK: {
        "user_id": "u1",
        "generation_id": "g1",
        "asset_id": "a1",
        "feedback_type": "like",
        "prompt_used": "a dress",
        "vlt_spec": record(0),
        "quality_score": 0.8,
    },
    TRAIN: {"user_id": "u1"},
    VALIDATE: {"generation_id": "g1", "images": [image(0), image(1)], "target_vlt": record(0)},
    SELECT: {"images": [image(i) for i in range(4)], "target_count": 2},
}
WITH_USER_ID = [CREATE, UPDATE, OPTIMIZE, FEEDBACK, TRAIN]
PATH_USER_ID = [GET_PROFILE, GET_MODEL, EXPORT, DELETE]
# Where a VLT record sits in each body that carries one (path of keys and indexes).
VLT_AT: dict[tuple[str, str], tuple[Any, ...]] = {
    CREATE: ("vlt_records", 0),
    OPTIMIZE: ("vlt_spec",),
    FEEDBACK: ("vlt_spec",),
    VALIDATE: ("target_vlt",),
    SELECT: ("images", 0, "vlt"),
}


@dataclass(frozen=True)
class Case:
    """One bad request: the route, the body (``raw`` text or a JSON ``body``), what must come back."""

    name: str
    route: tuple[str, str]
    statuses: tuple[int, ...]
    names: tuple[str, ...]
    body: Any = None
    raw: str | None = None
    path: str | None = None
    content_type: str = "application/json"

    @property
    def id(self) -> str:
        return f"{self.route[0]} {self.route[1]}: {self.name}"


def _with(route: tuple[str, str], **changes: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(VALID[route]))
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


_DROP = object()


def _set_in(body: dict[str, Any], at: tuple[Any, ...], value: Any) -> dict[str, Any]:
    target: Any = body
    for step in at[:-1]:
        target = target[step]
    target[at[-1]] = value
    return body


def _field(at: tuple[Any, ...]) -> str:
    text = ""
    for step in at:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _cases() -> list[Case]:
    cases: list[Case] = []
    for route in VALID:
        text = json.dumps(VALID[route])
        cases += [
            Case("not JSON", route, (400,), ("body",), raw="{not json"),
            Case("JSON sent as text/plain", route, (415,), ("body", "text/plain"), raw=text, content_type="text/plain"),
            Case(
                "multipart without a boundary",
                route,
                (415,),
                ("body", "multipart/form-data"),
                raw=text,
                content_type="multipart/form-data",
            ),
            Case("a form", route, (415,), ("body",), raw="a=1", content_type="application/x-www-form-urlencoded"),
            Case("empty body", route, (400, 422), ("body",), raw=""),
            Case("a JSON list, not an object", route, (422,), ("body",), raw="[]"),
            Case("NaN", route, (400,), ("body", "NaN"), raw=text[:-1] + ', "x": NaN}'),
            Case("Infinity", route, (400,), ("body", "Infinity"), raw=text[:-1] + ', "x": -Infinity}'),
            Case(
                "over-size body",
                route,
                (413,),
                ("body", str(limits.MAX_BODY_BYTES)),
                raw=text[:-1] + ', "padding": "' + "x" * limits.MAX_BODY_BYTES + '"}',
            ),
        ]
    for route in WITH_USER_ID:
        cases += [
            Case("user_id ../", route, (422,), ("user_id",), body=_with(route, user_id="../../etc/passwd")),
            Case("user_id over-long", route, (422,), ("user_id",), body=_with(route, user_id="u" * 129)),
            Case("user_id a number", route, (422,), ("user_id",), body=_with(route, user_id=123)),
            Case("user_id empty", route, (422,), ("user_id",), body=_with(route, user_id="")),
            Case("user_id missing", route, (422,), ("user_id",), body=_with(route, user_id=_DROP)),
        ]
    for route in PATH_USER_ID:
        template = route[1]
        cases += [
            Case("user_id over-long", route, (422,), ("user_id",), path=template.replace("{user_id}", "u" * 129)),
            Case("user_id with a backslash", route, (422,), ("user_id",), path=template.replace("{user_id}", "..%5Cx")),
            Case("user_id with a space", route, (422,), ("user_id",), path=template.replace("{user_id}", "a%20b")),
        ]
    for route, at in VLT_AT.items():
        field = _field(at)
        cases += [
            Case("VLT not an object", route, (422,), (field,), body=_set_in(_with(route), at, "dress")),
            Case(
                "VLT value over-long",
                route,
                (422,),
                (field,),
                body=_set_in(_with(route), at, {**record(0), "garment_type": "d" * (limits.MAX_VALUE_CHARS + 1)}),
            ),
            Case(
                "VLT with too many keys",
                route,
                (422,),
                (field,),
                body=_set_in(
                    _with(route), at, {**record(0), "details": {f"k{i}": i for i in range(limits.MAX_VLT_KEYS)}}
                ),
            ),
            Case(
                "VLT number too large to store",
                route,
                (422,),
                (field,),
                body=_set_in(_with(route), at, {**record(0), "confidence": 1e126}),
            ),
            Case(
                "VLT integer with too many digits to store",
                route,
                (422,),
                (field,),
                body=_set_in(_with(route), at, {**record(0), "count": 10**40}),
            ),
            Case(
                "VLT number overflowing to infinity",
                route,
                (422,),
                (field,),
                raw=json.dumps(_set_in(_with(route), at, {**record(0), "confidence": 12345.0})).replace(
                    "12345.0", "1e400"
                ),
            ),
        ]
    cases += [
        # portfolio records
        Case("records missing", CREATE, (422,), ("vlt_records",), body=_with(CREATE, vlt_records=_DROP)),
        Case("records empty", CREATE, (422,), ("vlt_records",), body=_with(CREATE, vlt_records=[])),
        Case("records not a list", CREATE, (422,), ("vlt_records",), body=_with(CREATE, vlt_records={"r1": record(1)})),
        Case(
            "too many records",
            CREATE,
            (413,),
            ("vlt_records", str(limits.MAX_RECORDS)),
            body=_with(
                CREATE, vlt_records=[{"id": str(i), "garment_type": "dress"} for i in range(limits.MAX_RECORDS + 1)]
            ),
        ),
        Case(
            "too many records",
            UPDATE,
            (413,),
            ("vlt_records", str(limits.MAX_RECORDS)),
            body=_with(
                UPDATE, vlt_records=[{"id": str(i), "garment_type": "dress"} for i in range(limits.MAX_RECORDS + 1)]
            ),
        ),
        Case(
            "duplicate record ids",
            CREATE,
            (422,),
            ("vlt_records[1]", "r0"),
            body=_with(CREATE, vlt_records=[record(0), record(0)] + records(4, start=1)),
        ),
        Case(
            "duplicate record ids",
            UPDATE,
            (422,),
            ("vlt_records[1]", "r6"),
            body=_with(UPDATE, vlt_records=[record(6), record(6)]),
        ),
        Case(
            "record without id",
            CREATE,
            (422,),
            ("vlt_records[0].id",),
            body=_with(CREATE, vlt_records=[{"garment_type": "dress"}] + records(4, 1)),
        ),
        Case("n_clusters 0", CREATE, (422,), ("n_clusters",), body=_with(CREATE, n_clusters=0)),
        Case("n_clusters 11", CREATE, (422,), ("n_clusters",), body=_with(CREATE, n_clusters=11)),
        Case("n_clusters a word", CREATE, (422,), ("n_clusters",), body=_with(CREATE, n_clusters="five")),
        Case("n_clusters a fraction", CREATE, (422,), ("n_clusters",), body=_with(CREATE, n_clusters=2.5)),
        Case(
            "records with nothing usable",
            CREATE,
            (422,),
            ("vlt_records",),
            body=_with(CREATE, vlt_records=[{"id": f"e{i}", "garment_type": None, "attributes": {}} for i in range(6)]),
        ),
        # optimize
        Case("vlt_spec missing", OPTIMIZE, (422,), ("vlt_spec",), body=_with(OPTIMIZE, vlt_spec=_DROP)),
        Case("n_candidates 0", OPTIMIZE, (422,), ("n_candidates",), body=_with(OPTIMIZE, n_candidates=0)),
        Case(
            "n_candidates over the limit",
            OPTIMIZE,
            (422,),
            ("n_candidates",),
            body=_with(OPTIMIZE, n_candidates=limits.MAX_CANDIDATES + 1),
        ),
        Case("seed negative", OPTIMIZE, (422,), ("seed",), body=_with(OPTIMIZE, seed=-1)),
        Case("explore a word", OPTIMIZE, (422,), ("explore",), body=_with(OPTIMIZE, explore="sometimes")),
        Case("base_prompt a list", OPTIMIZE, (422,), ("base_prompt",), body=_with(OPTIMIZE, base_prompt=["a", "b"])),
        Case(
            "base_prompt over-long",
            OPTIMIZE,
            (422,),
            ("base_prompt",),
            body=_with(OPTIMIZE, base_prompt="p" * (limits.MAX_PROMPT_CHARS + 1)),
        ),
        Case(
            "too much feedback history",
            OPTIMIZE,
            (413,),
            ("feedback_history", str(limits.MAX_FEEDBACK_HISTORY)),
            body=_with(OPTIMIZE, feedback_history=[{"feedback_type": "like"}] * (limits.MAX_FEEDBACK_HISTORY + 1)),
        ),
        Case(
            "unknown feedback_type in history",
            OPTIMIZE,
            (422,),
            ("feedback_history[0].feedback_type",),
            body=_with(OPTIMIZE, feedback_history=[{"feedback_type": "love"}]),
        ),
        # feedback
        Case("unknown feedback_type", FEEDBACK, (422,), ("feedback_type",), body=_with(FEEDBACK, feedback_type="love")),
        Case("feedback_type missing", FEEDBACK, (422,), ("feedback_type",), body=_with(FEEDBACK, feedback_type=_DROP)),
        Case("quality_score above 1", FEEDBACK, (422,), ("quality_score",), body=_with(FEEDBACK, quality_score=1.5)),
        Case(
            "decision probability 0",
            FEEDBACK,
            (422,),
            ("decision.chosen_probability",),
            body=_with(FEEDBACK, decision={"chosen_probability": 0, "served": "model"}),
        ),
        Case(
            "decision served unknown",
            FEEDBACK,
            (422,),
            ("decision.served",),
            body=_with(FEEDBACK, decision={"chosen_probability": 0.5, "served": "someone"}),
        ),
        Case(
            "decision probability true",
            FEEDBACK,
            (422,),
            ("decision.chosen_probability",),
            body=_with(FEEDBACK, decision={"chosen_probability": True, "served": "model"}),
        ),
        Case("decision a list", FEEDBACK, (422,), ("decision",), body=_with(FEEDBACK, decision=[0.5])),
        Case("quality_score true", FEEDBACK, (422,), ("quality_score",), body=_with(FEEDBACK, quality_score=True)),
        Case("explore as text", OPTIMIZE, (422,), ("explore",), body=_with(OPTIMIZE, explore="true")),
        Case("n_clusters true", CREATE, (422,), ("n_clusters",), body=_with(CREATE, n_clusters=True)),
        Case("quality_score a word", FEEDBACK, (422,), ("quality_score",), body=_with(FEEDBACK, quality_score="high")),
        Case("asset_id missing", FEEDBACK, (422,), ("asset_id",), body=_with(FEEDBACK, asset_id=_DROP)),
        Case(
            "generation_id an object",
            FEEDBACK,
            (422,),
            ("generation_id",),
            body=_with(FEEDBACK, generation_id={"id": 1}),
        ),
        Case(
            "prompt_used over-long",
            FEEDBACK,
            (422,),
            ("prompt_used",),
            body=_with(FEEDBACK, prompt_used="p" * (limits.MAX_PROMPT_CHARS + 1)),
        ),
        # validate
        Case(
            "image without its VLT",
            VALIDATE,
            (422,),
            ("images[1]",),
            body=_with(VALIDATE, images=[image(0), {"id": "img1"}]),
        ),
        Case(
            "image with a null VLT",
            VALIDATE,
            (422,),
            ("images[0]",),
            body=_with(VALIDATE, images=[{"id": "img0", "vlt": None}]),
        ),
        Case("target_vlt missing", VALIDATE, (422,), ("target_vlt",), body=_with(VALIDATE, target_vlt=_DROP)),
        Case("images empty", VALIDATE, (422,), ("images",), body=_with(VALIDATE, images=[])),
        Case(
            "duplicate image ids",
            VALIDATE,
            (422,),
            ("images[1]", "img0"),
            body=_with(VALIDATE, images=[image(0), image(0)]),
        ),
        Case(
            "too many images",
            VALIDATE,
            (413,),
            ("images", str(limits.MAX_VALIDATE_IMAGES)),
            body=_with(VALIDATE, images=[image(i) for i in range(limits.MAX_VALIDATE_IMAGES + 1)]),
        ),
        Case(
            "threshold above 1",
            VALIDATE,
            (422,),
            ("consistency_threshold",),
            body=_with(VALIDATE, consistency_threshold=2),
        ),
        Case("user_id ../", VALIDATE, (422,), ("user_id",), body=_with(VALIDATE, user_id="../x")),
        # select
        Case("target_count 0", SELECT, (422,), ("target_count",), body=_with(SELECT, target_count=0)),
        Case("target_count negative", SELECT, (422,), ("target_count",), body=_with(SELECT, target_count=-3)),
        Case("target_count a word", SELECT, (422,), ("target_count",), body=_with(SELECT, target_count="two")),
        Case("target_count missing", SELECT, (422,), ("target_count",), body=_with(SELECT, target_count=_DROP)),
        Case("target_count true", SELECT, (422,), ("target_count",), body=_with(SELECT, target_count=True)),
        Case(
            "diversity_weight as text",
            SELECT,
            (422,),
            ("diversity_weight",),
            body=_with(SELECT, diversity_weight="0.5"),
        ),
        Case("diversity_weight true", SELECT, (422,), ("diversity_weight",), body=_with(SELECT, diversity_weight=True)),
        Case("unknown method", SELECT, (422,), ("method",), body=_with(SELECT, method="random")),
        Case("diversity_weight above 1", SELECT, (422,), ("diversity_weight",), body=_with(SELECT, diversity_weight=7)),
        Case(
            "diversity_weight overflowing to infinity",
            SELECT,
            (422,),
            ("diversity_weight",),
            raw=json.dumps(_with(SELECT, diversity_weight=0.4321)).replace("0.4321", "1e400"),
        ),
        Case(
            "image without its VLT",
            SELECT,
            (422,),
            ("images[0]",),
            body=_with(SELECT, images=[{"id": "img0", "quality_score": 0.3}]),
        ),
        Case(
            "duplicate image ids",
            SELECT,
            (422,),
            ("images[1]", "img0"),
            body=_with(SELECT, images=[image(0), image(0), image(2)]),
        ),
        Case(
            "image quality a word",
            SELECT,
            (422,),
            ("images[0].quality_score",),
            body=_with(SELECT, images=[{**image(0), "quality_score": "high"}]),
        ),
        Case("images not a list", SELECT, (422,), ("images",), body=_with(SELECT, images={"a": image(0)})),
        Case(
            "too many images",
            SELECT,
            (413,),
            ("images", str(limits.MAX_SELECT_IMAGES)),
            body=_with(
                SELECT,
                images=[{"id": str(i), "vlt": {"garment_type": "dress"}} for i in range(limits.MAX_SELECT_IMAGES + 1)],
            ),
        ),
        Case("user_id over-long", SELECT, (422,), ("user_id",), body=_with(SELECT, user_id="u" * 129)),
    ]
    # image embeddings: on portfolio records, generated images and select candidates
    for route, at in (
        (CREATE, ("vlt_records", 3)),
        (UPDATE, ("vlt_records", 1)),
        (VALIDATE, ("images", 1)),
        (SELECT, ("images", 3)),
    ):
        field = _field(at) + ".embedding"
        host = _field(at[:1])

        def embed(value: Any, route: tuple[str, str] = route, at: tuple[Any, ...] = at) -> dict[str, Any]:
            body = _with(route)
            target = body[at[0]][at[1]]
            target["embedding"] = value
            return body

        def two_dims(route: tuple[str, str] = route, at: tuple[Any, ...] = at) -> dict[str, Any]:
            body = _with(route)
            body[at[0]][0]["embedding"] = [0.1, 0.2, 0.3]
            body[at[0]][at[1]]["embedding"] = [0.1, 0.2]
            return body

        cases += [
            Case("embedding empty", route, (422,), (field,), body=embed([])),
            Case("embedding not a list", route, (422,), (field,), body=embed("0.1 0.2")),
            Case("embedding with a word", route, (422,), (field, "[1]"), body=embed([0.1, "x"])),
            Case("embedding with true", route, (422,), (field, "[0]"), body=embed([True, 0.2])),
            Case("embedding with null", route, (422,), (field, "[1]"), body=embed([0.1, None])),
            Case("embedding number too large", route, (422,), (field, "[0]"), body=embed([1e200, 0.2])),
            Case(
                "embedding overflowing to infinity",
                route,
                (422,),
                (field,),
                raw=json.dumps(embed([0.4321, 0.2])).replace("0.4321", "1e400"),
            ),
            Case(
                "embedding over the dimension limit",
                route,
                (422,),
                (field, str(limits.MAX_EMBEDDING_DIM)),
                body=embed([0.0] * (limits.MAX_EMBEDDING_DIM + 1)),
            ),
            Case("embeddings of two dimensions", route, (422,), (field, f"{host}[0].embedding"), body=two_dims()),
        ]
    return cases


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_4xx_naming_the_field_and_nothing_is_stored(case: Case, aws_env: Any, call: Any) -> None:
    # Given the handler of the route, on empty tables, bucket and queues
    function = require_route(*case.route)
    method = case.route[0]
    path = case.path or case.route[1]

    # When the bad request is sent
    status, answer = call(function, method, path, body=case.body, raw=case.raw, content_type=case.content_type)

    # Then a 4xx in the one error shape names what is wrong
    assert status in case.statuses, (status, answer)
    error = error_of({"body": json.dumps(answer)})
    for name in case.names:
        assert name in error["message"], (name, error)
    # And nothing was stored, anywhere
    assert nothing_stored(aws_env) == {}


def test_every_served_post_route_has_bad_input_cases() -> None:
    # Given the POST routes of the template whose handler exists
    from reliability_helpers import served_routes

    posts = {route for route in served_routes() if route[0] == "POST"}
    # When compared with the routes the cases cover
    # Then no served route escapes the bad-input cases
    assert posts <= set(VALID), f"add cases for {posts - set(VALID)}"
