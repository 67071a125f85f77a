"""The official OpenAI Python SDK against a running gateway, as an application developer uses it."""

from __future__ import annotations

import io
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from tests import imaging
from tests.imaging import BLUE, GREEN, RED
from tests.server import Gateway
from tests.support import schema, sdk

GREY = (128, 128, 128)


def test_single_image_grayscale_is_a_real_edit(client: OpenAI) -> None:
    source = imaging.png()
    result = sdk.edit(
        client, model="local/pillow", image=("cat.png", source), prompt="make it grayscale"
    )

    assert result.data is not None and result.data[0].b64_json
    out = imaging.decode_b64(result.data[0].b64_json)
    assert out.size == (64, 48)
    assert imaging.is_grey(out.convert("RGB").getpixel((2, 2)))
    assert imaging.is_grey(out.convert("RGB").getpixel((32, 24)))
    # The red background and the green box become different greys: the picture survives.
    assert out.convert("L").getpixel((2, 2)) != out.convert("L").getpixel((32, 24))
    assert result.model == "local/pillow"
    assert result.size == "64x48"
    assert result.output_format == "png"
    assert result.usage is not None
    assert result.usage.total_tokens == 0  # none counted, and still there for strict clients
    assert result.usage.input_tokens_details.image_tokens == 0
    assert result.usage.model_extra is not None
    assert result.usage.model_extra["cost"]["total_cost"] == 0.0


def test_open_file_handle_as_in_the_readme(client: OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "cat.png"
    path.write_bytes(imaging.png())
    with path.open("rb") as handle:
        result = sdk.edit(client, model="local/pillow", image=handle, prompt="invert it")
    assert result.data
    out = imaging.decode_b64(result.data[0].b64_json or "").convert("RGB")
    assert out.getpixel((2, 2)) == tuple(255 - c for c in RED)


def test_bytes_without_filename(client: OpenAI) -> None:
    # The SDK sends bare bytes as filename "upload" with application/octet-stream.
    source = imaging.encode(imaging.halves(64, 48, left=RED, right=BLUE), "JPEG", quality=95)
    result = sdk.edit(client, model="local/pillow", image=source, prompt="mirror it")
    assert result.data
    out = imaging.decode_b64(result.data[0].b64_json or "").convert("RGB")
    src = imaging.decode(source).convert("RGB")
    assert out.size == (64, 48)
    # Mirrored: the output's left column is the input's right column (JPEG: within a few levels).
    for y in range(48):
        assert imaging.is_close(out.getpixel((0, y)), src.getpixel((63, y)), tolerance=6), y
    assert imaging.is_close(out.getpixel((0, 24)), BLUE)
    assert imaging.is_close(out.getpixel((63, 24)), RED)


def test_path_upload(client: OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "photo.webp"
    path.write_bytes(imaging.webp(background=GREY, box=(60, 60, 60)))
    result = sdk.edit(client, model="pillow", image=path, prompt="sepia")
    assert result.data and result.model == "local/pillow"  # the alias resolves
    out = imaging.decode_b64(result.data[0].b64_json or "").convert("RGB")
    assert out.size == (64, 48)
    # Sepia on a grey picture: every pixel warm (R >= G >= B), no longer grey.
    pixels = list(out.get_flattened_data())
    assert all(r >= g >= b for r, g, b in pixels)
    assert all(r - b > 20 for r, g, b in pixels)


def test_list_of_images_is_combined_side_by_side(client: OpenAI) -> None:
    first = imaging.png(64, 48, background=RED)
    second = imaging.png(32, 48, background=BLUE)
    result = sdk.edit(
        client, model="local/pillow", image=[first, second], prompt="put them side by side"
    )
    assert result.data
    out = imaging.decode_b64(result.data[0].b64_json or "").convert("RGB")
    assert out.size == (96, 48)
    assert out.getpixel((1, 1)) == RED
    assert out.getpixel((95, 1)) == BLUE


def test_several_images_in_a_grid_with_an_edit(client: OpenAI) -> None:
    images = [imaging.png(40, 40, background=color) for color in (RED, GREEN, BLUE, RED)]
    result = sdk.edit(client, model="local/pillow", image=images, prompt="grid, invert")
    out = imaging.decode_b64(result.data[0].b64_json or "").convert("RGB")
    assert out.size == (80, 80)
    assert out.getpixel((1, 1)) == tuple(255 - c for c in RED)
    assert out.getpixel((41, 1)) == tuple(255 - c for c in GREEN)
    assert out.getpixel((1, 41)) == tuple(255 - c for c in BLUE)


def test_mask_limits_the_edit_to_its_transparent_part(client: OpenAI) -> None:
    result = sdk.edit(
        client,
        model="local/pillow",
        image=("a.png", imaging.png()),
        mask=("mask.png", imaging.mask_left_half()),
        prompt="invert",
    )
    out = imaging.decode_b64(result.data[0].b64_json or "").convert("RGB")
    assert out.getpixel((2, 2)) == tuple(255 - c for c in RED)  # left: transparent in the mask
    assert out.getpixel((61, 2)) == RED  # right: opaque in the mask, untouched


def test_size_resizes_the_output(client: OpenAI) -> None:
    result = sdk.edit(
        client, model="local/pillow", image=imaging.png(), prompt="blur", size="1024x1024"
    )
    assert result.size == "1024x1024"
    assert imaging.decode_b64(result.data[0].b64_json or "").size == (1024, 1024)


def test_output_format_and_compression(client: OpenAI) -> None:
    result = sdk.edit(
        client,
        model="local/pillow",
        image=imaging.png(),
        prompt="sharpen",
        output_format="jpeg",
        output_compression=50,
    )
    assert result.output_format == "jpeg"
    assert imaging.decode_b64(result.data[0].b64_json or "").format == "JPEG"


def test_transparent_background(client: OpenAI) -> None:
    result = sdk.edit(
        client,
        model="local/pillow",
        image=imaging.png(),
        prompt="remove the background",
        background="transparent",
    )
    out = imaging.decode_b64(result.data[0].b64_json or "")
    assert result.background == "transparent"
    assert out.mode == "RGBA"
    assert out.getpixel((1, 1))[3] == 0  # the red border colour is keyed out
    assert out.getpixel((32, 24))[3] == 255  # the green box stays


def test_response_format_url_is_a_data_uri(client: OpenAI) -> None:
    result = sdk.edit(
        client, model="local/pillow", image=imaging.png(), prompt="invert", response_format="url"
    )
    url = result.data[0].url
    assert url is not None and url.startswith("data:image/png;base64,")
    out = imaging.decode_b64(url.split(",", 1)[1]).convert("RGB")
    assert out.size == (64, 48)
    assert out.getpixel((2, 2)) == tuple(255 - c for c in RED)


def test_n_returns_that_many_images(client: OpenAI) -> None:
    result = sdk.edit(client, model="local/pillow", image=imaging.png(), prompt="invert", n=3)
    assert result.data is not None and len(result.data) == 3
    for image in result.data:  # three images that decode, each the edit
        out = imaging.decode_b64(image.b64_json or "").convert("RGB")
        assert out.size == (64, 48)
        assert out.getpixel((2, 2)) == tuple(255 - c for c in RED)
        assert out.getpixel((32, 24)) == tuple(255 - c for c in GREEN)


def test_extra_body_fields_reach_the_gateway(client: OpenAI) -> None:
    # width/height are not OpenAI parameters; extra_body sends them as form fields.
    result = sdk.edit(
        client,
        model="local/pillow",
        image=imaging.png(),
        prompt="invert",
        extra_body={"width": 100, "height": 60, "seed": 7},
    )
    assert result.size == "100x60"
    out = imaging.decode_b64(result.data[0].b64_json or "").convert("RGB")
    assert out.size == (100, 60)
    assert out.getpixel((1, 1)) == tuple(255 - c for c in RED)


def test_revised_prompt_says_what_was_done(client: OpenAI) -> None:
    result = sdk.edit(
        client,
        model="local/pillow",
        image=imaging.png(),
        prompt="rotate 90 degrees and then grayscale",
    )
    assert result.data and result.data[0].revised_prompt == "grayscale; rotate 90° clockwise"
    assert result.size == "48x64"


def test_request_id_header(client: OpenAI) -> None:
    raw = client.images.with_raw_response.edit(
        model="local/pillow", image=imaging.png(), prompt="invert"
    )
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["content-type"] == "application/json"
    assert raw.headers["x-imagegate-provider"] == "local"
    schema.assert_images_response(raw.http_response.content)
    assert raw.parse().data


def test_stream_yields_typed_events_ending_in_completed(client: OpenAI) -> None:
    events = sdk.stream(
        client, model="local/pillow", image=[imaging.png()], prompt="invert", partial_images=2
    )
    assert [e.type for e in events] == [
        "image_edit.partial_image",
        "image_edit.partial_image",
        "image_edit.completed",
    ]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    done = events[-1]
    assert isinstance(done, openai.types.ImageEditCompletedEvent)
    assert done.size == "64x48" and done.output_format == "png"
    assert done.usage.total_tokens == 0
    out = imaging.decode_b64(done.b64_json).convert("RGB")
    assert out.getpixel((2, 2)) == tuple(255 - c for c in RED)


def test_stream_without_partials(client: OpenAI) -> None:
    events = sdk.stream(client, model="local/pillow", image=imaging.png(), prompt="sepia")
    assert [e.type for e in events] == ["image_edit.completed"]
    out = imaging.decode_b64(events[0].b64_json).convert("RGB")
    assert out.size == (64, 48) and all(r >= g >= b for r, g, b in out.get_flattened_data())


def test_stream_failure_after_start_is_an_api_error(client: OpenAI, gateway: Gateway) -> None:
    # A PNG whose header is valid but whose pixel data is cut off: it fails while decoding,
    # which happens after the stream has begun.
    broken = imaging.png(256, 256)[:200]
    with pytest.raises(openai.APIError) as caught:
        # The error event is checked against OpenAI's ErrorEvent before the SDK raises it.
        sdk.stream(
            client,
            model="local/pillow",
            image=broken,
            prompt="invert",
            extra_headers={"x-request-id": "broken-stream-1"},
        )
    assert "could not be decoded" in caught.value.message
    assert caught.value.code == "invalid_image"
    assert not isinstance(caught.value, openai.APIStatusError)
    (line,) = gateway.log_lines(lambda line: line.get("request_id") == "broken-stream-1")
    assert line["status"] == 200 and line["error_code"] == "invalid_image"  # the log says why


def test_unreadable_prompt_is_a_bad_request_listing_skills(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="local/pillow", image=imaging.png(), prompt="add a wizard hat")
    err = caught.value
    assert err.status_code == 400
    assert err.code == "prompt_not_understood"
    assert err.param == "prompt"
    assert "grayscale" in err.message and "rotate" in err.message
    assert err.response.headers["x-request-id"]


def test_unreadable_prompt_with_stream_is_still_a_plain_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.images.edit(model="local/pillow", image=imaging.png(), prompt="a hat", stream=True)


def test_unknown_model_is_not_found(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.images.edit(model="acme/imaginary", image=imaging.png(), prompt="invert")
    assert caught.value.code == "model_not_found"
    assert "acme/imaginary" in caught.value.message


def test_gif_is_refused_naming_the_part(client: OpenAI) -> None:
    gif = imaging.encode(imaging.picture(), "GIF")
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            model="local/pillow", image=[imaging.png(), ("anim.png", gif)], prompt="invert"
        )
    assert caught.value.param == "image[1]"
    assert "GIF" in caught.value.message


def test_mask_of_the_wrong_size(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            model="local/pillow",
            image=imaging.png(64, 48),
            mask=imaging.mask_left_half(32, 32),
            prompt="invert",
        )
    assert caught.value.param == "mask"
    assert "32x32" in caught.value.message and "64x48" in caught.value.message


def test_mask_without_alpha(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(
            model="local/pillow", image=imaging.png(), mask=imaging.png(), prompt="invert"
        )
    assert "alpha" in caught.value.message


def test_n_beyond_the_card(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="local/pillow", image=imaging.png(), prompt="invert", n=9)
    assert caught.value.param == "n"
    assert "1-4" in caught.value.message


def test_size_outside_the_rule(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(model="local/pillow", image=imaging.png(), prompt="invert", size="8x8")
    assert caught.value.code == "unsupported_size"


def test_server_keeps_serving_after_errors(client: OpenAI) -> None:
    for _ in range(3):
        with pytest.raises(openai.BadRequestError):
            client.images.edit(model="local/pillow", image=b"not an image", prompt="invert")
    result = sdk.edit(client, model="local/pillow", image=imaging.png(), prompt="invert")
    assert result.data


# -- a team's gateway: master key and config file ---------------------------------------------


def test_missing_key_is_authentication_error(team_gateway: Gateway) -> None:
    anonymous = OpenAI(base_url=team_gateway.base_url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        anonymous.images.edit(model="local/pillow", image=imaging.png(), prompt="invert")
    assert caught.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        anonymous.models.list()


def test_team_key_works_and_alias_resolves(team_client: OpenAI) -> None:
    result = sdk.edit(team_client, model="bw", image=imaging.png(), prompt="black and white")
    assert result.model == "local/pillow"
    out = imaging.decode_b64(result.data[0].b64_json or "").convert("RGB")
    assert out.size == (64, 48)
    assert all(imaging.is_grey(pixel) for pixel in out.get_flattened_data())
    # Red and green become different greys: the alias ran the edit, not a blank.
    assert out.getpixel((2, 2)) != out.getpixel((32, 24))


def test_generate_only_model_is_refused(team_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        team_client.images.edit(model="local/pillow-draw", image=imaging.png(), prompt="invert")
    assert caught.value.code == "model_not_editable"
    assert "cannot edit" in caught.value.message


def test_too_many_reference_images_names_the_limit(team_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        team_client.images.edit(
            model="local/pillow-small", image=[imaging.png()] * 3, prompt="invert"
        )
    assert caught.value.code == "too_many_images"
    assert "at most 2" in caught.value.message


def test_mask_refused_by_a_card_without_masks(team_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        team_client.images.edit(
            model="local/pillow-small",
            image=imaging.png(),
            mask=imaging.mask_left_half(),
            prompt="invert",
        )
    assert caught.value.param == "mask"


def test_sizing_translation_and_refusal_on_an_aspect_ratio_card(team_client: OpenAI) -> None:
    # size 1536x1024 is the shape 3:2, which the card lists: accepted.
    ok = sdk.edit(
        team_client,
        model="local/pillow-small",
        image=imaging.png(),
        prompt="invert",
        size="1536x1024",
    )
    assert ok.data
    out = imaging.decode_b64(ok.data[0].b64_json or "").convert("RGB")
    assert out.getpixel((2, 2)) == tuple(255 - c for c in RED)
    with pytest.raises(openai.BadRequestError) as caught:
        team_client.images.edit(
            model="local/pillow-small", image=imaging.png(), prompt="invert", size="1000x700"
        )
    assert caught.value.code == "unsupported_size"
    assert "3:2" in caught.value.message  # it says what the model takes


def test_list_price_becomes_total_cost(team_client: OpenAI) -> None:
    result = sdk.edit(
        team_client, model="local/pillow-small", image=[imaging.png()] * 2, prompt="invert", n=2
    )
    assert result.usage is not None and result.usage.model_extra is not None
    # 2 outputs x $0.01 + 2 inputs x $0.002
    assert result.usage.model_extra["cost"]["total_cost"] == pytest.approx(0.024)


def test_image_over_the_byte_limit_is_413(team_client: OpenAI) -> None:
    noise = imaging.encode(imaging.Image.effect_noise((1400, 1400), 90), "PNG")
    assert len(noise) > 1_500_000
    with pytest.raises(openai.APIStatusError) as caught:
        team_client.images.edit(model="local/pillow", image=noise, prompt="invert")
    assert caught.value.status_code == 413
    assert "1,500,000" in caught.value.message


def test_models_list_through_the_sdk(team_client: OpenAI) -> None:
    models = {m.id: m for m in team_client.models.list()}
    assert {"local/pillow", "local/pillow-draw", "local/pillow-small"} <= set(models)
    small = models["local/pillow-small"].model_extra
    assert small is not None
    assert small["edit"] == {
        "supported": True,
        "max_reference_images": 2,
        "mask": False,
        "mask_emulation": False,
    }
    assert small["sizing"]["style"] == "aspect_ratio"
    assert small["pricing"]["per_image"] == 0.01
    assert models["local/pillow-draw"].model_extra["generate_only"] is True


def test_retrieve_model_by_alias(team_client: OpenAI) -> None:
    model = team_client.models.retrieve("bw")
    assert model.id == "local/pillow"
    with pytest.raises(openai.NotFoundError):
        team_client.models.retrieve("nobody/none")


def test_file_like_without_name(client: OpenAI) -> None:
    result = sdk.edit(
        client, model="local/pillow", image=io.BytesIO(imaging.png()), prompt="posterize"
    )
    assert result.data
    out = imaging.decode_b64(result.data[0].b64_json or "").convert("RGB")
    assert out.size == (64, 48)
    # Posterized to 3 bits a channel: red (200, 30, 30) -> (192, 0, 0), green -> (0, 192, 0).
    assert out.getpixel((2, 2)) == (192, 0, 0)
    assert out.getpixel((32, 24)) == (0, 192, 0)
