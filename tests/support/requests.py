"""Requests as the tests build them: ``EditRequest``s for the layers below HTTP, and JSON and
multipart bodies as the SDKs and curl send them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from imagegate.core.request import EditRequest, ImageInput, OutputOptions
from imagegate.wire.body import check_image
from imagegate.wire.limits import WireLimits
from tests import imaging


def image_input(data: bytes | None = None, param: str = "image[0]") -> ImageInput:
    """An image as the wire layer hands it on (a 64x48 PNG unless ``data`` is given)."""
    return check_image(imaging.png() if data is None else data, param, None, WireLimits())


def edit_request(
    model: str,
    *,
    images: int = 1,
    prompt: str = "p",
    output: OutputOptions | None = None,
    **fields: Any,
) -> EditRequest:
    """An ``EditRequest`` for ``model`` with ``images`` copies of one PNG; ``fields`` go on it."""
    image = image_input()
    return EditRequest(
        model=model,
        prompt=prompt,
        images=(image,) * images,
        output=output or OutputOptions(),
        **fields,
    )


def edit_json(*urls: str, prompt: str = "invert", model: str = "local/pillow") -> dict[str, Any]:
    """A JSON edit body whose images are ``image_url``s (http(s) or data URLs)."""
    return {"model": model, "prompt": prompt, "images": [{"image_url": url} for url in urls]}


def multipart(
    data: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    files: Iterable[tuple[str, Any]] | None = None,
) -> tuple[str, bytes]:
    """Content-Type and body encoded as httpx (and so the OpenAI SDK) does: text, then files."""
    pairs = data.items() if isinstance(data, Mapping) else (data or [])
    parts: list[tuple[str, Any]] = [(name, (None, value)) for name, value in pairs]
    parts += list(files or [])
    request = httpx.Request("POST", "http://gateway/v1/images/edits", files=parts)
    return request.headers["content-type"], request.read()


def post_edit(
    base_url: str,
    *images: bytes,
    prompt: str = "invert",
    model: str | None = "local/pillow",
    headers: Mapping[str, str] | None = None,
    timeout: float = 30,
    **fields: str,
) -> httpx.Response:
    """A multipart edit as curl sends it: ``image`` for one file, ``image[]`` for several."""
    name = "image" if len(images) == 1 else "image[]"
    data = {"prompt": prompt, **fields}
    if model is not None:
        data["model"] = model
    return httpx.post(
        base_url + "/v1/images/edits",
        data=data,
        files=[(name, (f"{i}.png", image, "image/png")) for i, image in enumerate(images)],
        headers=dict(headers or {}),
        timeout=timeout,
    )
