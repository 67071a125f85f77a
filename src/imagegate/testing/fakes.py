"""Every strict fake upstream, by provider name (what ``imagegate fake-upstream NAME`` serves)."""

from __future__ import annotations

from collections.abc import Callable

from imagegate.testing.azure import AzureFake
from imagegate.testing.bfl import FakeBfl
from imagegate.testing.fake import FakeUpstream
from imagegate.testing.fal import FakeFal
from imagegate.testing.gemini import GeminiFake
from imagegate.testing.openai import OpenAIFake
from imagegate.testing.replicate import FakeReplicate
from imagegate.testing.stability import FakeStability
from imagegate.testing.xai import FakeXai

FAKES: dict[str, Callable[[str], FakeUpstream]] = {
    "openai": OpenAIFake,
    "azure": AzureFake,
    "gemini": GeminiFake,
    "stability": FakeStability,
    "xai": FakeXai,
    "bfl": FakeBfl,
    "fal": FakeFal,
    "replicate": FakeReplicate,
}
