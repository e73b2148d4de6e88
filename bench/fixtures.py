"""Shared setup of the serving benchmarks: a moto backend, a designer with stored models, requests.

- ``backend()``: a moto server on a free loopback port holding template.yaml's tables, bucket
  and queues (``local.cloud``, as the tests and the local server do), this process's
  environment pointed at it; yields a :class:`Backend` (endpoint, environment, function specs).
- ``seed_user(backend, user_id)``: stores what a designer has after onboarding, through the
  stages' own handlers as they exist: a style profile (ProfileFunction create), feedback events
  (FeedbackFunction submit) and a trained reward model (RetrainFunction on the queued messages).
  Beside them, the seed's models (scikit-learn estimators, pickled to S3) for the reference.
- ``request_body(function, user_id, i)``: the typical request of each serving function.
- ``seed_way(function, body, models)``: the same request answered the seed's way (scikit-learn
  models in memory, dppy), for the reference figures.

Module level imports only the standard library: the cold-start reference process imports this
module before it imports scikit-learn, and nothing here may blur its timings.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import random
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PREFIX = "designer-ml-bench"
REGION = "us-east-1"
USER = "bench_user"
# Serving functions, as docs/LAYOUT.md names them; ProfileFunction and RetrainFunction train.
SERVING = ("OptimizeFunction", "ValidateFunction", "SelectFunction", "FeedbackFunction")
SEED_WAY_PREFIX = "bench-seedway"
FORBIDDEN = ("sklearn", "scipy", "skl2onnx", "dppy", "matplotlib")

SLOTS: dict[str, list[str]] = {
    "garment_type": ["dress", "skirt", "top", "pants", "jacket", "coat", "jumpsuit", "blouse"],
    "attributes.silhouette": ["A-line", "fitted", "oversized", "straight", "wrap", "flared", "boxy"],
    "attributes.neckline": ["V-neck", "crew neck", "boat neck", "square", "turtleneck", "halter"],
    "attributes.sleeveLength": ["sleeveless", "short", "long", "three-quarter"],
    "attributes.length": ["mini", "midi", "maxi", "cropped", "ankle"],
    "colors.primary": ["black", "white", "navy", "red", "beige", "grey", "pink", "olive", "camel"],
    "colors.finish": ["matte", "satin", "glossy", "textured"],
    "style.overall": ["elegant", "minimalist", "romantic", "casual", "edgy", "sporty"],
    "style.mood": ["sophisticated", "playful", "bold", "relaxed", "dramatic"],
}
PHRASES = [
    "soft dramatic lighting",
    "studio lighting",
    "natural window light",
    "full body",
    "3/4 angle",
    "clean minimal background",
    "sharp focus",
    "detailed texture",
    "editorial",
    "high fashion photography",
]


# --- data ----------------------------------------------------------------------------------------


def vlt_record(rng: random.Random, mode: int, rid: str | None = None, fidelity: float = 0.8) -> dict[str, Any]:
    """One VLT record of planted mode ``mode`` (each slot from the mode's value, else random, 15% missing)."""
    record: dict[str, Any] = {} if rid is None else {"id": rid}
    for s, (slot, pool) in enumerate(SLOTS.items()):
        if slot != "garment_type" and rng.random() < 0.15:
            continue
        value = pool[(mode * 3 + s) % len(pool)] if rng.random() < fidelity else rng.choice(pool)
        group, _, key = slot.partition(".")
        if key:
            record.setdefault(group, {})[key] = value
        else:
            record[group] = value
    return record


def portfolio(n: int = 60, seed: int = 0, modes: int = 4) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [vlt_record(rng, i % modes, f"r{i}") for i in range(n)]


def images(n: int, seed: int = 1, modes: int = 6) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "id": f"img-{i}",
            "vlt": vlt_record(rng, rng.randrange(modes)),
            "url": f"https://cdn.example/{i}.png",
            "quality_score": round(rng.uniform(0.3, 1.0), 3),
        }
        for i in range(n)
    ]


TARGET = {
    "garment_type": "dress",
    "attributes": {"silhouette": "A-line", "neckline": "V-neck", "length": "midi"},
    "colors": {"primary": "black"},
    "style": {"overall": "elegant", "mood": "sophisticated"},
}


def request_body(
    function: str,
    user_id: str = USER,
    i: int = 0,
    *,
    n_candidates: int = 128,
    n_validate: int = 20,
    n_select: int = 200,
    k_select: int = 20,
) -> dict[str, Any]:
    """The typical request of a serving function (``i`` varies what must differ between calls)."""
    if function == "OptimizeFunction":
        return {
            "user_id": user_id,
            "base_prompt": "a black A-line midi dress with a V-neck",
            "vlt_spec": TARGET,
            "n_candidates": n_candidates,
            "explore": True,
            "seed": 7 + i,
        }
    if function == "ValidateFunction":
        return {
            "generation_id": f"gen-{i}",
            "user_id": user_id,
            "images": images(n_validate, seed=i),
            "target_vlt": TARGET,
        }
    if function == "SelectFunction":
        return {"user_id": user_id, "images": images(n_select, seed=i), "target_count": k_select}
    if function == "FeedbackFunction":
        rng = random.Random(i)
        return {
            "user_id": user_id,
            "generation_id": f"gen-{i // 4}",
            "asset_id": f"a{i}",
            "feedback_type": rng.choice(["like", "like", "dislike"]),
            "prompt_used": "high fashion photography, " + ", ".join(rng.sample(PHRASES, 3)),
            "vlt_spec": vlt_record(rng, rng.randrange(4)),
            "quality_score": round(rng.uniform(0.4, 1.0), 2),
        }
    raise KeyError(function)


ROUTES = {
    "OptimizeFunction": ("POST", "/api/ml/prompt/optimize"),
    "ValidateFunction": ("POST", "/api/ml/validate"),
    "SelectFunction": ("POST", "/api/ml/select/diverse"),
    "FeedbackFunction": ("POST", "/api/ml/feedback/submit"),
}


# --- backend -------------------------------------------------------------------------------------


@dataclass
class Backend:
    endpoint: str
    environment: dict[str, str]
    specs: dict[str, Any]
    routes: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def handler_exists(self, function: str) -> bool:
        spec = self.specs.get(function)
        if spec is None:
            return False
        return spec.code_dir.joinpath(*spec.handler_module.split(".")).with_suffix(".py").is_file()

    def event(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        return api_event(method, path, body, self.routes)

    def function_env(self, function: str) -> dict[str, str]:
        return {**self.environment, **dict(self.specs[function].environment)}


def api_event(method: str, path: str, body: Any = None, routes: Any = None) -> dict[str, Any]:
    """The API Gateway proxy event of a request to the template's routes (as local.server builds it)."""
    from local import cloud
    from local.events import build_api_event

    if routes is None:
        routes = [r for spec in cloud.functions(cloud.load_template()) for r in spec.api_routes]
    headers = {"Content-Type": "application/json"} if body is not None else None
    _, event = build_api_event(routes, method, path, headers=headers, body=None if body is None else json.dumps(body))
    return event


def aws_environment(endpoint: str, scratch: Path) -> dict[str, str]:
    """Dummy credentials and the moto endpoint; no shared config (a developer's ~/.aws must not count)."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-creds"),
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "LOG_LEVEL": "WARNING",
    }


@contextlib.contextmanager
def backend() -> Iterator[Backend]:
    """A moto server with the template's resources; this process's environment points at it."""
    from local import cloud
    from local.backend import start_moto

    server, endpoint = start_moto()
    saved = dict(os.environ)
    try:
        # moto keeps its backends per process, not per server: without a reset, a second
        # backend in one process would see the first one's tables, objects and messages.
        _moto_reset(endpoint)
        scratch = Path(tempfile.mkdtemp(prefix="designer-ml-bench-"))
        environment = aws_environment(endpoint, scratch)
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL_") or name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
                del os.environ[name]
        os.environ.update(environment)
        template = cloud.load_template()
        physical = cloud.create_resources(template, endpoint, prefix=PREFIX)
        specs = {spec.logical_id: spec for spec in cloud.functions(template, physical)}
        for spec in specs.values():
            environment.update(spec.environment)
        os.environ.update(environment)
        _reset_process_caches()
        routes = [route for spec in specs.values() for route in spec.api_routes]
        yield Backend(endpoint, environment, specs, routes)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        _reset_process_caches()
        server.stop()


def _moto_reset(endpoint: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).read()


def _reset_process_caches() -> None:
    import sys

    if "designer_ml.storage" in sys.modules:
        sys.modules["designer_ml.storage"].reset_for_tests()
    if "designer_ml.onnx_models" in sys.modules:
        sys.modules["designer_ml.onnx_models"].clear_cache()
    if "designer_ml.reward.store" in sys.modules:
        sys.modules["designer_ml.reward.store"].clear_caches()


class Invoker:
    """The template's handlers in this process, one warm container each (``local.runtime``)."""

    def __init__(self, be: Backend):
        self.backend = be
        self._loaded: dict[str, Any] = {}

    def __call__(self, function: str, event: dict[str, Any]) -> tuple[int, Any]:
        from local.runtime import LambdaFunction

        if function not in self._loaded:
            spec = self.backend.specs[function]
            self._loaded[function] = LambdaFunction(
                spec, function_name=f"{PREFIX}-{function}", module_name=f"_bench_{function}"
            )
        os.environ.update(self.backend.specs[function].environment)
        result = self._loaded[function].invoke(event)
        body = result.get("body")
        try:
            body = json.loads(body) if isinstance(body, str) else body
        except ValueError:
            pass
        return int(result.get("statusCode", 0)), body


# --- a designer after onboarding -----------------------------------------------------------------


def seed_user(be: Backend, user_id: str = USER, n_records: int = 60, n_feedback: int = 24) -> dict[str, Any]:
    """Store a profile, feedback and a reward model through the stages' handlers (those that exist),
    and the seed's scikit-learn models beside them. Returns what was stored."""
    invoke = Invoker(be)
    done: dict[str, Any] = {"profile": None, "feedback": 0, "reward_model": None}
    records = portfolio(n_records)
    if be.handler_exists("ProfileFunction"):
        status, answer = invoke(
            "ProfileFunction",
            be.event("POST", "/api/ml/style-profile/create", {"user_id": user_id, "vlt_records": records}),
        )
        done["profile"] = status
        if status >= 300:
            be.notes.append(f"profile create answered {status}: {str(answer)[:200]}")
    else:
        be.notes.append("no ProfileFunction handler yet: no style profile stored")
    if be.handler_exists("FeedbackFunction"):
        for i in range(n_feedback):
            status, _ = invoke(
                "FeedbackFunction",
                be.event("POST", ROUTES["FeedbackFunction"][1], request_body("FeedbackFunction", user_id, i)),
            )
            done["feedback"] += status < 300
        if be.handler_exists("RetrainFunction"):
            done["reward_model"] = _retrain(be)
    else:
        be.notes.append("no FeedbackFunction handler yet: no feedback or reward model stored")
    _store_seed_models(records, user_id)
    done["model_keys"] = _model_keys(user_id)
    return done


class RetrainQueue:
    """Lambda's SQS event source for RetrainFunction: visible retrain messages in, handled ones deleted."""

    def __init__(self, be: Backend):
        import boto3

        from local.runtime import LambdaFunction

        self.backend = be
        self.url = be.environment["RETRAIN_QUEUE_URL"]
        self.sqs = boto3.client("sqs", region_name=REGION, endpoint_url=be.endpoint)
        self.arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        spec = be.specs["RetrainFunction"]
        self.function = LambdaFunction(spec, function_name=f"{PREFIX}-RetrainFunction", module_name="_bench_retrain")

    def drain(self) -> tuple[int, int]:
        """Hand every visible message to RetrainFunction, one batch at a time; (handled, failed)."""
        from local.events import sqs_event

        handled = failed = 0
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return handled, failed
            os.environ.update(self.backend.specs["RetrainFunction"].environment)
            result = self.function.invoke(sqs_event(messages, self.arn, REGION))
            bad = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in bad]
            if done:
                self.sqs.delete_message_batch(
                    QueueUrl=self.url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            handled += len(done)
            failed += len(bad)
            if bad:  # failed messages stay invisible until their visibility timeout: stop here
                return handled, failed


def _retrain(be: Backend) -> Any:
    """Train the reward model from the queued retrain messages; None (and a note) when it fails."""
    try:
        handled, failed = RetrainQueue(be).drain()
    except Exception as exc:  # a benchmark reports what it could not set up rather than failing
        be.notes.append(f"retrain failed: {exc!r}")
        return None
    if failed or not handled:
        be.notes.append(f"retrain: {handled} messages handled, {failed} failed: reward model not trained")
        return None
    return {"messages": handled}


def _model_keys(user_id: str) -> list[str]:
    import boto3

    bucket = os.environ["ARTIFACTS_BUCKET"]
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"models/{user_id}/").get("Contents", [])
    return sorted(obj["Key"] for obj in listed)


# --- the seed's way -----------------------------------------------------------------------------


def _flat(vlt: Mapping[str, Any] | None) -> dict[str, str]:
    """The seed's one-hot features: ``slot=value`` keys of a VLT dict (lower-cased)."""
    out: dict[str, str] = {}
    for key, value in (vlt or {}).items():
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                if isinstance(inner, str) and inner:
                    out[f"{key}.{sub}"] = inner.lower()
        elif isinstance(value, str) and value and key != "id":
            out[key] = value.lower()
    return out


def _prompt_features(prompt: str, vlt: Mapping[str, Any] | None) -> dict[str, float]:
    features: dict[str, float] = {f"p={p.strip().lower()}": 1.0 for p in prompt.split(",") if p.strip()}
    features.update({f"{k}={v}": 1.0 for k, v in _flat(vlt).items()})
    return features


def _store_seed_models(records: list[dict[str, Any]], user_id: str) -> None:
    """The seed's in-memory models, fitted on the same portfolio and pickled to S3."""
    import boto3
    import numpy as np
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import SGDRegressor
    from sklearn.mixture import GaussianMixture

    vec = DictVectorizer(sparse=False)
    X = vec.fit_transform([{f"{k}={v}": 1.0 for k, v in _flat(r).items()} for r in records])
    pca = PCA(n_components=min(8, X.shape[1], X.shape[0] - 1), random_state=0).fit(X)
    gmm = GaussianMixture(n_components=4, random_state=0).fit(pca.transform(X))
    forest = IsolationForest(contamination=0.1, random_state=42).fit(X)
    rng = random.Random(3)
    feedback = [request_body("FeedbackFunction", user_id, i) for i in range(24)]
    reward_vec = DictVectorizer(sparse=False)
    F = reward_vec.fit_transform(
        [_prompt_features(f["prompt_used"], f["vlt_spec"]) for f in feedback]
        + [_prompt_features(", ".join(PHRASES), TARGET)]
    )
    y = np.array([1.0 if f["feedback_type"] == "like" else -1.0 for f in feedback] + [0.0])
    reward = SGDRegressor(random_state=0).fit(F, y + 0.01 * rng.random())
    s3 = boto3.client("s3", region_name=REGION)
    bucket = os.environ["ARTIFACTS_BUCKET"]
    for name, model in {"style": (vec, pca, gmm), "forest": forest, "reward": (reward_vec, reward)}.items():
        s3.put_object(Bucket=bucket, Key=f"{SEED_WAY_PREFIX}/{user_id}/{name}.pkl", Body=pickle.dumps(model))


def seed_way_models(user_id: str) -> dict[str, Any]:
    """The seed's models of ``user_id``, unpickled from S3 (a cold monolith loads them once)."""
    import boto3

    s3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION", REGION))
    bucket = os.environ["ARTIFACTS_BUCKET"]
    return {
        name: pickle.loads(s3.get_object(Bucket=bucket, Key=f"{SEED_WAY_PREFIX}/{user_id}/{name}.pkl")["Body"].read())
        for name in ("style", "forest", "reward")
    }


def seed_way_imports() -> None:
    """What the seed's FastAPI monolith imports at start (its services; torch left out, which flatters it)."""
    import dppy.finite_dpps  # noqa: F401
    import numpy  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.feature_extraction  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.mixture  # noqa: F401


def seed_way(function: str, body: dict[str, Any], models: dict[str, Any], table: Any = None) -> dict[str, Any]:
    """Answer ``body`` the seed's way (sketch 000: per-candidate predict, IsolationForest fitted per
    request, dense kernel sampled by dppy, online partial_fit). Bugs of the seed that would raise
    are caught, as its monolith would have had to."""
    import numpy as np

    if function == "OptimizeFunction":
        vec, pca, gmm = models["style"]
        reward_vec, reward = models["reward"]
        spec = body["vlt_spec"]
        cluster = int(gmm.predict(pca.transform(vec.transform([{f"{k}={v}": 1.0 for k, v in _flat(spec).items()}])))[0])
        rng = random.Random(body.get("seed", 0))
        variations = [
            body["base_prompt"] + ", " + ", ".join(rng.sample(PHRASES, 3)) for _ in range(body["n_candidates"])
        ]
        scores = [float(reward.predict(reward_vec.transform([_prompt_features(v, spec)]))[0]) for v in variations]
        best = int(np.argmax(scores))
        return {"prompt": variations[best], "confidence": scores[best], "cluster": cluster}
    if function == "ValidateFunction":
        vec = models["style"][0]
        target = _flat(body["target_vlt"])
        gens = [_flat(image["vlt"]) for image in body["images"]]
        X = vec.transform([{f"{k}={v}": 1.0 for k, v in g.items()} for g in [target, *gens]])
        from sklearn.ensemble import IsolationForest

        labels = IsolationForest(contamination=0.1, random_state=42).fit_predict(X)[1:]
        scores = [sum(g.get(k) == v for k, v in target.items()) / max(1, len(target)) for g in gens]
        return {
            "validations": [
                {"image_id": image["id"], "consistency_score": s, "is_outlier": bool(o == -1)}
                for image, s, o in zip(body["images"], scores, labels, strict=True)
            ]
        }
    if function == "SelectFunction":
        from dppy.finite_dpps import FiniteDPP
        from sklearn.feature_extraction import DictVectorizer

        feats = DictVectorizer(sparse=False).fit_transform(
            [{f"{k}={v}": 1.0 for k, v in _flat(image["vlt"]).items()} for image in body["images"]]
        )
        feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        quality = np.array([image.get("quality_score", 0.5) for image in body["images"]])
        q = np.diag(quality**0.3)
        kernel = q @ np.clip(feats @ feats.T, 0, None) ** 0.7 @ q
        try:
            dpp = FiniteDPP("likelihood", L=kernel)
            dpp.sample_exact(random_state=np.random.RandomState(0))
            chosen = list(dpp.list_of_samples[-1])[: body["target_count"]]
        except Exception:  # the seed's kernel is not PSD: dppy may refuse it
            chosen = list(np.argsort(-quality)[: body["target_count"]])
        return {"selected": [body["images"][i]["id"] for i in chosen]}
    if function == "FeedbackFunction":
        reward_vec, reward = models["reward"]
        y = 1.0 if body["feedback_type"] == "like" else -1.0
        reward.partial_fit(
            reward_vec.transform([_prompt_features(body.get("prompt_used") or "", body.get("vlt_spec"))]), [y]
        )
        if table is not None:
            table.put_item(
                Item={
                    "user_id": body["user_id"],
                    "event_key": f"{body['generation_id']}#{body['asset_id']}",
                    "feedback_type": body["feedback_type"],
                    "prompt_used": body.get("prompt_used") or "",
                }
            )
        return {"feedback_id": f"{body['generation_id']}#{body['asset_id']}", "queued": False}
    raise KeyError(function)


def quiet() -> contextlib.AbstractContextManager[Any]:
    """Silence the handlers' JSON logs on stdout (benchmarks print their result there)."""
    return contextlib.redirect_stdout(io.StringIO())
