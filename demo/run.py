"""One designer's whole journey through the service, written up as demo/report.html.

``make demo`` (or ``python demo/run.py``) runs, against ``ML_SERVICE_URL`` (``ML_API_KEY`` is
sent as ``x-api-key``) or, when that is unset, against a ``python -m local.server`` it starts on
a free port and stops afterwards:

1. ``POST /api/ml/style-profile/create`` with the bundled sample portfolio (demo/sample_portfolio.json);
2. for each round: ``POST /api/ml/prompt/optimize`` (exploring) for a spec drawn from one of the
   profile's style modes; a simulated generator makes a handful of VLT "images" near the spec
   (some off-spec, some off-style); ``POST /api/ml/validate`` and ``POST /api/ml/select/diverse``
   (both with ``user_id``); the simulated designer likes or dislikes each kept image from a
   hidden preference over prompt phrases, sent with ``POST /api/ml/feedback/submit``;
3. every few rounds ``POST /api/ml/rlhf/train``, then ``GET /api/ml/rlhf/model/{user_id}`` until
   the model's version moves.

The report compares the like rate round by round with what random prompts built from the same
phrases would get under the same hidden preference. Only the standard library and numpy talk to
the service (urllib), so this file is also a readable example of the HTTP contract.
"""

from __future__ import annotations

import argparse
import copy
import html
import json
import math
import os
import queue
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
DEFAULT_PORTFOLIO = HERE / "sample_portfolio.json"
DEFAULT_REPORT = HERE / "report.html"
# Exit status when the service lacks a route the journey needs (tests skip on it).
EXIT_ROUTES_MISSING = 3

# Routes the journey calls; the demo stops with a clear message when the service lacks one.
REQUIRED_ROUTES = {
    ("post", "/api/ml/style-profile/create"),
    ("post", "/api/ml/prompt/optimize"),
    ("post", "/api/ml/validate"),
    ("post", "/api/ml/select/diverse"),
    ("post", "/api/ml/feedback/submit"),
    ("post", "/api/ml/rlhf/train"),
    ("get", "/api/ml/rlhf/model/{user_id}"),
}

# The simulated designer's taste, unknown to the service: keyword (matched inside a prompt's
# comma-separated segments) -> utility. Phrases from the seed's prompt templates, so that any
# prompt vocabulary built on them can express (or avoid) them.
HIDDEN_PREFERENCE: dict[str, float] = {
    "soft natural window light": 1.6,
    "editorial": 1.1,
    "gentle shadows": 0.8,
    "flowing movement": 0.7,
    "8k resolution": -1.6,
    "dramatic side lighting": -1.1,
    "deep shadows": -0.8,
    "studio quality": -0.6,
    "urban street": -0.8,
}
LIKE_BIAS = -0.4
# A generated image that misses the spec or the style disappoints whatever the prompt said.
OFF_TARGET_PENALTY = -1.2

# Values a generator drifts to when it loses the designer's style (sportswear, loud colours).
OFF_STYLE = {
    "attributes": {"silhouette": "bodycon", "neckline": "hooded", "sleeveLength": "short sleeve"},
    "colors": {"primary": "neon orange", "finish": "glossy"},
    "style": {"overall": "sporty", "mood": "energetic"},
    "details": ["logo print", "reflective tape"],
}
OFF_SPEC_COLORS = ["neon green", "hot pink", "mustard yellow", "electric blue"]


# --- HTTP -------------------------------------------------------------------------------------


class ServiceError(Exception):
    """A non-2xx answer: the status, the service's error code and message, the request id."""

    def __init__(self, method: str, path: str, status: int, body: Any, request_id: str | None) -> None:
        error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
        self.status = status
        self.code = error.get("code") or ("network_error" if status == 0 else "http_error")
        self.message = error.get("message") or (body if isinstance(body, str) else json.dumps(body))[:300]
        self.request_id = request_id or error.get("request_id")
        super().__init__(f"{method} {path}: {status} {self.code}: {self.message} (request id {self.request_id})")


class Client:
    """The service over urllib: JSON in and out, the API key, per-route call timings."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.timings: dict[str, list[float]] = defaultdict(list)

    def call(self, method: str, path: str, body: Any = None, *, route: str | None = None, retries: int = 2) -> Any:
        """The decoded JSON answer of one request; 429, 5xx and lost connections are retried."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"accept": "application/json", "x-request-id": str(uuid.uuid4())}
        if data is not None:
            headers["content-type"] = "application/json"
        if self.api_key:
            headers["x-api-key"] = self.api_key
        for attempt in range(retries + 1):
            request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    payload = response.read()
                    self.timings[route or f"{method} {path}"].append((time.perf_counter() - started) * 1000)
                    return json.loads(payload) if payload else None
            except urllib.error.HTTPError as error:
                payload = error.read()
                try:
                    decoded: Any = json.loads(payload)
                except ValueError:
                    decoded = payload.decode(errors="replace")
                failure = ServiceError(method, path, error.code, decoded, error.headers.get("x-request-id"))
                if error.code != 429 and error.code < 500:
                    raise failure from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                failure = ServiceError(method, path, 0, str(getattr(error, "reason", error)), headers["x-request-id"])
            if attempt < retries:
                # Full jitter: concurrent demos against one service do not retry in step.
                time.sleep(random.uniform(0, 0.25 * 2**attempt))
        raise failure


def served_routes(client: Client) -> set[tuple[str, str]]:
    document = client.call("GET", "/api/ml/openapi.json")
    return {(method.lower(), path) for path, ops in document.get("paths", {}).items() for method in ops}


class LocalServer:
    """``python -m local.server`` on a free loopback port, for as long as the demo runs."""

    def __init__(self, env_overrides: dict[str, str]) -> None:
        self.env_overrides = env_overrides
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.log_path = Path(tempfile.gettempdir()) / f"designer-ml-demo-server-{os.getpid()}.log"

    def __enter__(self) -> LocalServer:
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": "0", **self.env_overrides}
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.server"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.process.stdout], daemon=True).start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                return self
        self.__exit__(None, None, None)
        raise SystemExit(f"the local server did not start; its log: {self.log_path}")

    def __exit__(self, *exc_info: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the simulated designer and generator -----------------------------------------------------


def segments(prompt: str) -> list[str]:
    """A prompt's comma-separated segments, lower-cased and trimmed."""
    return [s.strip().lower() for s in prompt.split(",") if s.strip()]


def utility(prompt_segments: list[str]) -> float:
    """The hidden preference's score of a prompt: each keyword counts once if any segment holds it."""
    text = " | ".join(prompt_segments)
    return sum(weight for keyword, weight in HIDDEN_PREFERENCE.items() if keyword in text)


def like_probability(prompt_segments: list[str], on_target: bool) -> float:
    score = LIKE_BIAS + utility(prompt_segments) + (0.0 if on_target else OFF_TARGET_PENALTY)
    return 1.0 / (1.0 + math.exp(-score))


def _values(record: dict[str, Any]) -> set[str]:
    """Every word of a record's values, lower-cased (to tell a prompt's garment description)."""
    words: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)
        elif isinstance(value, str):
            words.update(re.split(r"[\s\-_/]+", value.lower()))

    walk({k: v for k, v in record.items() if k != "id"})
    return words - {""}


def phrase_segments(prompt: str, spec: dict[str, Any]) -> list[str]:
    """The segments of a prompt that are style phrases, not the spec's garment description."""
    spec_words = _values(spec)
    out = []
    for segment in segments(prompt):
        words = [w for w in re.split(r"[\s\-_/]+", segment) if w and w not in {"with", "and", "in", "a", "of"}]
        if words and sum(w in spec_words for w in words) / len(words) >= 0.5:
            continue
        out.append(segment)
    return out


def make_spec(record: dict[str, Any], round_no: int) -> dict[str, Any]:
    """A garment spec from a portfolio record: what the designer asks for next."""
    spec: dict[str, Any] = {"id": f"spec-{round_no:03d}", "garment_type": record.get("garment_type")}
    attributes = {k: v for k, v in (record.get("attributes") or {}).items() if v not in (None, "")}
    if attributes:
        spec["attributes"] = attributes
    for group in ("colors", "style"):
        if isinstance(record.get(group), dict):
            spec[group] = {k: v for k, v in record[group].items() if v not in (None, "")}
    return spec


def generate_images(
    spec: dict[str, Any], mode_records: list[dict[str, Any]], round_no: int, n: int, rng: random.Random
) -> list[dict[str, Any]]:
    """n simulated generations: VLT analyses near the spec, with analyser noise, and a few that
    miss the spec (``_kind`` "wrong_garment", "wrong_colour") or the designer's style
    ("off_style"). ``_kind`` stays client-side: the service never sees it."""
    images = []
    for k in range(n):
        vlt = copy.deepcopy({key: value for key, value in spec.items() if key != "id"})
        draw = rng.random()
        kind = (
            "wrong_garment" if draw < 0.07 else "wrong_colour" if draw < 0.14 else "off_style" if draw < 0.28 else "on"
        )
        donor = rng.choice(mode_records)
        # A generator fills what the spec left open from the same mode.
        for group in ("attributes", "colors"):
            extra = donor.get(group) if isinstance(donor.get(group), dict) else {}
            vlt.setdefault(group, {})
            for key, value in extra.items():
                if value is not None and key not in vlt[group]:
                    vlt[group][key] = value
        if kind == "on" and rng.random() < 0.35 and vlt.get("attributes"):
            key = rng.choice(sorted(vlt["attributes"]))
            donor_value = (donor.get("attributes") or {}).get(key)
            if donor_value is not None:
                vlt["attributes"][key] = donor_value  # a near variant
            else:
                vlt["attributes"].pop(key)  # the analyser missed it
        if kind == "wrong_garment":
            asked = str(spec.get("garment_type") or "").lower().replace("-", " ")
            others = [
                r["garment_type"]
                for r in mode_records
                if isinstance(r.get("garment_type"), str) and r["garment_type"].lower().replace("-", " ") != asked
            ]
            vlt["garment_type"] = rng.choice(others) if others else "jumpsuit"
        if kind == "wrong_colour":
            vlt["colors"]["primary"] = rng.choice(OFF_SPEC_COLORS)
        if kind == "off_style":
            for group in ("attributes", "colors", "style"):
                vlt[group] = {**(vlt.get(group) or {}), **OFF_STYLE[group]}
            vlt["details"] = list(OFF_STYLE["details"])
        if rng.random() < 0.5:
            vlt["confidence"] = round(rng.uniform(0.6, 0.97), 2)
        quality = rng.betavariate(5, 2) if kind == "on" else rng.betavariate(3, 3)
        images.append({"id": f"r{round_no:03d}-img{k}", "vlt": vlt, "quality_score": round(quality, 3), "_kind": kind})
    return images


# --- the journey ------------------------------------------------------------------------------


@dataclass
class Round:
    number: int
    cluster: int | None
    spec: dict[str, Any]
    prompt: str = ""
    phrases: list[str] = field(default_factory=list)
    optimize: dict[str, Any] = field(default_factory=dict)
    images: list[dict[str, Any]] = field(default_factory=list)
    validations: list[dict[str, Any]] = field(default_factory=list)
    validate_warnings: list[str] = field(default_factory=list)
    selected: list[dict[str, Any]] = field(default_factory=list)
    selection: dict[str, Any] = field(default_factory=dict)
    feedback: list[tuple[str, str, float]] = field(default_factory=list)  # (image id, type, p(like))
    baseline: float | None = None

    @property
    def like_rate(self) -> float | None:
        if not self.feedback:
            return None
        return sum(kind == "like" for _, kind, _ in self.feedback) / len(self.feedback)

    @property
    def expected_like(self) -> float | None:
        return statistics.fmean(p for _, _, p in self.feedback) if self.feedback else None


@dataclass
class Journey:
    url: str
    user_id: str
    started: float
    health: dict[str, Any] = field(default_factory=dict)
    portfolio: list[dict[str, Any]] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    rounds: list[Round] = field(default_factory=list)
    retrains: list[dict[str, Any]] = field(default_factory=list)
    reward_model: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0


class Progress:
    """A one-line progress bar on stderr (a line per tenth when stderr is not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.tty = sys.stderr.isatty()
        self.last_tenth = -1

    def update(self, done: int, status: str) -> None:
        width = 30
        filled = int(width * done / self.total)
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} {status}"
        if self.tty:
            sys.stderr.write("\r" + line[:120].ljust(120))
            sys.stderr.flush()
        elif done * 10 // self.total != self.last_tenth:
            self.last_tenth = done * 10 // self.total
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def model_version(client: Client, user_id: str) -> tuple[int, dict[str, Any] | None]:
    try:
        info = client.call("GET", f"/api/ml/rlhf/model/{user_id}", route="GET /api/ml/rlhf/model/{user_id}")
    except ServiceError as error:
        if error.status == 404:
            return 0, None
        raise
    return int(info.get("version") or 0), info


def retrain(client: Client, user_id: str, timeout_s: float, after_round: int) -> dict[str, Any]:
    """Ask for a retrain and wait until the model's version moves (or the timeout)."""
    before, _ = model_version(client, user_id)
    started = time.monotonic()
    client.call("POST", "/api/ml/rlhf/train", {"user_id": user_id})
    version, info = before, None
    while time.monotonic() - started < timeout_s:
        version, info = model_version(client, user_id)
        if version > before:
            break
        time.sleep(0.5)
    return {
        "after_round": after_round,
        "before": before,
        "version": version,
        "moved": version > before,
        "waited_s": round(time.monotonic() - started, 1),
        "n_events": (info or {}).get("n_events"),
        "metrics": (info or {}).get("metrics") or {},
    }


def run_journey(client: Client, args: argparse.Namespace, portfolio: list[dict[str, Any]]) -> Journey:
    rng = random.Random(args.seed)
    user_id = args.user_id or f"demo-designer-{uuid.uuid4().hex[:8]}"
    journey = Journey(url=client.base_url, user_id=user_id, started=time.time(), portfolio=portfolio)
    journey.health = client.call("GET", "/health") or {}
    missing = REQUIRED_ROUTES - served_routes(client)
    if missing:
        names = ", ".join(f"{m.upper()} {p}" for m, p in sorted(missing))
        print(
            f"{client.base_url} does not serve {names} yet: the demo needs every stage (its "
            "GET /api/ml/openapi.json lists the routes; locally that is layers/designer_ml/openapi.json, "
            "which make openapi regenerates)",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_ROUTES_MISSING)

    progress = Progress(args.rounds + 1)
    progress.update(0, "creating the style profile")
    created = client.call(
        "POST", "/api/ml/style-profile/create", {"user_id": user_id, "vlt_records": portfolio, "n_clusters": None}
    )
    journey.profile = created["profile"]
    by_id = {str(r["id"]): r for r in portfolio}
    members: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record_id, cluster in journey.profile.get("assignments", {}).items():
        if record_id in by_id:
            members[int(cluster)].append(by_id[record_id])
    clusters = sorted(members)
    weights = [len(members[c]) for c in clusters]
    progress.update(1, f"profile: {len(clusters)} style modes")

    for number in range(1, args.rounds + 1):
        cluster = rng.choices(clusters, weights=weights)[0]
        spec = make_spec(rng.choice(members[cluster]), number)
        current = Round(number=number, cluster=cluster, spec=spec)
        journey.rounds.append(current)

        answer = client.call(
            "POST",
            "/api/ml/prompt/optimize",
            {"user_id": user_id, "vlt_spec": spec, "explore": True, "seed": rng.randrange(2**31)},
        )
        current.optimize = answer
        current.prompt = answer["prompt"]
        current.phrases = phrase_segments(current.prompt, spec)

        images = generate_images(spec, members[cluster], number, args.images, rng)
        current.images = images
        kinds = {image["id"]: image["_kind"] for image in images}
        wire = [{k: v for k, v in image.items() if not k.startswith("_")} for image in images]
        generation_id = f"{user_id}-gen-{number:03d}"
        validated = client.call(
            "POST",
            "/api/ml/validate",
            {"generation_id": generation_id, "images": wire, "target_vlt": spec, "user_id": user_id},
        )
        current.validations = validated["validations"]
        current.validate_warnings = validated.get("warnings") or []
        passed = {v["image_id"] for v in current.validations if not v["is_rejected"]}
        pool = [image for image in wire if image["id"] in passed]
        if pool:
            chosen = client.call(
                "POST",
                "/api/ml/select/diverse",
                {
                    "images": pool,
                    "target_count": min(args.keep, len(pool)),
                    "diversity_weight": 0.7,
                    "quality_weight": 0.3,
                    "user_id": user_id,
                },
            )
            current.selection = chosen
            current.selected = chosen["selected"]
        for image in current.selected:
            p = like_probability(segments(current.prompt), kinds[image["id"]] == "on")
            feedback_type = "like" if rng.random() < p else "dislike"
            client.call(
                "POST",
                "/api/ml/feedback/submit",
                {
                    "user_id": user_id,
                    "generation_id": generation_id,
                    "asset_id": image["id"],
                    "feedback_type": feedback_type,
                    "prompt_used": current.prompt,
                    "vlt_spec": spec,
                    "quality_score": image.get("quality_score"),
                },
            )
            current.feedback.append((image["id"], feedback_type, p))

        status = f"round {number}: like rate so far {_running_like_rate(journey):.2f}"
        if number % args.retrain_every == 0 or number == args.rounds:
            progress.update(number, status + " · retraining")
            # A service that never produced a model is not waited for at length again.
            stuck = bool(journey.retrains) and not journey.retrains[-1]["moved"]
            timeout = min(args.retrain_timeout, 10.0) if stuck else args.retrain_timeout
            journey.retrains.append(retrain(client, user_id, timeout, number))
        progress.update(number + 1, status)
    progress.close()

    _, journey.reward_model = model_version(client, user_id)
    baseline(journey, rng)
    if args.cleanup:
        client.call("DELETE", f"/api/ml/users/{user_id}", route="DELETE /api/ml/users/{user_id}")
        journey.notes.append(f"the demo user {user_id} was deleted afterwards (--cleanup)")
    journey.elapsed_s = time.time() - journey.started
    return journey


def _running_like_rate(journey: Journey) -> float:
    votes = [kind == "like" for r in journey.rounds for _, kind, _ in r.feedback]
    return sum(votes) / len(votes) if votes else 0.0


def baseline(journey: Journey, rng: random.Random, samples: int = 400) -> None:
    """Per round, the expected like rate of random prompts on the same kept images.

    A random prompt holds as many style phrases as the service's prompt of that round, drawn
    uniformly without replacement from every style phrase the service used during the run:
    what a designer gets from a template filled at random with the same vocabulary.
    """
    vocabulary = sorted({p for r in journey.rounds for p in r.phrases})
    if not vocabulary:
        return
    for current in journey.rounds:
        if not current.feedback:
            continue
        k = min(len(current.phrases) or 1, len(vocabulary))
        kinds = {image["id"]: image["_kind"] for image in current.images}
        total = 0.0
        for _ in range(samples):
            drawn = rng.sample(vocabulary, k)
            total += statistics.fmean(
                like_probability(drawn, kinds[image_id] == "on") for image_id, _, _ in current.feedback
            )
        current.baseline = total / samples


# --- the report -------------------------------------------------------------------------------

KIND_LABELS = {
    "on": "on spec and style",
    "wrong_garment": "off spec: another garment",
    "wrong_colour": "off spec: another colour",
    "off_style": "off style (sportswear drift)",
}
KIND_ORDER = ("wrong_garment", "wrong_colour", "off_style", "on")
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac"]


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def projection(records: list[dict[str, Any]]) -> np.ndarray:
    """2-D PCA (numpy SVD) of the records' one-hot encodings; shape (n_records, 2)."""
    from designer_ml.vlt import Vocabulary  # the service's own encoder, so the picture shows what it sees

    X = Vocabulary.fit(records).transform(records).X.astype(float)
    X = X - X.mean(axis=0)
    if X.shape[0] < 2 or not np.any(X):
        return np.zeros((X.shape[0], 2))
    u, s, _ = np.linalg.svd(X, full_matrices=False)
    coords = u[:, :2] * s[:2]
    if coords.shape[1] < 2:
        coords = np.hstack([coords, np.zeros((coords.shape[0], 1))])
    return coords


def svg_scatter(points: np.ndarray, colors: list[str], titles: list[str], width: int = 520, height: int = 380) -> str:
    pad = 24
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi - lo > 1e-9, hi - lo, 1.0)
    xy = (points - lo) / span
    dots = []
    for (x, y), color, title in zip(xy, colors, titles, strict=True):
        cx, cy = pad + x * (width - 2 * pad), height - pad - y * (height - 2 * pad)
        dots.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{color}" fill-opacity="0.8" stroke="#fff">'
            f"<title>{esc(title)}</title></circle>"
        )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="portfolio projection">'
        f'<rect width="{width}" height="{height}" fill="#fafafa" stroke="#ddd"/>'
        f'<text x="{width - 8}" y="{height - 6}" font-size="11" text-anchor="end" fill="#888">PC 1 →</text>'
        f'<text x="8" y="14" font-size="11" fill="#888">↑ PC 2</text>{"".join(dots)}</svg>'
    )


def moving_average(values: list[float | None], window: int) -> list[float | None]:
    out: list[float | None] = []
    for i in range(len(values)):
        chunk = [v for v in values[max(0, i - window + 1) : i + 1] if v is not None]
        out.append(statistics.fmean(chunk) if chunk else None)
    return out


def svg_lines(
    series: list[tuple[str, list[float | None], str, str]],
    markers: list[int],
    n: int,
    width: int = 720,
    height: int = 320,
) -> str:
    """Lines over rounds 1..n on [0, 1]: (label, values, colour, dash), retrain markers below."""
    left, right, top, bottom = 44, 150, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (i / max(n - 1, 1)) * plot_w

    def y(v: float) -> float:
        return top + (1 - v) * plot_h

    parts = [f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ddd"/>']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end">{tick:.2f}</text>')
    step = max(1, n // 10)
    for i in range(0, n, step):
        parts.append(f'<text x="{x(i):.1f}" y="{height - 18}" font-size="11" text-anchor="middle">{i + 1}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 3}" font-size="11" text-anchor="middle">round</text>')
    for r in markers:
        parts.append(
            f'<line x1="{x(r - 1):.1f}" x2="{x(r - 1):.1f}" y1="{top + plot_h - 8}" y2="{top + plot_h}" '
            f'stroke="#999" stroke-width="2"><title>retrained after round {r}</title></line>'
        )
    for row, (label, values, color, dash) in enumerate(series):
        points = [(x(i), y(v)) for i, v in enumerate(values) if v is not None]
        if dash == "dots":
            parts.extend(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{color}" fill-opacity="0.5"/>' for px, py in points
            )
        elif points:
            path = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(points))
            parts.append(
                f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2.2" '
                f"{'stroke-dasharray=' + chr(34) + dash + chr(34) if dash else ''}/>"
            )
        ly = top + 14 + row * 18
        if dash == "dots":
            parts.append(f'<circle cx="{left + plot_w + 19}" cy="{ly - 4}" r="3" fill="{color}" fill-opacity="0.5"/>')
        else:
            parts.append(
                f'<line x1="{left + plot_w + 10}" x2="{left + plot_w + 28}" y1="{ly - 4}" y2="{ly - 4}" '
                f'stroke="{color}" stroke-width="3"{f" stroke-dasharray={chr(34)}{dash}{chr(34)}" if dash else ""}/>'
            )
        parts.append(f'<text x="{left + plot_w + 32}" y="{ly}" font-size="11">{esc(label)}</text>')
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="like rate by round">{"".join(parts)}</svg>'
    )


def svg_bars(rows: list[tuple[str, int]], color: str = "#e15759", width: int = 720) -> str:
    if not rows:
        return "<p><em>nothing to show</em></p>"
    label_w, bar_h = 330, 20
    top = max(count for _, count in rows) or 1
    height = bar_h * len(rows) + 6
    parts = []
    for i, (label, count) in enumerate(rows):
        y = 3 + i * bar_h
        w = (width - label_w - 50) * count / top
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="12" text-anchor="end">{esc(label[:60])}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="{color}"><title>{esc(label)}</title></rect>'
        )
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="12">{count}</text>')
    return f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}">{"".join(parts)}</svg>'


def reason_kind(reason: str) -> str:
    """A reason's category: "colors.primary: expected black, got red" -> "colors.primary mismatch"."""
    text = reason.strip()
    match = re.match(r"^([A-Za-z_][\w.]*):\s*(.*)$", text)
    if match:
        slot, rest = match.groups()
        if "not reported" in rest:
            return f"{slot}: not reported"
        return f"{slot}: does not match the spec"
    if text.lower().startswith("consistency"):
        return "consistency below the threshold"
    words = re.sub(r"['\"][^'\"]*['\"]|\d+(\.\d+)?", "…", text.split("(")[0]).split()
    return " ".join(words[:8])


def flat(record: dict[str, Any]) -> str:
    """A record's values on one line: "dress · a-line · black · elegant"."""
    out = []
    for key, value in record.items():
        if key in ("id", "confidence"):
            continue
        if isinstance(value, dict):
            out.extend(str(v) for v in value.values() if v not in (None, "", []))
        elif isinstance(value, list):
            out.extend(str(v) for v in value)
        elif value not in (None, ""):
            out.append(str(value))
    return " · ".join(out)


def table(headers: list[str], rows: list[list[Any]], raw_columns: tuple[int, ...] = ()) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if i in raw_columns else esc(cell)}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def highlight(prompt: str) -> str:
    """The prompt with the hidden preference's keywords marked green (liked) or red (disliked)."""
    text = esc(prompt)
    for keyword, weight in sorted(HIDDEN_PREFERENCE.items(), key=lambda kv: -len(kv[0])):
        cls = "good" if weight > 0 else "bad"
        text = re.sub(
            re.escape(esc(keyword)), lambda m, cls=cls: f'<mark class="{cls}">{m.group(0)}</mark>', text, flags=re.I
        )
    return text


def section_modes(journey: Journey) -> str:
    profile = journey.profile
    assignments = {str(k): int(v) for k, v in profile.get("assignments", {}).items()}
    ids = [str(r["id"]) for r in journey.portfolio]
    cluster_ids = sorted({c["id"] for c in profile.get("clusters", [])} | set(assignments.values()))
    color_of = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(cluster_ids)}
    points = projection(journey.portfolio)
    colors = [color_of.get(assignments.get(i), "#999") for i in ids]
    titles = [f"{i} (mode {assignments.get(i, '?')}): {flat(r)}" for i, r in zip(ids, journey.portfolio, strict=True)]
    rows = []
    for cluster in profile.get("clusters", []):
        dominant = ", ".join(
            f"{slot}: {entry[0]} ({entry[1]})" if isinstance(entry, list) and len(entry) >= 2 else f"{slot}: {entry}"
            for slot, entry in (cluster.get("dominant_attributes") or {}).items()
        )
        swatch = f'<span class="swatch" style="background:{color_of.get(cluster["id"], "#999")}"></span>'
        rows.append(
            [
                f"{swatch}{cluster['id']}",
                cluster.get("size"),
                f"{cluster.get('percentage', 0):.0f}%",
                cluster.get("style_summary", ""),
                dominant,
            ]
        )
    model = profile.get("model") or {}
    warnings = "".join(f"<li>{esc(w)}</li>" for w in profile.get("warnings") or [])
    return f"""
<section id="style-modes"><h2>1. Style modes</h2>
<p>The service found <b>{esc(profile.get("n_clusters"))}</b> style modes in {esc(profile.get("n_records"))} portfolio
records (model: {esc(json.dumps({k: v for k, v in model.items() if k in ("selection", "covariance_type", "pca_components")}))}).
Each dot is one portfolio record, placed by a 2-D PCA of the one-hot encoding the service itself uses
(<code>designer_ml.vlt.Vocabulary</code>) and coloured by the mode the service assigned it to; hover for the record.</p>
<div class="row">{svg_scatter(points, colors, titles)}
<div>{table(["mode", "records", "share", "summary", "dominant attributes"], rows, raw_columns=(0,))}</div></div>
{f"<p>Profile warnings:</p><ul>{warnings}</ul>" if warnings else ""}
</section>"""


def numeric_leaves(data: Any, prefix: str = "") -> dict[str, float]:
    """The numbers of a nested dict, by dotted path: {"train": {"n": 3}} -> {"train.n": 3}."""
    out: dict[str, float] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(numeric_leaves(value, f"{prefix}{key}."))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        out[prefix.rstrip(".")] = float(data)
    return out


def section_learning(journey: Journey, window: int) -> str:
    rounds = journey.rounds
    n = len(rounds)
    observed = [r.like_rate for r in rounds]
    expected = [r.expected_like for r in rounds]
    base = [r.baseline for r in rounds]
    smooth = moving_average(observed, window)
    markers = [r["after_round"] for r in journey.retrains if r["moved"]]
    chart = svg_lines(
        [
            ("liked (per round)", observed, "#4e79a7", "dots"),
            (f"liked, moving avg ({window})", smooth, "#4e79a7", ""),
            ("p(like), moving avg", moving_average(expected, window), "#59a14f", "2 3"),
            ("random prompts", moving_average(base, window), "#e15759", "6 4"),
        ],
        markers,
        n,
    )
    third = max(1, n // 3)

    def mean(values: list[float | None]) -> str:
        kept = [v for v in values if v is not None]
        return f"{statistics.fmean(kept):.2f}" if kept else "n/a"

    summary = table(
        ["", f"first {third} rounds", f"last {third} rounds", "whole run"],
        [
            ["like rate (observed)", mean(observed[:third]), mean(observed[-third:]), mean(observed)],
            ["p(like) of the service's prompts", mean(expected[:third]), mean(expected[-third:]), mean(expected)],
            ["p(like) of random prompts (baseline)", mean(base[:third]), mean(base[-third:]), mean(base)],
        ],
    )
    retrain_rows = [
        [
            r["after_round"],
            f"{r['before']} → {r['version']}"
            if r["moved"]
            else f"{r['before']} (no new version after {r['waited_s']} s)",
            r["n_events"],
            r["waited_s"],
            ", ".join(f"{k}={v:.3g}" for k, v in numeric_leaves(r["metrics"]).items() if k.count(".") <= 1),
        ]
        for r in journey.retrains
    ]
    learned = ""
    model = journey.reward_model or {}
    if model:
        likes = ", ".join(f"{esc(p['phrase'])} ({p['weight']:+.2f})" for p in model.get("likes_most", [])[:8])
        dislikes = ", ".join(f"{esc(p['phrase'])} ({p['weight']:+.2f})" for p in model.get("dislikes_most", [])[:8])
        learned = f"<p>What the reward model (version {esc(model.get('version'))}, {esc(model.get('n_events'))} events) says the designer likes most: {likes or '–'}; dislikes most: {dislikes or '–'}.</p>"
    hidden = ", ".join(
        f'<mark class="{"good" if w > 0 else "bad"}">{esc(k)}</mark> {w:+.1f}' for k, w in HIDDEN_PREFERENCE.items()
    )
    first, last = (rounds[0], rounds[-1]) if rounds else (None, None)
    prompts = ""
    if first and last:
        prompts = (
            f"<p>Round 1's prompt (p(like) {first.expected_like or 0:.2f}):</p><blockquote>{highlight(first.prompt)}</blockquote>"
            f"<p>Round {last.number}'s prompt (p(like) {last.expected_like or 0:.2f}):</p><blockquote>{highlight(last.prompt)}</blockquote>"
        )
    return f"""
<section id="learning-curve"><h2>2. Like rate by round</h2>
<p>The simulated designer likes or dislikes each kept image with probability
σ({LIKE_BIAS} + Σ keyword weights in the prompt {OFF_TARGET_PENALTY:+} if the image misses spec or style), a
hidden preference the service never sees: {hidden}. The service learns it only from the
likes and dislikes it receives. The baseline is the like probability of random prompts with as many
phrases, drawn from the {len({p for r in rounds for p in r.phrases})} style phrases the service used during the run, on the same kept
images. Grey ticks: a retrain produced a new reward model.</p>
{chart}
{summary}
{learned}
{prompts}
<h3>Retrains</h3>
{table(["after round", "model version", "events", "waited (s)", "metrics"], retrain_rows) if retrain_rows else "<p>none</p>"}
</section>"""


def section_validation(journey: Journey) -> str:
    kinds: Counter[str] = Counter()
    rejected_by_kind: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[list[Any]]] = defaultdict(list)
    missed: list[list[Any]] = []
    warnings: Counter[str] = Counter()
    for r in journey.rounds:
        kind_of = {image["id"]: image["_kind"] for image in r.images}
        vlt_of = {image["id"]: image["vlt"] for image in r.images}
        warnings.update(r.validate_warnings)
        for v in r.validations:
            kind = kind_of.get(v["image_id"], "?")
            kinds[kind] += 1
            if not v["is_rejected"] and kind != "on" and len(missed) < 5:
                missed.append(
                    [
                        v["image_id"],
                        KIND_LABELS.get(kind, kind),
                        f"{v['consistency_score']:.2f}",
                        flat(vlt_of[v["image_id"]]),
                    ]
                )
            if v["is_rejected"]:
                rejected_by_kind[kind] += 1
                for reason in {reason_kind(reason) for reason in v.get("reasons") or []} or {"(no reason given)"}:
                    reasons[reason][kind] += 1
                if len(examples[kind]) < 3:
                    examples[kind].append(
                        [
                            v["image_id"],
                            KIND_LABELS.get(kind, kind),
                            f"{v['consistency_score']:.2f}",
                            "–" if v.get("outlier_score") is None else f"{v['outlier_score']:.2f}",
                            flat(vlt_of.get(v["image_id"], {})),
                            "; ".join((v.get("reasons") or [])[:4])
                            + (f" … ({len(v['reasons']) - 4} more)" if len(v.get("reasons") or []) > 4 else ""),
                        ]
                    )
    rows = [
        [
            KIND_LABELS.get(k, k),
            kinds[k],
            rejected_by_kind[k],
            f"{rejected_by_kind[k] / kinds[k]:.0%}" if kinds[k] else "–",
        ]
        for k in KIND_ORDER
    ]
    reason_rows = [
        [reason, *[counts[k] or "" for k in KIND_ORDER], sum(counts.values())]
        for reason, counts in sorted(reasons.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    ]
    example_rows = [row for k in KIND_ORDER for row in examples.get(k, [])]
    warning_list = "".join(f"<li>{esc(w)} ({c}×)</li>" for w, c in warnings.most_common(5))
    return f"""
<section id="validation"><h2>3. What validation rejected and why</h2>
<p>The simulated generator knows which images it spoiled; the service does not. Rejected, by what the image really was:</p>
{table(["generated image", "images", "rejected", "rate"], rows)}
<h3>Reasons given</h3>
<p>Rejected images that gave each reason, by what they really were (an image gives several reasons).</p>
{table(["reason", *[KIND_LABELS[k] for k in KIND_ORDER], "total"], reason_rows)}
<h3>Examples (up to three of each)</h3>
{table(["image", "really", "consistency", "off-style score", "image VLT", "reasons"], example_rows) if example_rows else "<p>nothing was rejected</p>"}
<h3>Spoiled images that passed</h3>
{table(["image", "really", "consistency", "image VLT"], missed) if missed else "<p>none: every spoiled image was rejected</p>"}
{f"<p>Validation warnings:</p><ul>{warning_list}</ul>" if warning_list else ""}
</section>"""


def section_selection(journey: Journey) -> str:
    kept_kinds: Counter[str] = Counter()
    offered = 0
    gaps: Counter[str] = Counter()
    gaps_in_pool: Counter[str] = Counter()
    diversity = []
    rows = []
    for r in journey.rounds:
        if not r.selection:
            continue
        kind_of = {image["id"]: image["_kind"] for image in r.images}
        offered += len(r.selection.get("selected", [])) + len(r.selection.get("rejected", []))
        kept_kinds.update(kind_of.get(image["id"], "?") for image in r.selected)
        diversity.append(float(r.selection.get("diversity_score") or 0.0))
        for gap in (r.selection.get("coverage") or {}).get("gaps") or []:
            # A round's pool comes from one mode: the other modes' values are always missing.
            if not isinstance(gap, dict) or gap.get("cluster") not in (None, r.cluster):
                continue
            name = f"{gap.get('attribute', '?')} = {gap.get('value', '?')}"
            gaps[name] += 1
            if gap.get("in_pool"):
                gaps_in_pool[name] += 1
        if len(rows) < 8:
            rows.append(
                [
                    r.number,
                    esc(flat(r.spec)),
                    "<br>".join(f"{esc(i['id'])}: {esc(flat(i['vlt']))}" for i in r.selected),
                    f"{float(r.selection.get('diversity_score') or 0):.3f}",
                    esc(", ".join(f"{kind}" for _, kind, _ in r.feedback)),
                ]
            )
    n_rounds = sum(1 for r in journey.rounds if r.selection)
    kept = sum(kept_kinds.values())
    return f"""
<section id="selection"><h2>4. What selection kept, and the coverage gaps</h2>
<p>Of {offered} images that passed validation over {n_rounds} rounds, selection kept {kept}
({", ".join(f"{c} {KIND_LABELS.get(k, k)}" for k, c in kept_kinds.most_common())}); mean diversity score
{statistics.fmean(diversity) if diversity else 0:.3f}. The first rounds:</p>
{table(["round", "spec", "kept (selection order)", "diversity", "designer said"], rows, raw_columns=(1, 2, 4))}
<h3>Coverage gaps</h3>
<p>Values that define the round's own style mode but that no kept image held, by the number of rounds
(selection also lists the other modes' values, always missing from a one-mode batch; left out here).
Selection stores the gaps on the profile and the next optimize call reads them.</p>
{svg_bars(gaps.most_common(12), color="#f28e2b")}
<p>Of these, the ones some generated image in the pool did hold, i.e. that selection chose to leave out:</p>
{svg_bars(gaps_in_pool.most_common(8), color="#edc948")}
</section>"""


def section_calls(journey: Journey, client: Client) -> str:
    rows = [
        [route, len(ms), f"{statistics.median(ms):.0f}", f"{max(ms):.0f}"]
        for route, ms in sorted(client.timings.items())
    ]
    return f"""
<section id="calls"><h2>5. The calls</h2>
<p>Every request of the run (HTTP round trip as the demo saw it, milliseconds; the first call of each
function includes its cold start).</p>
{table(["route", "calls", "median ms", "max ms"], rows)}
</section>"""


CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;vertical-align:top;text-align:left}
th{background:#f3f3f3}.row{display:flex;gap:1.5em;flex-wrap:wrap;align-items:flex-start}
.swatch{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:5px}
mark.good{background:#d7f0d0}mark.bad{background:#f8d0d0}blockquote{background:#f7f7f7;margin:.4em 0;padding:.5em 1em;font-family:ui-monospace,monospace;font-size:12px}
.muted{color:#777}code{background:#f3f3f3;padding:0 3px}
"""


def headline(journey: Journey) -> str:
    """One sentence: how the like rate moved, against the random-prompt baseline."""
    rates = [r.like_rate for r in journey.rounds if r.like_rate is not None]
    base = [r.baseline for r in journey.rounds if r.baseline is not None]
    if not rates:
        return "No image was kept, so the designer gave no feedback."
    third = max(1, len(rates) // 3)
    first, last = statistics.fmean(rates[:third]), statistics.fmean(rates[-third:])
    baseline_text = f"; random prompts of the same phrases would get {statistics.fmean(base):.0%}" if base else ""
    return (
        f"The designer liked {first:.0%} of the kept images in the first {third} rounds and "
        f"{last:.0%} in the last {third}{baseline_text}."
    )


def render_report(journey: Journey, client: Client, window: int) -> str:
    health = journey.health or {}
    notes = "".join(f"<li>{esc(n)}</li>" for n in journey.notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Designer BFF ML: demo report</title><style>{CSS}</style></head>
<body>
<h1>Designer BFF ML: one designer's journey</h1>
<p class="muted">Service {esc(journey.url)} (version {esc(health.get("version", "?"))}), user <code>{esc(journey.user_id)}</code>,
{len(journey.rounds)} rounds, {len(journey.retrains)} retrain requests, {journey.elapsed_s:.0f} s,
{time.strftime("%Y-%m-%d %H:%M", time.localtime(journey.started))}. Produced by <code>make demo</code> (demo/run.py).</p>
{f"<ul>{notes}</ul>" if notes else ""}
<p><b>{esc(headline(journey))}</b></p>
{section_modes(journey)}
{section_learning(journey, window)}
{section_validation(journey)}
{section_selection(journey)}
{section_calls(journey, client)}
</body></html>
"""


def load_portfolio(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text())
    records = document["vlt_records"] if isinstance(document, dict) else document
    if not isinstance(records, list) or not records:
        raise SystemExit(f"{path}: expected a list of VLT records (or an object with vlt_records)")
    return records


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python demo/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("ML_SERVICE_URL"),
        help="the service (ML_SERVICE_URL); unset: start a local server",
    )
    parser.add_argument("--api-key", default=os.environ.get("ML_API_KEY"), help="sent as x-api-key (ML_API_KEY)")
    parser.add_argument("--rounds", type=int, default=40, help="generation rounds (40)")
    parser.add_argument("--images", type=int, default=6, help="simulated images per round (6)")
    parser.add_argument("--keep", type=int, default=3, help="images selection keeps per round (3)")
    parser.add_argument("--retrain-every", type=int, default=5, help="ask for a retrain every N rounds (5)")
    parser.add_argument(
        "--retrain-timeout", type=float, default=60.0, help="seconds to wait for a new model version (60)"
    )
    parser.add_argument(
        "--window", type=int, default=None, help="moving-average window of the chart (rounds/6, at least 3)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulation (7)")
    parser.add_argument("--user-id", default=None, help="the designer's id (a new demo-designer-… by default)")
    parser.add_argument(
        "--portfolio", type=Path, default=DEFAULT_PORTFOLIO, help="VLT records (a list, or {vlt_records: [...]})"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_REPORT, help="the report (demo/report.html)")
    parser.add_argument("--cleanup", action="store_true", help="delete the demo user's data afterwards")
    args = parser.parse_args(argv)
    if args.window is None:
        args.window = max(3, args.rounds // 6)
    if args.rounds < 1 or args.images < 1 or args.keep < 1 or args.retrain_every < 1:
        parser.error("--rounds, --images, --keep and --retrain-every must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    portfolio = load_portfolio(args.portfolio)

    def run(url: str, notes: list[str]) -> Journey:
        client = Client(url, args.api_key)
        try:
            journey = run_journey(client, args, portfolio)
            journey.notes[:0] = notes
        except ServiceError as error:
            hint = {
                0: f" (is the service running at {url}?)",
                401: " (set ML_API_KEY to the service's API key)",
                403: " (set ML_API_KEY to the service's API key)",
            }.get(error.status, "")
            print(f"\nthe service answered an error: {error}{hint}", file=sys.stderr)
            raise SystemExit(1) from None
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render_report(journey, client, args.window))
        return journey

    if args.url:
        journey = run(args.url, [])
    else:
        # The retrain queue's coalescing window is 30 s by default; a demo waits for every retrain.
        # Its own state: never the state file of a `make run` server (LOCAL_STATE_FILE).
        overrides = {
            "RETRAIN_COALESCE_SECONDS": os.environ.get("RETRAIN_COALESCE_SECONDS", "1"),
            "LOCAL_STATE_FILE": "",
        }
        with LocalServer(overrides) as server:
            print(f"started a local server at {server.url} (log: {server.log_path})", file=sys.stderr)
            journey = run(
                server.url,
                [
                    f"against a local server the demo started (RETRAIN_COALESCE_SECONDS={os.environ.get('RETRAIN_COALESCE_SECONDS', '1')}, log {server.log_path})"
                ],
            )
    print(headline(journey), file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
