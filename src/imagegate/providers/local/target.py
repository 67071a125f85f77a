"""The size the engine makes, decided from the job's resolved sizing before any work.

Whatever ``job.sizing`` resolved to is either produced or refused by the provider's ``check``
(a 400 before any pixel is touched); it is never silently dropped. Per what the sizing says:

- exact pixels (``size``/``width``+``height``, a listed size, a preset's size): the edit is
  resized to exactly that. It must be within the output limits, else a 400.
- an aspect ratio: the edit is centre-cropped to it (nothing is stretched).
- a resolution tier ``NK``: the longer side becomes N x 1024 px (1K = 1024, 4K = 4096); with a
  ratio, after the crop. A tier the engine cannot read, or over 4096 px, is a 400.
- nothing, or ``auto``: a card that lists its outputs always makes one of them: its
  ``sizing.default`` when that names one, else the listed one nearest the edit (in shape for
  sizes, ratios and presets, in length of the longer side for tiers; the first listed on a tie).
  A chosen size is met by centre-cropping to its shape, then resizing, so it never distorts.
  ``auto`` listed among a card's ratios or presets, and cards with a custom pixel rule (such as
  ``local/pillow``), keep the edit's own size.

After that the output rule of ``limits.py`` applies to every output: anything over 4096 px a side
or 36 MP is scaled down by one common factor, and ``revised_prompt`` says so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from PIL import Image

from imagegate.catalog.cards import ModelCard, SizingStyle, parse_ratio, parse_size
from imagegate.catalog.sizing import ResolvedSizing
from imagegate.core.errors import InvalidRequest
from imagegate.providers.local import limits, ops
from imagegate.providers.local.limits import Size

Choice = tuple[Size, str]  # a size and the words for where it came from
RatioChoice = tuple[Fraction, str]
TierChoice = tuple[int, str]  # the longer side in pixels, and the tier as listed


@dataclass(frozen=True, slots=True)
class Target:
    """How to finish the edit. Empty tuples mean "keep what the edit made"."""

    sizes: tuple[Choice, ...] = ()  # resize to one of these (the nearest in shape)
    given: bool = False  # the client named the size: resize exactly, do not crop first
    ratios: tuple[RatioChoice, ...] = ()  # crop to one of these (the nearest)
    tiers: tuple[TierChoice, ...] = ()  # then scale the longer side to one of these
    why: str = ""  # for the label when the card, not the client, chose

    def finish(self, image: Image.Image) -> tuple[Image.Image, list[str]]:
        labels: list[str] = []
        if self.sizes:
            image = self._to_size(image, labels)
        if self.ratios:
            ratio, text = _nearest_ratio(self.ratios, image.size)
            cropped = ops.crop_to_ratio(ratio.numerator, ratio.denominator).apply(image)
            if cropped.size != image.size:
                labels.append(f"centre crop to {text}{_why(self.why)}")
            image = cropped
        if self.tiers:
            side, text = _nearest_tier(self.tiers, image.size)
            size = _with_longer_side(image.size, side)
            if size != image.size:
                image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=ops.REDUCING_GAP)
                labels.append(f"output {size[0]}x{size[1]} (resolution {text})")
        fitted = limits.fit(image.size)
        if fitted != image.size:  # the one output rule, for every output
            image = image.resize(fitted, Image.Resampling.LANCZOS, reducing_gap=ops.REDUCING_GAP)
            labels.append(limits.fitted_note(fitted))
        return image, labels

    def _to_size(self, image: Image.Image, labels: list[str]) -> Image.Image:
        size, why = _nearest_size(self.sizes, image.size)
        if size == image.size:
            return image
        if len(self.sizes) > 1:
            why = self.why
        if not self.given:
            shape = Fraction(size[0], size[1])
            cropped = ops.crop_to_ratio(shape.numerator, shape.denominator).apply(image)
            if cropped.size != image.size:
                labels.append(f"centre crop to {shape.numerator}:{shape.denominator}")
            image = cropped
        labels.append(f"output {size[0]}x{size[1]}{_why(why)}")
        return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=ops.REDUCING_GAP)


KEEP = Target()
DEFAULT = "the card's default"
NEAREST = "nearest listed"


def output_target(sizing: ResolvedSizing, card: ModelCard) -> Target:
    """What to make for this sizing on this card, or a 400 if the engine cannot make it."""
    pixels = sizing.pixels
    if pixels is not None:
        return Target(sizes=((_producible(pixels, "size", card), ""),), given=True)
    if sizing.preset is not None:
        value = card.sizing.presets.get(sizing.preset, "")
        if value == "auto":
            return KEEP
        return Target(sizes=((_preset_size(sizing.preset, value, card), ""),), given=True)
    tier = sizing.resolution
    tiers = ((_tier_side(tier, card), tier),) if tier is not None else ()
    ratio = sizing.aspect_ratio
    if ratio is not None and ratio != "auto":
        return Target(ratios=((parse_ratio(ratio), ratio),), tiers=tiers)
    if ratio == "auto":
        return Target(tiers=tiers)  # the card listed auto: keep the edit's shape
    default = _card_default(card)
    if tiers:  # a tier alone: the card's default shape, at that tier
        return Target(ratios=default.ratios, tiers=tiers, why=default.why)
    return default


def _card_default(card: ModelCard) -> Target:
    """Nothing asked (or auto): a card that lists its outputs makes one of them."""
    spec = card.sizing
    default = spec.default or ""
    style = spec.style
    if style is SizingStyle.PIXELS:
        return _stated_default(default, card) or KEEP
    if style is SizingStyle.OPENAI_SIZE:
        stated = _stated_default(default, card)
        if stated is not None:
            return stated
        if spec.custom is not None:
            return KEEP
        listed = [(parse_size(text), text) for text in spec.sizes if text != "auto"]
        return Target(sizes=_choices(listed, card, "size"), why=f"{NEAREST} size")
    if style is SizingStyle.ASPECT_RATIO:
        if default in spec.aspect_ratios and default != "auto":
            return Target(ratios=((parse_ratio(default), default),), why=DEFAULT)
        if "auto" in spec.aspect_ratios:
            return KEEP
        ratios = tuple((parse_ratio(text), text) for text in spec.aspect_ratios)
        return Target(ratios=ratios, why=f"{NEAREST} shape")
    if style is SizingStyle.RESOLUTION_TIER:
        tiers = [(_readable_tier(text), text) for text in spec.resolutions]
        chosen = [(side, text) for side, text in tiers if side and text.upper() == default.upper()]
        usable = tuple(chosen or [(side, text) for side, text in tiers if side])
        if not usable:
            raise _no_default(card, "resolution", spec.resolutions)
        return Target(tiers=usable)
    # preset
    if default in spec.presets and spec.presets[default] != "auto":
        size = parse_size(spec.presets[default])
        if size is not None and limits.within(size):
            return Target(sizes=((size, DEFAULT),))
    if "auto" in spec.presets.values() or spec.custom is not None:
        return KEEP
    listed = [(parse_size(value), name) for name, value in spec.presets.items()]
    return Target(sizes=_choices(listed, card, "image_size"), why=f"{NEAREST} preset")


def _stated_default(default: str, card: ModelCard) -> Target | None:
    """The card's ``sizing.default`` when it is a size the card lists or its rule allows."""
    size = parse_size(default)
    if size is None or not limits.within(size):
        return None
    rule = card.sizing.custom
    if default in card.sizing.sizes or (rule is not None and rule.problem(*size) is None):
        return Target(sizes=((size, DEFAULT),))
    return None


def _producible(size: Size, param: str, card: ModelCard) -> Size:
    if not limits.within(size):
        raise InvalidRequest(
            f"{card.id} makes outputs up to {limits.MAX_SIDE} px a side and "
            f"{limits.MAX_OUTPUT_PIXELS:,} pixels in all; {size[0]}x{size[1]} is over that.",
            param=param,
            code="unsupported_size",
        )
    return size


def _preset_size(name: str, value: str, card: ModelCard) -> Size:
    size = parse_size(value)
    if size is None:  # cards are checked at start, so only a hand-built card gets here
        raise InvalidRequest(
            f"{card.id}: the preset {name} has no size the engine can make.",
            param="image_size",
            code="unsupported_size",
        )
    return _producible(size, "image_size", card)


def _choices(
    listed: list[tuple[Size | None, str]], card: ModelCard, param: str
) -> tuple[Choice, ...]:
    usable = tuple((size, text) for size, text in listed if size and limits.within(size))
    if not usable:
        raise _no_default(card, param, [text for _size, text in listed])
    return usable


def _no_default(card: ModelCard, param: str, listed: list[str]) -> InvalidRequest:
    return InvalidRequest(
        f"{card.id} lists no output the engine can make (up to {limits.MAX_SIDE} px a side and "
        f"{limits.MAX_OUTPUT_PIXELS:,} pixels): {', '.join(listed)}. Send a {param} it can.",
        param=param,
        code="unsupported_size",
    )


_TIER_RE = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,3})?)K")


def _readable_tier(text: str) -> int | None:
    """The longer side for a tier written NK (N x 1024 px), if within the limits."""
    match = _TIER_RE.fullmatch(text.strip().upper())
    if match is None:
        return None
    side = round(float(match.group(1)) * 1024)
    return side if 1 <= side <= limits.MAX_SIDE else None


def _tier_side(text: str | None, card: ModelCard) -> int:
    assert text is not None
    side = _readable_tier(text)
    if side is None:
        raise InvalidRequest(
            f"{card.id} makes resolution tiers written NK, the longer side N x 1024 px, up to "
            f"{limits.MAX_SIDE // 1024}K ({limits.MAX_SIDE} px); it cannot make {text!r}.",
            param="resolution",
            code="unsupported_size",
        )
    return side


def _nearest_size(choices: tuple[Choice, ...], size: Size) -> Choice:
    shape = math.log(size[0] / size[1])
    return min(choices, key=lambda c: abs(math.log(c[0][0] / c[0][1]) - shape))


def _nearest_ratio(choices: tuple[RatioChoice, ...], size: Size) -> RatioChoice:
    shape = math.log(size[0] / size[1])
    return min(choices, key=lambda c: abs(math.log(c[0]) - shape))


def _nearest_tier(choices: tuple[TierChoice, ...], size: Size) -> TierChoice:
    longer = math.log(max(size))
    return min(choices, key=lambda c: abs(math.log(c[0]) - longer))


def _with_longer_side(size: Size, side: int) -> Size:
    width, height = size
    if width >= height:
        return side, max(1, round(side * height / width))
    return max(1, round(side * width / height)), side


def _why(why: str) -> str:
    return f" ({why})" if why else ""
