"""The one normalized edit request, whatever the wire shape (multipart or JSON) was."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from imagegate.core.blob import Blob, MemoryBlob
from imagegate.core.images import EXTENSIONS, ImageFormat, ImageInfo

ResponseFormat = Literal["b64_json", "url"]
Background = Literal["transparent", "opaque", "auto"]


@dataclass(frozen=True, slots=True)
class ImageInput:
    """One image as received, with the facts read from its header. Never re-encoded here.

    ``blob`` is the one copy of the bytes (see ``core.blob``); read them through ``view()`` or
    ``open()``. The request's scope owns the blob and closes it when the exchange ends.
    """

    blob: Blob
    info: ImageInfo
    param: str  # where it came from, e.g. "image[1]" or "images[0].image_url"
    filename: str | None = None

    @classmethod
    def of(cls, data: bytes, info: ImageInfo, param: str) -> ImageInput:
        """An image over bytes already in memory (tests, and callers outside a request)."""
        return cls(MemoryBlob(data), info, param)

    @property
    def nbytes(self) -> int:
        return self.blob.nbytes

    def view(self) -> memoryview:
        return self.blob.view()

    def open(self) -> BinaryIO:
        """A fresh reader over the bytes, for decoders and uploads; never a copy of them."""
        return self.blob.open()

    @property
    def format(self) -> ImageFormat:
        return self.info.format

    @property
    def width(self) -> int:
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height

    @property
    def mime_type(self) -> str:
        return self.info.mime_type

    def upload_name(self, stem: str = "image") -> str:
        """A filename whose extension matches the bytes, for providers that check it."""
        return stem + EXTENSIONS[self.info.format]


@dataclass(frozen=True, slots=True)
class SizingRequest:
    """Every way a client can say how big the output should be, as sent (validated for form)."""

    size: str | None = None  # "WxH" or "auto"
    width: int | None = None
    height: int | None = None
    aspect_ratio: str | None = None  # "W:H" or "auto"
    resolution: str | None = None  # a tier such as "1K"
    image_size: str | None = None  # a preset name or a tier, depending on the model

    def given(self) -> dict[str, object]:
        return {
            k: v
            for k, v in (
                ("size", self.size),
                ("width", self.width),
                ("height", self.height),
                ("aspect_ratio", self.aspect_ratio),
                ("resolution", self.resolution),
                ("image_size", self.image_size),
            )
            if v is not None
        }


@dataclass(frozen=True, slots=True)
class OutputOptions:
    response_format: ResponseFormat = "b64_json"
    output_format: ImageFormat | None = None  # None: whatever the provider returns (png here)
    output_compression: int | None = None
    background: Background | None = None
    quality: str | None = None


@dataclass(frozen=True, slots=True)
class EditRequest:
    model: str
    prompt: str
    images: tuple[ImageInput, ...]
    mask: ImageInput | None = None
    n: int = 1
    sizing: SizingRequest = field(default_factory=SizingRequest)
    output: OutputOptions = field(default_factory=OutputOptions)
    stream: bool = False
    partial_images: int = 0
    input_fidelity: str | None = None
    moderation: str | None = None
    seed: int | None = None
    user: str | None = None
    # The client's own labels (OpenAI's metadata convention): recorded with usage and in the
    # log line, never sent to a provider.
    metadata: Mapping[str, str] | None = None
    # Fields the gateway does not interpret, kept as sent for providers that understand them.
    extra: Mapping[str, object] = field(default_factory=dict)

    @property
    def image_bytes(self) -> int:
        total = sum(image.nbytes for image in self.images)
        return total + (self.mask.nbytes if self.mask else 0)
