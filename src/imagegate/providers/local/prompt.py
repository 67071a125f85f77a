"""Reading a plain-English prompt into the engine's operations, in the order they are written.

Every phrase the engine knows is a pattern; the prompt is scanned for all of them, overlaps are
resolved in favour of the phrase that starts first (then the longer one), and whatever words are
left over are ignored. A prompt with no known phrase is refused with the list of what the engine
can do, so the user can rephrase.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from imagegate.core.errors import InvalidRequest
from imagegate.providers.local import ops
from imagegate.providers.local.ops import Op

Layout = Literal["row", "column", "grid"]

_N = r"(\d+(?:\.\d+)?)"
_BY_PCT = rf"(?:\s+(?:it\s+)?(?:by\s+)?{_N}\s*%)?"


@dataclass(frozen=True, slots=True)
class Skill:
    name: str
    example: str
    pattern: re.Pattern[str]
    build: Callable[[re.Match[str]], Op | Layout]


@dataclass(slots=True)
class Plan:
    ops: list[Op] = field(default_factory=list)
    layout: Layout | None = None


def _num(match: re.Match[str], group: int, default: float) -> float:
    value = match.group(group)
    return float(value) if value is not None else default


def _relative(match: re.Match[str], group: int, default: float, *, up: bool) -> float:
    value = match.group(group)
    if value is None:
        return default
    delta = float(value) / 100
    return 1 + delta if up else 1 - delta


_UP_WORDS = ("increase", "raise", "boost", "more", "higher", "stronger", "add")


def _adjust(name: str, factory: Callable[[float], Op]) -> list[Skill]:
    """Three ways to ask for the same adjustment: 'more X', 'X 1.4' / 'X +20%', 'high-X'."""

    def by_word(match: re.Match[str]) -> Op:
        up = match.group(1) in _UP_WORDS
        return factory(_relative(match, 2, 1.4 if up else 0.7, up=up))

    def by_value(match: re.Match[str]) -> Op:
        sign, number, percent = match.group(1), float(match.group(2)), match.group(3)
        if sign:
            delta = number / 100 if percent else number
            return factory(1 + delta if sign == "+" else 1 - delta)
        return factory(number / 100 if percent else number)

    return [
        Skill(
            name,
            f"increase {name} by 20%",
            re.compile(
                rf"\b(increase|raise|boost|more|higher|stronger|add|decrease|reduce|lower|less|"
                rf"weaker)\s+(?:the\s+)?{name}\b{_BY_PCT}"
            ),
            by_word,
        ),
        Skill(
            name,
            f"{name} 1.5",
            re.compile(rf"\b{name}\s*(?:to|by|of|at|=|:)?\s*([+-])?{_N}\s*(%)?"),
            by_value,
        ),
        Skill(
            name,
            f"high {name}",
            re.compile(rf"\b(high|low)[\s-]+{name}\b"),
            lambda m: factory(1.5 if m.group(1) == "high" else 0.6),
        ),
    ]


def _rotate(match: re.Match[str]) -> Op:
    degrees = _num(match, 1, 90.0)
    direction = (match.group(2) or "").replace(" ", "").replace("-", "")
    if direction in ("counterclockwise", "anticlockwise", "ccw", "left", "totheleft"):
        degrees = -degrees
    return ops.rotate(degrees)


def _scale(match: re.Match[str]) -> Op:
    """'scale to 50%' is half size; 'enlarge by 50%' is 1.5x; 'shrink by 25%' is 0.75x."""
    verb, direction, preposition = match.group(1), (match.group(2) or "").strip(), match.group(3)
    percent = float(match.group(4)) / 100
    if preposition == "by" and (verb == "enlarge" or direction == "up"):
        return ops.scale_by(1 + percent)
    if preposition == "by" and (verb == "shrink" or direction == "down"):
        return ops.scale_by(1 - percent)
    return ops.scale_by(percent)


def _flip(match: re.Match[str]) -> Op:
    how = (match.group(1) or "").lower()
    if how.startswith(("vertical", "upside", "top")):
        return ops.flip_vertical()
    return ops.mirror()


SKILLS: tuple[Skill, ...] = (
    Skill(
        "grayscale",
        "make it grayscale",
        re.compile(
            r"\b(?:gr[ae]y[\s-]?scaled?|black[\s-]*(?:and|&|n)[\s-]*white|b\s*&\s*w|monochrome|"
            r"desaturated?|gr[ae]y)\b"
        ),
        lambda m: ops.grayscale(),
    ),
    Skill(
        "invert",
        "invert the colours",
        re.compile(r"\b(?:invert(?:ed|s)?|negative)\b"),
        lambda m: ops.invert(),
    ),
    Skill(
        "sepia", "sepia", re.compile(r"\b(?:sepia|vintage|old[\s-]photo)\b"), lambda m: ops.sepia()
    ),
    Skill(
        "blur",
        "blur radius 6",
        re.compile(
            r"\b(?:blur(?:red|ry|s)?|soften)\b(?:\s+(?:it\s+)?(?:by|with|of|at)?\s*(?:a\s+)?"
            r"(?:radius\s+(?:of\s+)?)?(\d+(?:\.\d+)?)(?!\d|\.\d|\s*(?:°|deg))\s*(?:px|pixels?)?)?"
        ),
        lambda m: ops.blur(_num(m, 1, 4.0)),
    ),
    Skill(
        "sharpen",
        "sharpen",
        re.compile(r"\b(?:sharpen(?:ed|s)?|sharper|crisper)\b"),
        lambda m: ops.sharpen(),
    ),
    Skill(
        "rotate",
        "rotate 90 degrees (clockwise unless you say counterclockwise)",
        re.compile(
            r"\b(?:rotate[ds]?|turn(?=\s+(?:it\s+)?(?:by\s+)?-?\d)|spin)\b\s*(?:it\s+|the\s+image\s+|"
            r"the\s+picture\s+)?(?:by\s+)?(-?\d+(?:\.\d+)?)?\s*(?:°|degrees?|deg)?\s*"
            r"(clockwise|cw|counter[\s-]?clockwise|anti[\s-]?clockwise|ccw|to\s+the\s+left|"
            r"to\s+the\s+right|left|right)?"
        ),
        _rotate,
    ),
    Skill(
        "upside down",
        "turn it upside down",
        re.compile(r"\bupside[\s-]down\b"),
        lambda m: ops.rotate(180),
    ),
    Skill(
        "flip",
        "flip vertically",
        re.compile(
            r"\bflip(?:ped|s)?\b(?:\s+(?:it\s+|the\s+(?:image|picture|photo)\s+)?(vertical(?:ly)?|"
            r"horizontal(?:ly)?|upside[\s-]down|"
            r"top[\s-]to[\s-]bottom|left[\s-]to[\s-]right))?"
        ),
        _flip,
    ),
    Skill(
        "flip",
        "flip vertically",
        re.compile(r"\b(vertical|horizontal)(?:ly)?[\s-]+flip(?:ped)?\b"),
        _flip,
    ),
    Skill("mirror", "mirror it", re.compile(r"\bmirror(?:ed|s)?\b"), lambda m: ops.mirror()),
    Skill(
        "brighten",
        "brighten by 20%",
        re.compile(rf"\b(?:brighten|brighter|lighten|lighter){_BY_PCT}"),
        lambda m: ops.brightness(_relative(m, 1, 1.3, up=True)),
    ),
    Skill(
        "darken",
        "darken by 20%",
        re.compile(rf"\b(?:darken|darker){_BY_PCT}"),
        lambda m: ops.brightness(_relative(m, 1, 0.7, up=False)),
    ),
    *_adjust("brightness", ops.brightness),
    *_adjust("contrast", ops.contrast),
    *_adjust("saturation", ops.saturation),
    Skill(
        "muted",
        "muted colours",
        re.compile(r"\b(?:less\s+saturated|muted|washed[\s-]out)\b"),
        lambda m: ops.saturation(0.5),
    ),
    Skill(
        "saturate",
        "more vivid colours",
        re.compile(r"\b(?:saturated?|vivid|vibrant|boost\s+(?:the\s+)?colou?rs?)\b"),
        lambda m: ops.saturation(1.6),
    ),
    Skill(
        "resize",
        "resize to 512x512",
        re.compile(
            r"\b(?:resize|scale|shrink|enlarge|make)\s+(?:it\s+|the\s+image\s+)?(?:down\s+|up\s+)?"
            r"(?:to\s+)?(\d{1,5})\s*(?:x|×|by)\s*(\d{1,5})(?:\s*(?:px|pixels))?"
        ),
        lambda m: ops.resize_to(int(m.group(1)), int(m.group(2))),
    ),
    Skill(
        "scale",
        "scale to 50%",
        re.compile(
            r"\b(resize|scale|shrink|enlarge)\s+(?:it\s+)?(down\s+|up\s+)?(to|by)?\s*"
            r"(\d+(?:\.\d+)?)\s*%"
        ),
        _scale,
    ),
    Skill(
        "half size",
        "half size",
        re.compile(r"\b(?:half\s+(?:the\s+)?size|halve)\b"),
        lambda m: ops.scale_by(0.5),
    ),
    Skill(
        "double size",
        "double the size",
        re.compile(r"\bdouble\s+(?:the\s+)?size\b"),
        lambda m: ops.scale_by(2.0),
    ),
    Skill(
        "crop",
        "crop to square, crop to 16:9",
        re.compile(r"\bcrop\s+(?:it\s+)?(?:to\s+)?(?:a\s+)?(?:(square)|(\d{1,3}):(\d{1,3}))"),
        lambda m: (
            ops.crop_to_ratio(1, 1)
            if m.group(1)
            else ops.crop_to_ratio(max(1, int(m.group(2))), max(1, int(m.group(3))))
        ),
    ),
    Skill(
        "transparent background",
        "make the background transparent",
        re.compile(
            r"\b(?:(?:make\s+)?(?:the\s+)?background\s+(?:transparent|removed?)|transparent\s+"
            r"background|remove\s+(?:the\s+)?background|no\s+background|cut\s*out)\b"
        ),
        lambda m: ops.transparent_background(),
    ),
    Skill(
        "posterize", "posterize", re.compile(r"\bposteri[sz]e[ds]?\b"), lambda m: ops.posterize()
    ),
    Skill("solarize", "solarize", re.compile(r"\bsolari[sz]e[ds]?\b"), lambda m: ops.solarize()),
    Skill(
        "auto contrast",
        "auto contrast",
        re.compile(r"\b(?:auto[\s-]?contrast|equali[sz]e|auto[\s-]?enhance|enhance)\b"),
        lambda m: ops.autocontrast(),
    ),
    Skill(
        "edges",
        "find edges",
        re.compile(r"\b(?:edge\s+detect(?:ion)?|find\s+(?:the\s+)?edges|edges|outline|sketch)\b"),
        lambda m: ops.edges(),
    ),
    Skill("emboss", "emboss", re.compile(r"\bemboss(?:ed)?\b"), lambda m: ops.emboss()),
    Skill(
        "pixelate",
        "pixelate 16",
        re.compile(
            r"\bpixel(?:ate[ds]?|i[sz]e[ds]?)\b(?:\s+(?:with\s+)?(\d+)\s*(?:px|pixels?)?"
            r"(?:\s+blocks?)?)?"
        ),
        lambda m: ops.pixelate(int(_num(m, 1, 12))),
    ),
)

LAYOUTS: tuple[Skill, ...] = (
    Skill(
        "side by side",
        "side by side",
        re.compile(
            r"\b(?:side[\s-]by[\s-]side|in\s+a\s+row|horizontal(?:ly)?|left\s+to\s+right)\b"
        ),
        lambda m: "row",
    ),
    Skill(
        "stacked",
        "stack vertically",
        re.compile(
            r"\b(?:stack(?:ed)?(?:\s+(?:them\s+)?vertical(?:ly)?)?|vertical(?:ly)?|top\s+to\s+bottom|"
            r"in\s+a\s+column|one\s+above\s+the\s+other)\b"
        ),
        lambda m: "column",
    ),
    Skill(
        "grid",
        "in a grid",
        re.compile(r"\b(?:grid|collage|mosaic|tiled?|contact\s+sheet)\b"),
        lambda m: "grid",
    ),
    Skill(
        "combine",
        "combine them",
        re.compile(r"\b(?:combine|merge|join|put\s+(?:them\s+)?together|montage)\b"),
        lambda m: "grid",
    ),
)
_COMBINE = "combine"


def capabilities() -> str:
    seen: dict[str, str] = {}
    for skill in SKILLS:
        seen.setdefault(skill.name, skill.example)
    listed = "; ".join(seen.values())
    layouts = ", ".join(skill.example for skill in LAYOUTS)
    return (
        f"It understands: {listed}. With several images it combines them ({layouts}). "
        "Mask: the edit applies only where the mask is transparent."
    )


def parse_prompt(prompt: str, *, model: str = "local/pillow") -> Plan:
    text = prompt.lower()
    found: list[tuple[int, int, Skill, re.Match[str]]] = []
    for skill in (*SKILLS, *LAYOUTS):
        for match in skill.pattern.finditer(text):
            if match.end() > match.start():
                found.append((match.start(), -(match.end() - match.start()), skill, match))
    found.sort(key=lambda item: (item[0], item[1]))
    plan = Plan()
    taken_until = -1
    for start, neg_len, skill, match in found:
        if start < taken_until:
            continue
        taken_until = start - neg_len
        built = skill.build(match)
        if isinstance(built, str):
            if plan.layout is None or skill.name != _COMBINE:
                plan.layout = built
        else:
            plan.ops.append(built)
    if not plan.ops and plan.layout is None:
        raise InvalidRequest(
            f"{model} did not understand the prompt {_quote(prompt)}. {capabilities()} "
            "Write one or more, such as 'grayscale, rotate 90 degrees'.",
            param="prompt",
            code="prompt_not_understood",
        )
    return plan


def _quote(prompt: str) -> str:
    return repr(prompt if len(prompt) <= 60 else prompt[:57] + "...")
