"""Translating what the client asked for into the sizing style a model takes.

The client's fields are first read as one intent: exact pixels (``size=WxH`` or ``width`` with
``height``), a shape (``aspect_ratio``), a tier (``resolution``, or ``image_size`` holding a tier),
a preset name (``image_size`` holding one of the model's presets), or ``auto``. The intent is then
written in the model's own style, but only where nothing the client asked for is lost:

==================  ==========================================================================
model style         accepts
==================  ==========================================================================
openai_size         pixels that are one of its sizes (or fit its custom rule); a shape that
                    exactly one of its sizes has (``3:2`` -> ``1536x1024``); ``auto``
pixels              pixels within its rule; ``auto`` (keep the input's size)
aspect_ratio        a shape it lists; pixels whose reduced shape it lists (``1536x1024`` ->
                    ``3:2``); a tier it lists, alone or with either of those; ``auto``
resolution_tier     a tier it lists; ``auto``
preset              a preset it lists; pixels equal to one preset's size (``1024x768`` ->
                    ``landscape_4_3``) or, with a custom rule, any pixels in the rule; a shape
                    exactly one preset has; ``auto`` when it lists ``auto``
==================  ==========================================================================

Anything else is a 400 that names what the model takes. Contradictory fields (``size=1024x1024``
with ``aspect_ratio=16:9``) are a 400 too. Every value is read by a parser that refuses garbage,
zero, negative and absurdly large sides with a 400 before any arithmetic touches it: nothing a
client sends can reach a division by zero here.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from imagegate.catalog.cards import (
    MAX_SANE_SIDE,
    ModelCard,
    PixelRule,
    SizingStyle,
    parse_ratio,
    parse_size,
)
from imagegate.core.errors import InvalidRequest
from imagegate.core.request import SizingRequest


@dataclass(frozen=True, slots=True)
class ResolvedSizing:
    """The size fields to send, in the model's style; all None means "the model's default"."""

    size: str | None = None
    width: int | None = None
    height: int | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    preset: str | None = None

    @property
    def pixels(self) -> tuple[int, int] | None:
        if self.width is not None and self.height is not None:
            return self.width, self.height
        return parse_size(self.size) if self.size else None


@dataclass(frozen=True, slots=True)
class _Intent:
    pixels: tuple[int, int] | None = None
    ratio: Fraction | None = None
    ratio_text: str | None = None
    tier: str | None = None
    preset: str | None = None
    auto: bool = False

    @property
    def empty(self) -> bool:
        return not (self.pixels or self.ratio or self.tier or self.preset or self.auto)


def resolve_sizing(req: SizingRequest, card: ModelCard) -> ResolvedSizing:
    intent = _read_intent(req, card)
    if intent.empty:
        return ResolvedSizing()
    style = card.sizing.style
    if style is SizingStyle.OPENAI_SIZE:
        return _to_openai_size(intent, card)
    if style is SizingStyle.PIXELS:
        return _to_pixels(intent, card)
    if style is SizingStyle.ASPECT_RATIO:
        return _to_aspect_ratio(intent, card)
    if style is SizingStyle.RESOLUTION_TIER:
        return _to_tier(intent, card)
    return _to_preset(intent, card)


def _read_intent(req: SizingRequest, card: ModelCard) -> _Intent:
    pixels: tuple[int, int] | None = None
    auto = False
    if req.size is not None:
        if req.size == "auto":
            auto = True
        else:
            pixels = _request_size(req.size)
    if (req.width is None) != (req.height is None):
        raise InvalidRequest(
            "width and height go together: send both, or use size=WxH.",
            param="width" if req.width is None else "height",
        )
    if req.width is not None and req.height is not None:
        given = (_request_side(req.width, "width"), _request_side(req.height, "height"))
        if pixels is not None and pixels != given:
            raise InvalidRequest(
                f"size={req.size} contradicts width={req.width}, height={req.height}; send one.",
                param="size",
                code="conflicting_parameters",
            )
        pixels = given
    ratio: Fraction | None = None
    ratio_text: str | None = None
    if req.aspect_ratio is not None:
        if req.aspect_ratio in ("auto", "match_input_image"):
            auto = True
        else:
            ratio, ratio_text = _request_ratio(req.aspect_ratio), req.aspect_ratio
            if pixels is not None and Fraction(pixels[0], pixels[1]) != ratio:
                raise InvalidRequest(
                    f"aspect_ratio={req.aspect_ratio} contradicts the size "
                    f"{pixels[0]}x{pixels[1]}; send one of them.",
                    param="aspect_ratio",
                    code="conflicting_parameters",
                )
    tier = _request_tier(req.resolution, "resolution") if req.resolution is not None else None
    preset: str | None = None
    if req.image_size is not None:
        value = req.image_size
        if value in card.sizing.presets:
            preset = value
        elif value.upper() in {t.upper() for t in card.sizing.resolutions} or _looks_like_tier(
            value
        ):
            if tier is not None and tier.upper() != value.upper():
                raise InvalidRequest(
                    f"image_size={value} contradicts resolution={tier}.",
                    param="image_size",
                    code="conflicting_parameters",
                )
            tier = value.upper()
        elif value == "auto":
            auto = True
        else:
            raise InvalidRequest(
                f"image_size={_show(value)} is neither a preset nor a resolution tier {card.id} "
                f"takes. {describe_sizing(card)}",
                param="image_size",
            )
    return _Intent(
        pixels=pixels,
        ratio=ratio,
        ratio_text=ratio_text,
        tier=tier,
        preset=preset,
        auto=auto and not (pixels or ratio or preset),
    )


def _request_size(text: str) -> tuple[int, int]:
    """A client's ``size``: WIDTHxHEIGHT with both sides 1-MAX_SANE_SIDE, else a 400."""
    parsed = parse_size(text)
    if parsed is None:
        raise InvalidRequest(
            f"size must be 'auto' or WIDTHxHEIGHT with each side 1-{MAX_SANE_SIDE:,} pixels, "
            f"such as '1024x1024'; got {_show(text)}.",
            param="size",
        )
    return parsed


def _request_side(value: int, param: str) -> int:
    if not 1 <= value <= MAX_SANE_SIDE:
        raise InvalidRequest(
            f"{param} must be 1-{MAX_SANE_SIDE:,} pixels; got {value}.",
            param=param,
            code="integer_below_min_value" if value < 1 else "integer_above_max_value",
        )
    return value


def _request_ratio(text: str) -> Fraction:
    try:
        return parse_ratio(text)
    except ValueError:
        raise InvalidRequest(
            f"aspect_ratio must be W:H with both sides above 0 (at most {MAX_SANE_SIDE:,}), "
            f"such as '16:9', or 'auto'; got {_show(text)}.",
            param="aspect_ratio",
        ) from None


def _request_tier(text: str, param: str) -> str:
    # An empty or blank tier would read as "no tier" and be silently dropped: refuse it instead.
    if not text.strip():
        raise InvalidRequest(
            f"{param} must be a tier such as '1K', '2K' or '4K'; got {_show(text)}.", param=param
        )
    return text


def _show(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _looks_like_tier(value: str) -> bool:
    # ASCII digits only: str.isdigit() is true for "²" and "٣", which are no tier anyone lists.
    digits = value.upper().rstrip("K").replace(".", "", 1)
    return digits.isascii() and digits.isdigit()


def _refuse(card: ModelCard, asked: str, param: str) -> InvalidRequest:
    return InvalidRequest(
        f"{card.id} cannot honour {asked}. {describe_sizing(card)}",
        param=param,
        code="unsupported_size",
    )


def _to_openai_size(intent: _Intent, card: ModelCard) -> ResolvedSizing:
    spec = card.sizing
    if intent.tier or intent.preset:
        raise _refuse(
            card,
            f"a resolution tier or preset ({intent.tier or intent.preset})",
            "resolution" if intent.tier else "image_size",
        )
    if intent.auto:
        return ResolvedSizing(size="auto" if "auto" in spec.sizes else None)
    if intent.pixels is not None:
        width, height = intent.pixels
        text = f"{width}x{height}"
        if text in spec.sizes:
            return ResolvedSizing(size=text)
        if spec.custom is not None:
            _check_rule(spec.custom, width, height, card)
            return ResolvedSizing(size=text)
        raise _refuse(card, f"size {text}", "size")
    assert intent.ratio is not None
    matches = [
        s for s in spec.sizes if (p := parse_size(s)) and Fraction(p[0], p[1]) == intent.ratio
    ]
    if len(matches) == 1:
        return ResolvedSizing(size=matches[0])
    raise _refuse(
        card, f"aspect_ratio {intent.ratio_text} (no single size of that shape)", "aspect_ratio"
    )


def _to_pixels(intent: _Intent, card: ModelCard) -> ResolvedSizing:
    rule = card.sizing.custom
    assert rule is not None
    if intent.pixels is None:
        if intent.ratio:
            raise _refuse(card, f"aspect_ratio {intent.ratio_text} without pixels", "aspect_ratio")
        if intent.tier:
            raise _refuse(card, f"resolution {intent.tier}", "resolution")
        if intent.preset:
            raise _refuse(card, f"image_size {intent.preset}", "image_size")
        return ResolvedSizing()  # auto: keep the input's size
    width, height = intent.pixels
    _check_rule(rule, width, height, card)
    return ResolvedSizing(width=width, height=height)


def _to_aspect_ratio(intent: _Intent, card: ModelCard) -> ResolvedSizing:
    spec = card.sizing
    if intent.preset:
        raise _refuse(card, f"image_size {intent.preset}", "image_size")
    tier = _check_tier(intent.tier, card) if intent.tier else None
    if intent.auto:
        return ResolvedSizing(
            aspect_ratio="auto" if "auto" in spec.aspect_ratios else None, resolution=tier
        )
    wanted = intent.ratio
    asked = f"aspect_ratio {intent.ratio_text}"
    if intent.pixels is not None:
        width, height = intent.pixels
        wanted = Fraction(width, height)
        asked = f"size {width}x{height} (shape {wanted.numerator}:{wanted.denominator})"
    if wanted is None:
        return ResolvedSizing(resolution=tier)
    for listed in spec.aspect_ratios:
        if listed != "auto" and parse_ratio(listed) == wanted:
            return ResolvedSizing(aspect_ratio=listed, resolution=tier)
    raise _refuse(card, asked, "size" if intent.pixels else "aspect_ratio")


def _to_tier(intent: _Intent, card: ModelCard) -> ResolvedSizing:
    if intent.pixels or intent.ratio or intent.preset:
        asked = (
            "exact pixels"
            if intent.pixels
            else f"aspect_ratio {intent.ratio_text}"
            if intent.ratio
            else f"image_size {intent.preset}"
        )
        raise _refuse(
            card,
            asked,
            "size" if intent.pixels else ("aspect_ratio" if intent.ratio else "image_size"),
        )
    if intent.auto:
        return ResolvedSizing()
    return ResolvedSizing(resolution=_check_tier(intent.tier, card))


def _to_preset(intent: _Intent, card: ModelCard) -> ResolvedSizing:
    spec = card.sizing
    if intent.tier:
        raise _refuse(card, f"resolution {intent.tier}", "resolution")
    if intent.preset:
        return ResolvedSizing(preset=intent.preset)
    if intent.auto:
        return ResolvedSizing(preset="auto" if "auto" in spec.presets else None)
    if intent.pixels is not None:
        width, height = intent.pixels
        for name, size in spec.presets.items():
            if parse_size(size) == (width, height):
                return ResolvedSizing(preset=name)
        if spec.custom is not None:
            _check_rule(spec.custom, width, height, card)
            return ResolvedSizing(width=width, height=height)
        raise _refuse(card, f"size {width}x{height}", "size")
    assert intent.ratio is not None
    matches = [
        name
        for name, size in spec.presets.items()
        if (p := parse_size(size)) and Fraction(p[0], p[1]) == intent.ratio
    ]
    if len(matches) == 1:
        return ResolvedSizing(preset=matches[0])
    raise _refuse(
        card,
        f"aspect_ratio {intent.ratio_text} "
        f"({'several presets' if matches else 'no preset'} of that shape)",
        "aspect_ratio",
    )


def _check_rule(rule: PixelRule, width: int, height: int, card: ModelCard) -> None:
    problem = rule.problem(width, height)
    if problem is not None:
        raise InvalidRequest(
            f"size {width}x{height} does not fit {card.id}: {problem}. {describe_sizing(card)}",
            param="size",
            code="unsupported_size",
        )


def _check_tier(tier: str | None, card: ModelCard) -> str:
    assert tier is not None
    for listed in card.sizing.resolutions:
        if listed.upper() == tier.upper():
            return listed
    raise _refuse(card, f"resolution {tier}", "resolution")


def describe_sizing(card: ModelCard) -> str:
    """One sentence on what sizing the model takes, for error messages and /v1/models."""
    spec = card.sizing
    style = spec.style
    if style is SizingStyle.OPENAI_SIZE:
        text = "It takes size " + ", ".join(spec.sizes) if spec.sizes else "It takes size WxH"
        if spec.custom is not None:
            text += f", or any WxH with {spec.custom.describe()}"
        return text + "."
    if style is SizingStyle.PIXELS:
        assert spec.custom is not None
        return f"It takes size=WxH (or width and height) with {spec.custom.describe()}, or auto."
    if style is SizingStyle.ASPECT_RATIO:
        text = "It takes aspect_ratio " + ", ".join(spec.aspect_ratios)
        if spec.resolutions:
            text += "; resolution " + ", ".join(spec.resolutions)
        return text + "; size=WxH works when its shape is one of those ratios."
    if style is SizingStyle.RESOLUTION_TIER:
        return "It takes resolution " + ", ".join(spec.resolutions) + "."
    presets = ", ".join(f"{name} ({size})" for name, size in spec.presets.items())
    if spec.custom is not None:
        return f"It takes image_size {presets}, or size=WxH with {spec.custom.describe()}."
    return f"It takes image_size {presets}; size=WxH works when it equals a preset."
