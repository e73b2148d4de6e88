"""The prompt vocabulary: every phrase a generated prompt can hold, by slot, and its parser.

The phrases start from the seed's templates (``fashionPrompts.js``: base template, style
templates, garment modifiers), kept verbatim so that a prompt the Node side built from the
seed's templates parses too, and are extended with common fashion-photography phrases.
Because every phrase that can appear is known, a ``prompt_used`` sent back with feedback is
turned into the same features again by :func:`parse_prompt`.

A prompt is a comma-separated list of segments, rendered in slot order by :func:`render`:
one phrase per slot (two for ``mood``), plus the garment description built from the spec
(not a vocabulary phrase: it is dictated by the spec, not chosen by the policy).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from designer_ml.vlt import ParsedRecord, normalize_value

# Slot order is the order segments appear in a rendered prompt. ``picks`` is how many
# phrases of the slot a prompt holds.
SLOTS: tuple[tuple[str, int], ...] = (
    ("quality", 1),
    ("framing", 1),
    ("subject", 1),
    ("mood", 2),
    # the garment description goes here (render inserts it)
    ("detail", 1),
    ("pose", 1),
    ("lighting", 1),
    ("shadow", 1),
    ("background", 1),
    ("finishing", 1),
)
SLOT_NAMES = tuple(name for name, _ in SLOTS)
PICKS = dict(SLOTS)
DESCRIPTION_AFTER = "mood"

_PHRASES: dict[str, tuple[str, ...]] = {
    "quality": (
        "high fashion photography",
        "professional product shot",
        "studio quality",
        "8k resolution",
        "editorial fashion photography",
        "lookbook photography",
        "magazine cover quality",
        "ultra detailed",
    ),
    "framing": (
        "full body",
        "3/4 angle",
        "3/4 body",
        "waist up",
        "emphasis on lower half",
        "close-up detail shot",
        "low angle shot",
        "eye level shot",
    ),
    "subject": (
        "professional fashion model",
        "professional model",
        "runway model",
        "editorial model",
    ),
    "mood": (
        "sophisticated",
        "refined",
        "graceful",
        "clean",
        "simple",
        "understated",
        "soft",
        "dreamy",
        "feminine",
        "bold",
        "striking",
        "powerful",
        "timeless",
        "polished",
        "edgy",
        "rebellious",
        "relaxed",
        "effortless",
        "free-spirited",
        "earthy",
        "energetic",
        "sporty",
        "luxurious",
        "opulent",
    ),
    "detail": (
        "emphasize drape and movement",
        "fabric flow",
        "silhouette emphasis",
        "neckline detail",
        "sleeve construction",
        "fit and tailoring",
        "leg line",
        "hemline movement",
        "texture of the knit",
        "structured shoulders",
        "precise tailoring",
        "fabric texture detail",
    ),
    "pose": (
        "poised stance",
        "elegant posture",
        "simple pose",
        "straight on",
        "flowing movement",
        "gentle pose",
        "dynamic pose",
        "confident stance",
        "walking pose",
        "relaxed pose",
    ),
    "lighting": (
        "sophisticated studio lighting",
        "soft dramatic lighting",
        "even studio lighting",
        "bright and clean",
        "soft natural window light",
        "dramatic side lighting",
        "golden hour light",
        "diffused softbox lighting",
        "high-key lighting",
        "low-key lighting",
        "rim lighting",
        "studio lighting",
    ),
    "shadow": (
        "subtle shadows",
        "gentle shadows",
        "deep shadows",
    ),
    "background": (
        "clean minimal background",
        "soft gray or white",
        "seamless white backdrop",
        "neutral studio backdrop",
        "urban street background",
        "natural outdoor setting",
        "textured concrete wall",
    ),
    "finishing": (
        "sharp focus",
        "detailed texture",
        "centered composition",
        "shallow depth of field",
        "rule of thirds composition",
        "crisp detail",
    ),
}

# The seed's base template (first choice of each slot when nothing else says otherwise).
BASE_TEMPLATE: dict[str, tuple[str, ...]] = {
    "quality": ("high fashion photography",),
    "framing": ("full body",),
    "subject": ("professional fashion model",),
    "mood": (),
    "detail": ("fabric texture detail",),
    "pose": ("poised stance",),
    "lighting": ("sophisticated studio lighting",),
    "shadow": ("subtle shadows",),
    "background": ("clean minimal background",),
    "finishing": ("sharp focus",),
}

# The seed's style templates, extended: per style, the phrases a designer of that style
# expects first (mood, lighting, pose; some also background/shadow).
STYLE_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "elegant": {
        "mood": ("sophisticated", "refined", "graceful"),
        "lighting": ("sophisticated studio lighting", "soft dramatic lighting"),
        "pose": ("poised stance", "elegant posture"),
    },
    "minimalist": {
        "mood": ("clean", "simple", "understated"),
        "lighting": ("even studio lighting", "bright and clean"),
        "pose": ("simple pose", "straight on"),
        "background": ("seamless white backdrop",),
    },
    "romantic": {
        "mood": ("soft", "dreamy", "feminine"),
        "lighting": ("soft natural window light",),
        "shadow": ("gentle shadows",),
        "pose": ("flowing movement", "gentle pose"),
    },
    "dramatic": {
        "mood": ("bold", "striking", "powerful"),
        "lighting": ("dramatic side lighting",),
        "shadow": ("deep shadows",),
        "pose": ("dynamic pose", "confident stance"),
    },
    "classic": {
        "mood": ("timeless", "polished", "refined"),
        "lighting": ("sophisticated studio lighting",),
        "pose": ("poised stance", "straight on"),
    },
    "edgy": {
        "mood": ("edgy", "rebellious", "bold"),
        "lighting": ("low-key lighting", "rim lighting"),
        "pose": ("confident stance", "dynamic pose"),
        "background": ("urban street background", "textured concrete wall"),
    },
    "casual": {
        "mood": ("relaxed", "effortless", "simple"),
        "lighting": ("soft natural window light", "bright and clean"),
        "pose": ("relaxed pose", "walking pose"),
        "background": ("natural outdoor setting",),
    },
    "bohemian": {
        "mood": ("free-spirited", "earthy", "dreamy"),
        "lighting": ("golden hour light",),
        "pose": ("flowing movement", "relaxed pose"),
        "background": ("natural outdoor setting",),
    },
    "sporty": {
        "mood": ("energetic", "sporty", "bold"),
        "lighting": ("high-key lighting", "bright and clean"),
        "pose": ("dynamic pose", "walking pose"),
    },
    "luxurious": {
        "mood": ("luxurious", "opulent", "sophisticated"),
        "lighting": ("soft dramatic lighting", "rim lighting"),
        "pose": ("elegant posture", "poised stance"),
    },
}

# Words a VLT analyser (or a cluster summary) uses for a style, folded onto a template.
STYLE_SYNONYMS: dict[str, str] = {
    "elegant": "elegant",
    "sophisticated": "elegant",
    "chic": "elegant",
    "refined": "elegant",
    "graceful": "elegant",
    "formal": "elegant",
    "evening": "elegant",
    "minimalist": "minimalist",
    "minimal": "minimalist",
    "clean": "minimalist",
    "simple": "minimalist",
    "understated": "minimalist",
    "modern": "minimalist",
    "basic": "minimalist",
    "romantic": "romantic",
    "feminine": "romantic",
    "soft": "romantic",
    "dreamy": "romantic",
    "delicate": "romantic",
    "dramatic": "dramatic",
    "bold": "dramatic",
    "striking": "dramatic",
    "powerful": "dramatic",
    "avant garde": "dramatic",
    "classic": "classic",
    "timeless": "classic",
    "preppy": "classic",
    "tailored": "classic",
    "edgy": "edgy",
    "grunge": "edgy",
    "punk": "edgy",
    "streetwear": "edgy",
    "street": "edgy",
    "rock": "edgy",
    "casual": "casual",
    "relaxed": "casual",
    "everyday": "casual",
    "effortless": "casual",
    "comfortable": "casual",
    "bohemian": "bohemian",
    "boho": "bohemian",
    "free spirited": "bohemian",
    "earthy": "bohemian",
    "vintage": "bohemian",
    "sporty": "sporty",
    "athletic": "sporty",
    "sport": "sporty",
    "athleisure": "sporty",
    "energetic": "sporty",
    "luxurious": "luxurious",
    "luxury": "luxurious",
    "opulent": "luxurious",
    "glamorous": "luxurious",
    "glam": "luxurious",
}

# The seed's garment modifiers, extended: shots (framing) and details per garment family.
GARMENT_MODIFIERS: dict[str, dict[str, tuple[str, ...]]] = {
    "dress": {
        "framing": ("full body",),
        "detail": ("emphasize drape and movement", "fabric flow", "silhouette emphasis"),
    },
    "top": {"framing": ("3/4 body", "waist up"), "detail": ("neckline detail", "sleeve construction")},
    "pants": {"framing": ("full body", "emphasis on lower half"), "detail": ("fit and tailoring", "leg line")},
    "skirt": {"framing": ("full body", "emphasis on lower half"), "detail": ("hemline movement", "fabric flow")},
    "outerwear": {"framing": ("full body", "3/4 angle"), "detail": ("structured shoulders", "precise tailoring")},
    "knitwear": {"framing": ("3/4 body", "waist up"), "detail": ("texture of the knit", "neckline detail")},
    "suit": {"framing": ("full body", "3/4 angle"), "detail": ("precise tailoring", "fit and tailoring")},
    "other": {"framing": ("full body",), "detail": ("fabric texture detail",)},
}
_GARMENT_WORDS: dict[str, str] = {
    "dress": "dress",
    "gown": "dress",
    "jumpsuit": "dress",
    "playsuit": "dress",
    "top": "top",
    "shirt": "top",
    "blouse": "top",
    "t shirt": "top",
    "tee": "top",
    "tank": "top",
    "vest": "top",
    "bodysuit": "top",
    "bra": "top",
    "hoodie": "top",
    "sweatshirt": "top",
    "polo": "top",
    "camisole": "top",
    "pants": "pants",
    "trousers": "pants",
    "jeans": "pants",
    "leggings": "pants",
    "shorts": "pants",
    "joggers": "pants",
    "chinos": "pants",
    "skirt": "skirt",
    "jacket": "outerwear",
    "coat": "outerwear",
    "blazer": "outerwear",
    "parka": "outerwear",
    "outerwear": "outerwear",
    "cardigan": "knitwear",
    "trench": "outerwear",
    "sweater": "knitwear",
    "jumper": "knitwear",
    "knit": "knitwear",
    "pullover": "knitwear",
    "suit": "suit",
}

NEGATIVE_BASE: tuple[str, ...] = (
    "blurry",
    "low quality",
    "distorted proportions",
    "deformed hands",
    "extra limbs",
    "bad anatomy",
    "watermark",
    "text",
    "logo",
    "cropped garment",
    "out of frame",
    "oversaturated",
)


@dataclass(frozen=True)
class Phrase:
    """One vocabulary phrase: its text (rendered verbatim), slot and the styles that use it."""

    index: int
    text: str
    slot: str
    styles: tuple[str, ...] = field(default=())


def _build() -> tuple[Phrase, ...]:
    phrases: list[Phrase] = []
    for slot in SLOT_NAMES:
        for text in _PHRASES[slot]:
            styles = tuple(sorted(s for s, t in STYLE_TEMPLATES.items() if text in t.get(slot, ())))
            phrases.append(Phrase(len(phrases), text, slot, styles))
    return tuple(phrases)


PHRASES: tuple[Phrase, ...] = _build()
BY_TEXT: dict[str, Phrase] = {p.text: p for p in PHRASES}
BY_SLOT: dict[str, tuple[Phrase, ...]] = {s: tuple(p for p in PHRASES if p.slot == s) for s in SLOT_NAMES}
N_PHRASES = len(PHRASES)
# Stamped on every reward model: a model whose phrase layout differs is not used.
VOCABULARY_HASH = hashlib.sha256("\n".join(f"{p.slot}:{p.text}" for p in PHRASES).encode()).hexdigest()[:16]

_NORMALIZED: dict[str, Phrase] = {normalize_value(p.text): p for p in PHRASES}
# Longest first, so that "soft dramatic lighting" wins over "soft".
_PATTERN = re.compile(
    r"(?<![\w])(" + "|".join(re.escape(k) for k in sorted(_NORMALIZED, key=len, reverse=True)) + r")(?![\w])"
)

# Mood words the parser should not read inside an unrelated segment ("soft" in "soft gray or
# white" is the background phrase, not the mood): a bare mood word counts only as its own segment.
_SEGMENT_ONLY_SLOTS = frozenset({"mood"})


def parse_prompt(prompt: str | None) -> list[Phrase]:
    """The vocabulary phrases a prompt holds, in order of appearance, each at most once.

    Segments (split on commas) that are exactly a phrase count first; inside longer segments
    the longest known phrases are matched, except bare mood words, which count only as their
    own segment (so "soft" inside "soft gray or white" is not the mood "soft").
    """
    if not prompt:
        return []
    found: dict[int, Phrase] = {}
    for segment in str(prompt).split(","):
        text = normalize_value(segment)
        if not text:
            continue
        exact = _NORMALIZED.get(text)
        if exact is not None:
            found.setdefault(exact.index, exact)
            continue
        for match in _PATTERN.finditer(text):
            phrase = _NORMALIZED[match.group(1)]
            if phrase.slot not in _SEGMENT_ONLY_SLOTS:
                found.setdefault(phrase.index, phrase)
    return list(found.values())


def unknown_segments(prompt: str | None) -> list[str]:
    """Segments of a prompt that hold no vocabulary phrase (kept verbatim, e.g. a base prompt's subject)."""
    out: list[str] = []
    for segment in str(prompt or "").split(","):
        text = segment.strip()
        norm = normalize_value(text)
        if norm and norm not in _NORMALIZED and not _PATTERN.search(norm):
            out.append(text)
    return out


def style_of(values: Iterable[str]) -> str | None:
    """The style template that the first recognisable value names (normalised words)."""
    for value in values:
        norm = normalize_value(value)
        if norm in STYLE_SYNONYMS:
            return STYLE_SYNONYMS[norm]
        for word in norm.split():
            if word in STYLE_SYNONYMS:
                return STYLE_SYNONYMS[word]
    return None


def garment_family(parsed: ParsedRecord) -> str:
    """The garment family of a spec ("dress", "top", ...; "other" when unknown)."""
    for value in parsed.values("garment_type"):
        if value in _GARMENT_WORDS:
            return _GARMENT_WORDS[value]
        for word in value.split():
            if word in _GARMENT_WORDS:
                return _GARMENT_WORDS[word]
    return "other"


def _display_forms(raw: Any, out: dict[str, str], depth: int = 0) -> dict[str, str]:
    """Normalised value -> how the spec wrote it (lower case, hyphens kept: "a-line")."""
    if isinstance(raw, str):
        text = " ".join(raw.strip().lower().split())
        if text and len(text) <= 60:
            out.setdefault(normalize_value(raw), text)
    elif isinstance(raw, Mapping) and depth < 3:
        for value in raw.values():
            _display_forms(value, out, depth + 1)
    elif isinstance(raw, list | tuple) and depth < 3:
        for value in raw:
            _display_forms(value, out, depth + 1)
    return out


def describe(parsed: ParsedRecord, fill: Mapping[str, str] | None = None, raw: Any = None) -> str:
    """The garment description of a spec: "black matte a-line midi dress with v-neck and sleeveless".

    ``fill`` supplies values for slots the spec leaves empty (coverage gaps); the spec wins.
    ``raw`` (the spec as sent) gives the values' written forms; without it, normalised forms.
    """
    fill = dict(fill or {})
    shown = _display_forms(raw, {}) if raw is not None else {}

    def first(slot: str) -> str:
        values = parsed.values(slot)
        value = values[0] if values else fill.get(slot, "")
        return shown.get(value, value).replace(",", " ")

    words = [
        first("style.overall"),
        first("colors.primary"),
        first("colors.finish"),
        first("attributes.pattern") or first("pattern"),
        first("attributes.fabric") or first("fabric") or first("attributes.material"),
        first("attributes.silhouette"),
        first("attributes.length"),
        first("garment_type") or "garment",
    ]
    text = " ".join(w for w in words if w)
    extras = [first("attributes.neckline"), first("attributes.sleeve_length")]
    extras = [e for e in extras if e]
    if extras:
        text += " with " + " and ".join(extras)
    return text


def template_phrases(style: str | None, family: str) -> dict[str, tuple[str, ...]]:
    """The plain template of a style and garment family: per slot, the phrases it uses."""
    chosen: dict[str, tuple[str, ...]] = {}
    style_template = STYLE_TEMPLATES.get(style or "", {})
    garment = GARMENT_MODIFIERS.get(family, GARMENT_MODIFIERS["other"])
    for slot, picks in SLOTS:
        pool = style_template.get(slot) or garment.get(slot) or BASE_TEMPLATE[slot]
        if slot == "mood" and not style_template:
            chosen[slot] = ()
        else:
            chosen[slot] = tuple(pool[:picks])
    return chosen


def preferred_pool(style: str | None, family: str) -> dict[str, tuple[str, ...]]:
    """Per slot, the phrases the style and garment family suggest (candidates lean on them)."""
    style_template = STYLE_TEMPLATES.get(style or "", {})
    garment = GARMENT_MODIFIERS.get(family, GARMENT_MODIFIERS["other"])
    pool: dict[str, tuple[str, ...]] = {}
    for slot in SLOT_NAMES:
        merged = list(style_template.get(slot, ())) + list(garment.get(slot, ())) + list(BASE_TEMPLATE[slot])
        pool[slot] = tuple(dict.fromkeys(merged))
    return pool


def render(choice: Mapping[str, Sequence[str]], description: str, extra: Sequence[str] = ()) -> str:
    """The prompt text: phrases in slot order, the garment description after the mood words."""
    parts: list[str] = []
    for slot in SLOT_NAMES:
        parts.extend(choice.get(slot, ()))
        if slot == DESCRIPTION_AFTER:
            if description:
                parts.append(description)
            parts.extend(extra)
    return ", ".join(p for p in parts if p)
